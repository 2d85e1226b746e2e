"""Building blocks shared by the networks: masks, masked pooling and statistics, gradient
reversal, sinusoidal positional encoding, masked AdaIN, encoder-layer mixing and frame pooling.

Shapes: B batch, T frames, C channels, L stacked encoder layers. A mask is a (B, T) bool tensor,
True on valid frames. Every utterance has at least one valid frame. Padded frames never enter a
mean, a max, an instance statistic or an attention weight, so padding an utterance inside a batch
never changes its output.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) valid lengths -> (B, max_len) bool mask, True where frame index < length."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def zero_padding(x: Tensor, mask: Tensor) -> Tensor:
    """Set padded frames of x (B, T, C) to exactly zero (NaN or inf garbage included)."""
    return torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over valid frames: x (B, T, C), mask (B, T) -> (B, C)."""
    total = zero_padding(x, mask).sum(dim=1)
    count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)
    return total / count


def masked_max(x: Tensor, mask: Tensor) -> Tensor:
    """Maximum over valid frames: x (B, T, C), mask (B, T) -> (B, C)."""
    floor = torch.full((), float("-inf"), dtype=x.dtype, device=x.device)
    return torch.where(mask.unsqueeze(-1), x, floor).amax(dim=1)


def log_mean_probability(logits: list[Tensor]) -> Tensor:
    """Logits whose softmax is the mean of the softmaxes of ``logits`` (each (B, C)) -> (B, C)."""
    log_probs = torch.stack([torch.log_softmax(x, dim=-1) for x in logits])   # (M, B, C)
    return torch.logsumexp(log_probs, dim=0) - math.log(len(logits))


def frame_attention(weights: Tensor, mask: Tensor) -> Tensor:
    """Per-frame display weight from a query-by-key attention matrix.

    weights: (B, T, T) attention of each query i (rows) over keys j (columns); mask: (B, T).
    Returns (B, T): the mean over valid queries of the attention each key frame receives,
    renormalised to sum to 1 over valid frames and exactly 0 on padded frames.
    """
    rows = weights.masked_fill(~mask.unsqueeze(-1), 0.0).sum(dim=1)
    rows = rows.masked_fill(~mask, 0.0)
    return rows / rows.sum(dim=1, keepdim=True).clamp(min=torch.finfo(rows.dtype).tiny)


def uniform_attention(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """(B, T) mask -> (B, T) weights, 1/length on valid frames and 0 on padded ones."""
    weights = mask.to(dtype)
    return weights / weights.sum(dim=1, keepdim=True).clamp(min=1.0)


def packed_rnn(rnn: nn.RNNBase, x: Tensor, lengths: Tensor) -> Tensor:
    """Run a batch_first RNN on valid frames only (packed), so padding never affects it.

    x (B, T, C_in), lengths (B,) -> (B, T, C_out) with padded frames exactly 0.
    A batch without padding (fixed-length training crops) skips packing: same result, and
    on CPU the packed kernels are slower (bench/results/docstring-history.md).
    """
    if bool((lengths == x.shape[1]).all()):
        return rnn(x)[0]
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


class _ReverseGrad(torch.autograd.Function):
    """Identity forward; gradient multiplied by -alpha backward."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: float) -> Tensor:
        ctx.alpha = float(alpha)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.alpha * grad, None


def grad_reverse(x: Tensor, alpha: float) -> Tensor:
    """Gradient reversal (Ganin & Lempitsky): returns x unchanged; backward gives -alpha * grad.

    alpha = 0 blocks the gradient entirely; x is any shape.
    """
    return _ReverseGrad.apply(x, alpha)


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`; alpha is passed per call (it follows a schedule)."""

    def forward(self, x: Tensor, alpha: float) -> Tensor:
        return grad_reverse(x, alpha)


def sinusoidal_encoding(length: int, dim: int, *, device=None, dtype=torch.float32) -> Tensor:
    """The Transformer's sinusoidal position table, (length, dim); any dim (odd dims allowed).

    Column 2k holds sin(pos / 10000^(2k/dim)), column 2k+1 the matching cos.
    """
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    rates = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32)
                      * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device, dtype=torch.float32)
    table[:, 0::2] = torch.sin(position * rates)
    table[:, 1::2] = torch.cos(position * rates[: dim // 2])
    return table.to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the sinusoidal position table to x (B, T, C) -> (B, T, C).

    Computed on the fly for any T, so nothing lands in the state dict; positions count from the
    first frame, so padding at the end never changes a valid frame's encoding.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        table = sinusoidal_encoding(x.shape[1], self.dim, device=x.device, dtype=x.dtype)
        return x + table.unsqueeze(0)


class MaskedAdaIN(nn.Module):
    """AdaIN-style instance normalisation over time with a learnable per-channel scale and shift.

    Each utterance and channel is standardised with the mean and variance of its valid frames
    only (biased variance, eps 1e-5), then scaled by gamma and shifted by beta (both (C,),
    initialised to 1 and 0). x (B, T, C), mask (B, T) -> (B, T, C); padded frames come out as 0.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mean = masked_mean(x, mask).unsqueeze(1)
        var = masked_mean((x - mean).square(), mask).unsqueeze(1)
        normed = (x - mean) * torch.rsqrt(var + self.eps)
        return zero_padding(normed * self.gamma + self.beta, mask)


class LayerMix(nn.Module):
    """Learnable softmax-weighted sum of stacked encoder layers (the SUPERB recipe).

    x (B, L, T, D) -> (B, T, D). Weights start equal; ``weights()`` gives the softmax, (L,).
    """

    def __init__(self, n_layers: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_layers))

    def weights(self) -> Tensor:
        """(L,) mixing weights, non-negative and summing to 1."""
        return torch.softmax(self.logits, dim=0)

    def forward(self, x: Tensor) -> Tensor:
        return torch.einsum("bltd,l->btd", x, self.weights().to(x.dtype))


def pool_frames(x: Tensor, lengths: Tensor, factor: int) -> tuple[Tensor, Tensor]:
    """Average-pool frames in groups of ``factor`` over time, ignoring padded frames.

    x (B, T, D), lengths (B,) -> (B, ceil(T / factor), D), lengths ceil(lengths / factor).
    A last, partial group is the mean of its valid frames only; padded frames are zeroed first,
    so the pooled valid frames never see padding. factor 1 only zeroes the padding.
    """
    batch, steps, dim = x.shape
    mask = lengths_to_mask(lengths, steps)
    x = zero_padding(x, mask)
    if factor == 1:
        return x, lengths
    pooled_steps = -(-steps // factor)
    extra = pooled_steps * factor - steps
    x = F.pad(x, (0, 0, 0, extra))
    mask = F.pad(mask, (0, extra))
    sums = x.reshape(batch, pooled_steps, factor, dim).sum(dim=2)
    counts = mask.reshape(batch, pooled_steps, factor).sum(dim=2).clamp(min=1)
    return sums / counts.unsqueeze(-1).to(x.dtype), (lengths + factor - 1) // factor



def check_network_input(x: Tensor, lengths: Tensor, input_dim: int, n_layers: int) -> Tensor:
    """Check a network's input: features x (B, T, D), or (B, L, T, D) for L > 1 layers, and
    integer lengths (B,) in 1..T. Returns lengths as long on x's device; ValueError naming
    the problem otherwise."""
    want = f"(B, {n_layers}, T, {input_dim})" if n_layers > 1 else f"(B, T, {input_dim})"
    rank = 4 if n_layers > 1 else 3
    if x.dim() != rank or x.shape[-1] != input_dim or (rank == 4 and x.shape[1] != n_layers):
        raise ValueError(f"network input: expected features of shape {want}, "
                         f"got {tuple(x.shape)}")
    if lengths.dim() != 1 or lengths.shape[0] != x.shape[0]:
        raise ValueError(f"network input: lengths must have shape ({x.shape[0]},), "
                         f"got {tuple(lengths.shape)}")
    if lengths.is_floating_point() or lengths.is_complex():
        raise ValueError(f"network input: lengths must be integers, got {lengths.dtype}")
    lengths = lengths.to(device=x.device, dtype=torch.long)
    steps = x.shape[-2]
    if bool((lengths < 1).any()) or bool((lengths > steps).any()):
        raise ValueError(f"network input: every length must be in 1..{steps} (T), "
                         f"got {lengths.tolist()}")
    return lengths

class InputStage(nn.Module):
    """Checks the input, mixes encoder layers (when L > 1) and pools frames.

    forward(x, lengths): x (B, T, D), or (B, L, T, D) when ``n_layers`` > 1; lengths (B,) valid
    frames, 1 <= length <= T. Returns (x (B, T', D) with padded frames zeroed, lengths (B,) long
    after pooling, mask (B, T') bool). Bad shapes or lengths raise ValueError naming the problem.
    """

    def __init__(self, input_dim: int, n_layers: int = 1, frame_pool: int = 1) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.n_layers = n_layers
        self.frame_pool = frame_pool
        self.layer_mix = LayerMix(n_layers) if n_layers > 1 else None

    def _check(self, x: Tensor, lengths: Tensor) -> Tensor:
        return check_network_input(x, lengths, self.input_dim, self.n_layers)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        lengths = self._check(x, lengths)
        if self.layer_mix is not None:
            # Zero padding per layer first so garbage (even NaN) cannot reach the mix.
            valid = lengths_to_mask(lengths, x.shape[2])[:, None, :, None]
            x = self.layer_mix(torch.where(valid, x, torch.zeros((), dtype=x.dtype,
                                                                  device=x.device)))
        x, lengths = pool_frames(x, lengths, self.frame_pool)
        return x, lengths, lengths_to_mask(lengths, x.shape[1])

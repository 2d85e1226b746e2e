"""Whisper's audio encoder in plain torch, on inputs of any length up to 30 s (no padding).

``whisper_log_mel`` is openai-whisper's ``log_mel_spectrogram`` (whisper/audio.py) without the
padding to 30 s: a centred 400-point STFT with a periodic Hann window every 160 samples
(10 ms), the last frame dropped, power, Slaney mel filters (librosa's, as whisper's
mel_filters.npz holds them), log10 floored at 1e-10, clamped to 8 below its maximum, (x + 4) / 4.

``WhisperEncoder`` is whisper/model.py's ``AudioEncoder``: conv1 (k 3) + GELU, conv2 (k 3,
stride 2) + GELU, the sinusoidal positions cut to the input's length, pre-LN residual
attention blocks; ``ln_post`` only when every block runs (the frontend stops after block K and
never builds the blocks after it). Built from the float32 arrays that
model.features.whisper_weights reads, under CTranslate2's names.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from ser_studio.model.constants import MEL_HOP_LENGTH, N_FFT
from ser_studio.model.features.slaney import mel_filters

MEL_FRAME_RATE = 100.0        # log-mel frames per second (hop 160 at 16 kHz)
FRAME_RATE = MEL_FRAME_RATE / 2  # encoder frames per second: conv2 has stride 2
MAX_MEL_FRAMES = 3000         # 30 s: whisper's positions cover 1500 encoder frames
MIN_SAMPLES = N_FFT           # the centred STFT's reflection needs more than N_FFT // 2
LOG_FLOOR = 1e-10
DYNAMIC_RANGE = 8.0           # log10 units kept below the maximum (80 dB)
LN_EPS = 1e-5
PREFIX = "encoder"

_WINDOW = torch.hann_window(N_FFT, periodic=True)
_FILTERS: dict[int, Tensor] = {}


def whisper_log_mel(wav: np.ndarray, n_mels: int) -> Tensor:
    """(N,) float32 at 16 kHz, N >= MIN_SAMPLES -> (n_mels, N // 160) float32 log-mel, scaled
    as whisper scales it (about -1..1.5; the clamp is relative to this input's maximum)."""
    if n_mels not in _FILTERS:
        _FILTERS[n_mels] = torch.from_numpy(mel_filters(n_mels))
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    spec = torch.stft(x, N_FFT, MEL_HOP_LENGTH, window=_WINDOW, center=True,
                      pad_mode="reflect", return_complex=True)
    power = spec[..., :-1].abs() ** 2                          # (201, N // 160)
    log_spec = torch.clamp(_FILTERS[n_mels] @ power, min=LOG_FLOOR).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - DYNAMIC_RANGE)
    return (log_spec + 4.0) / 4.0


def encoder_frames(mel_frames: int) -> int:
    """Encoder frames made from ``mel_frames`` log-mel frames: ceil(T / 2) (conv2, stride 2)."""
    return (mel_frames + 1) // 2


class Block(nn.Module):
    """A pre-LN residual block: x + attn(ln(x)), then x + mlp(ln(x)); (B, T, D) -> same."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.attn_ln, self.mlp_ln = nn.LayerNorm(dim, eps=LN_EPS), nn.LayerNorm(dim, eps=LN_EPS)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def attention(self, x: Tensor) -> Tensor:
        """Full (unmasked) multi-head self-attention over the frames of (B, T, D)."""
        b, t, _ = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)                                 # each (B, H, T, D / H)
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))
        mixed = scores.softmax(dim=-1) @ v
        return self.out(mixed.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.attn_ln(x))
        return x + self.mlp(self.mlp_ln(x))


class WhisperEncoder(nn.Module):
    """log-mel (B, n_mels, T) -> hidden states (B, ceil(T / 2), D) after ``blocks`` blocks
    (and ln_post when ``final_norm``); T <= MAX_MEL_FRAMES."""

    def __init__(self, n_mels: int, dim: int, heads: int, blocks: int, positions: int,
                 final_norm: bool = False):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, dim, 3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(positions, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(blocks))
        self.ln_post = nn.LayerNorm(dim, eps=LN_EPS) if final_norm else None

    def forward(self, mel: Tensor) -> Tensor:
        x = nn.functional.gelu(self.conv1(mel))
        x = nn.functional.gelu(self.conv2(x)).transpose(1, 2)  # (B, T', D)
        x = x + self.positions[: x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return x if self.ln_post is None else self.ln_post(x)


def encoder_geometry(weights: dict[str, np.ndarray]) -> dict[str, int]:
    """n_mels, dim, heads, layers and positions of the encoder whose weights these are."""
    n_layers = 0
    while f"{PREFIX}/layer_{n_layers}/ffn/linear_0/weight" in weights:
        n_layers += 1
    dim, n_mels, _ = weights[f"{PREFIX}/conv1/weight"].shape
    return {"n_mels": int(n_mels), "dim": int(dim), "layers": n_layers,
            "heads": int(weights[f"{PREFIX}/num_heads"]),
            "positions": int(weights[f"{PREFIX}/position_encodings/encodings"].shape[0])}


def build_encoder(weights: dict[str, np.ndarray], blocks: int,
                  final_norm: bool = False) -> WhisperEncoder:
    """A WhisperEncoder (eval mode, no gradients) of the first ``blocks`` blocks, its weights
    from ``weights`` (CTranslate2 names, ``encoder/...``); KeyError for a missing one."""
    geo = encoder_geometry(weights)
    if not 1 <= blocks <= geo["layers"]:
        raise ValueError(f"blocks must be in [1, {geo['layers']}], got {blocks}")
    encoder = WhisperEncoder(geo["n_mels"], geo["dim"], geo["heads"], blocks,
                             geo["positions"], final_norm)
    names = {"conv1.weight": "conv1/weight", "conv1.bias": "conv1/bias",
             "conv2.weight": "conv2/weight", "conv2.bias": "conv2/bias",
             "positions": "position_encodings/encodings"}
    if final_norm:
        names.update({"ln_post.weight": "layer_norm/gamma", "ln_post.bias": "layer_norm/beta"})
    for i in range(blocks):
        here = f"layer_{i}"
        for ours, theirs in (("attn_ln", "self_attention/layer_norm"),
                             ("mlp_ln", "ffn/layer_norm")):
            names[f"blocks.{i}.{ours}.weight"] = f"{here}/{theirs}/gamma"
            names[f"blocks.{i}.{ours}.bias"] = f"{here}/{theirs}/beta"
        for ours, theirs in (("qkv", "self_attention/linear_0"), ("out", "self_attention/linear_1"),
                             ("mlp.0", "ffn/linear_0"), ("mlp.2", "ffn/linear_1")):
            for part in ("weight", "bias"):
                names[f"blocks.{i}.{ours}.{part}"] = f"{here}/{theirs}/{part}"
    encoder.load_state_dict({ours: torch.from_numpy(weights[f"{PREFIX}/{theirs}"])
                             for ours, theirs in names.items()})
    return encoder.eval().requires_grad_(False)

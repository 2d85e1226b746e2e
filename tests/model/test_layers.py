"""Masking helpers, gradient reversal, positions, AdaIN, layer mixing and frame pooling."""
from __future__ import annotations

import math

import pytest
import torch

from ser_studio.model.networks.layers import (GradientReversal, InputStage, LayerMix, MaskedAdaIN,
                                              SinusoidalPositionalEncoding, frame_attention,
                                              grad_reverse, lengths_to_mask, masked_max,
                                              masked_mean, packed_rnn, pool_frames,
                                              sinusoidal_encoding, uniform_attention)


def _garbage_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x with every padded frame replaced by large random values."""
    mask = lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1)
    return torch.where(mask, x, 100 * torch.randn_like(x))


def test_lengths_to_mask():
    mask = lengths_to_mask(torch.tensor([3, 1]), 4)
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False]]


def test_masked_mean_and_max_ignore_padding():
    lengths = torch.tensor([2, 3])
    x = torch.tensor([[[1.0], [3.0], [0.0]], [[-1.0], [-5.0], [-2.0]]])
    x[0, 2] = float("inf")
    mask = lengths_to_mask(lengths, 3)
    assert masked_mean(x, mask).squeeze(-1).tolist() == [2.0, pytest.approx(-8 / 3)]
    assert masked_max(x, mask).squeeze(-1).tolist() == [3.0, -1.0]
    x[0, 2] = float("nan")
    assert torch.isfinite(masked_mean(x, mask)).all()


def test_frame_attention_sums_to_one_over_valid_frames():
    lengths = torch.tensor([5, 2])
    mask = lengths_to_mask(lengths, 5)
    scores = torch.randn(2, 5, 5).masked_fill(~mask.unsqueeze(1), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    weights[1, 2:] = 7.0  # padded queries must not count
    att = frame_attention(weights, mask)
    assert torch.allclose(att.sum(1), torch.ones(2))
    assert (att[1, 2:] == 0).all() and (att[mask] > 0).all()
    expected = weights[1, :2, :2].mean(0)
    assert torch.allclose(att[1, :2], expected / expected.sum())


def test_uniform_attention():
    att = uniform_attention(lengths_to_mask(torch.tensor([4, 1]), 4))
    assert att.tolist() == [[0.25] * 4, [1.0, 0.0, 0.0, 0.0]]


@pytest.mark.parametrize("alpha", [0.5, 0.0, 2.0])
def test_gradient_reversal_flips_and_scales(alpha):
    x = torch.randn(4, 3, requires_grad=True)
    y = grad_reverse(x, alpha)
    assert torch.equal(y, x)
    upstream = torch.randn(4, 3)
    y.backward(upstream)
    assert torch.allclose(x.grad, -alpha * upstream)
    if alpha == 0.0:
        assert (x.grad == 0).all()


def test_gradient_reversal_module():
    x = torch.randn(5, requires_grad=True)
    GradientReversal()(x, 0.5).sum().backward()
    assert torch.allclose(x.grad, torch.full((5,), -0.5))


def test_sinusoidal_encoding_values():
    table = sinusoidal_encoding(6, 5)
    assert table.shape == (6, 5)
    assert table[0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert table[3, 0].item() == pytest.approx(math.sin(3.0))
    assert table[3, 1].item() == pytest.approx(math.cos(3.0))
    assert table[3, 2].item() == pytest.approx(math.sin(3.0 / 10000 ** (2 / 5)), abs=1e-6)


def test_positional_encoding_is_prefix_stable():
    enc = SinusoidalPositionalEncoding(8)
    x = torch.randn(1, 10, 8)
    assert torch.allclose(enc(x)[:, :4], enc(x[:, :4]))
    assert len(enc.state_dict()) == 0


def test_masked_adain_uses_only_valid_frames():
    torch.manual_seed(1)
    adain = MaskedAdaIN(3)
    with torch.no_grad():
        adain.gamma.copy_(torch.tensor([1.0, 2.0, 0.5]))
        adain.beta.copy_(torch.tensor([0.0, -1.0, 3.0]))
    lengths = torch.tensor([4, 6])
    x = _garbage_padded(torch.randn(2, 6, 3) * 3 + 2, lengths)
    mask = lengths_to_mask(lengths, 6)
    out = adain(x, mask)
    valid = x[0, :4]
    by_hand = (valid - valid.mean(0)) / torch.sqrt(valid.var(0, unbiased=False) + 1e-5)
    assert torch.allclose(out[0, :4], by_hand * adain.gamma + adain.beta, atol=1e-5)
    assert (out[0, 4:] == 0).all()
    alone = adain(x[:1, :4], mask[:1, :4])
    assert torch.allclose(out[:1, :4], alone, atol=1e-6)


def test_layer_mix_is_softmax_weighted_sum():
    mix = LayerMix(3)
    x = torch.randn(2, 3, 5, 4)
    assert torch.allclose(mix(x), x.mean(dim=1), atol=1e-6)
    with torch.no_grad():
        mix.logits.copy_(torch.tensor([0.0, math.log(3.0), -1e4]))
    assert torch.allclose(mix.weights(), torch.tensor([0.25, 0.75, 0.0]))
    assert torch.allclose(mix(x), 0.25 * x[:, 0] + 0.75 * x[:, 1], atol=1e-6)
    mix(x).sum().backward()
    assert mix.logits.grad is not None and mix.logits.grad.abs().sum() > 0


def test_pool_frames_by_hand():
    x = torch.arange(14, dtype=torch.float32).reshape(1, 7, 2)
    x[0, 5:] = 1e6  # padding beyond the valid length 5
    pooled, lengths = pool_frames(x, torch.tensor([5]), 3)
    assert lengths.tolist() == [2]
    assert pooled.shape == (1, 3, 2)
    assert pooled[0, 0].tolist() == [2.0, 3.0]   # frames 0..2
    assert pooled[0, 1].tolist() == [7.0, 8.0]   # frames 3..4 only
    assert pooled[0, 2].tolist() == [0.0, 0.0]


def test_pool_frames_length_rounding_and_identity():
    x = torch.randn(3, 10, 4)
    pooled, lengths = pool_frames(x, torch.tensor([10, 9, 1]), 3)
    assert lengths.tolist() == [4, 3, 1] and pooled.shape == (3, 4, 4)
    same, same_lengths = pool_frames(x, torch.tensor([10, 9, 1]), 1)
    assert torch.equal(same[0], x[0]) and (same[2, 1:] == 0).all()
    assert same_lengths.tolist() == [10, 9, 1]


def test_packed_rnn_ignores_padding():
    gru = torch.nn.GRU(3, 4, batch_first=True, bidirectional=True)
    lengths = torch.tensor([7, 4])
    x = _garbage_padded(torch.randn(2, 7, 3), lengths)
    out = packed_rnn(gru, x, lengths)
    alone = packed_rnn(gru, x[1:, :4], lengths[1:])
    assert torch.allclose(out[1, :4], alone[0], atol=1e-6)
    assert (out[1, 4:] == 0).all()


def test_packed_rnn_shortcut_without_padding_matches_packing():
    gru = torch.nn.GRU(3, 4, batch_first=True, bidirectional=True)
    x, lengths = torch.randn(2, 6, 3), torch.tensor([6, 6])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
    expected, _ = torch.nn.utils.rnn.pad_packed_sequence(gru(packed)[0], batch_first=True)
    assert torch.allclose(packed_rnn(gru, x, lengths), expected, atol=1e-6)


def test_input_stage_mixes_pools_and_masks():
    stage = InputStage(4, n_layers=2, frame_pool=2)
    x = torch.randn(2, 2, 7, 4)
    x[1, :, 3:] = float("nan")
    out, lengths, mask = stage(x, torch.tensor([7, 3]))
    assert out.shape == (2, 4, 4) and lengths.tolist() == [4, 2]
    assert mask.tolist()[1] == [True, True, False, False]
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("shape, lengths, message", [
    ((2, 5, 3), [5, 5], "shape"),
    ((2, 5), [5, 5], "shape"),
    ((2, 5, 4), [5], "lengths must have shape"),
    ((2, 5, 4), [6, 5], "1..5"),
    ((2, 5, 4), [0, 5], "1..5"),
])
def test_input_stage_rejects_bad_input(shape, lengths, message):
    with pytest.raises(ValueError, match=message):
        InputStage(4)(torch.randn(*shape), torch.tensor(lengths))


def test_input_stage_rejects_float_lengths_and_wrong_layers():
    with pytest.raises(ValueError, match="integers"):
        InputStage(4)(torch.randn(1, 5, 4), torch.tensor([5.0]))
    with pytest.raises(ValueError, match=r"\(B, 3, T, 4\)"):
        InputStage(4, n_layers=3)(torch.randn(1, 2, 5, 4), torch.tensor([5]))

"""The baseline and enhanced networks: padding invariance, attention, heads, training."""
from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
import torch.nn.functional as F

from ser_studio.model.config.schema import ModelConfig
from ser_studio.model.networks.baseline import MatchingAttention
from ser_studio.model.networks.layers import lengths_to_mask
from ser_studio.model.networks.output import NetworkOutput
from ser_studio.model.networks.registry import build_network

log = logging.getLogger(__name__)

SMALL = ModelConfig(arch="enhanced", input_dim=12, n_classes=3, n_speakers=5, hidden=16,
                    gru_layers=2, attn_heads=4, input_dropout=0.1, dropout=0.2)
ABLATIONS = ["use_posenc", "use_adain", "use_self_attention", "use_enhancement",
             "use_speaker_adversary"]
ALL_OFF = {name: False for name in ABLATIONS}


def _cfg(**changes) -> ModelConfig:
    return dataclasses.replace(SMALL, **changes)


def _net(**changes) -> torch.nn.Module:
    return build_network(_cfg(**changes)).eval()


def _features(cfg: ModelConfig, batch: int, steps: int) -> torch.Tensor:
    shape = (batch, cfg.input_layers, steps, cfg.input_dim) if cfg.input_layers > 1 else (
        batch, steps, cfg.input_dim)
    return torch.randn(*shape)


def _alone_and_batched(net, cfg, short=11, long=23):
    """Outputs for a short utterance alone and inside a batch, padded with random garbage."""
    utt = _features(cfg, 1, short)
    batch = 5 * _features(cfg, 3, long)          # garbage everywhere, then real frames
    batch[1:2, ..., :short, :] = utt
    lengths = torch.tensor([long, short, 17])
    with torch.no_grad():
        alone = net(utt, torch.tensor([short]), alpha=0.7)
        batched = net(batch, lengths, alpha=0.7)
    return alone, batched


CASES = ([("baseline", {})] + [("enhanced", {})]
         + [("enhanced", {name: False}) for name in ABLATIONS] + [("enhanced", ALL_OFF)])


@pytest.mark.parametrize("input_layers", [1, 3])
@pytest.mark.parametrize("frame_pool", [1, 3])
@pytest.mark.parametrize("arch, switches", CASES)
def test_padding_never_changes_a_prediction(arch, switches, frame_pool, input_layers):
    cfg = _cfg(arch=arch, frame_pool=frame_pool, input_layers=input_layers, **switches)
    net = build_network(cfg).eval()
    alone, batched = _alone_and_batched(net, cfg)
    n = alone.frame_lengths.item()
    assert n == -(-11 // frame_pool) and batched.frame_lengths[1].item() == n
    assert torch.allclose(batched.logits[1], alone.logits[0], atol=1e-5)
    assert torch.allclose(batched.attention[1, :n], alone.attention[0], atol=1e-5)
    assert (batched.attention[1, n:] == 0).all()
    if alone.speaker_logits is not None:
        assert torch.allclose(batched.speaker_logits[1], alone.speaker_logits[0], atol=1e-5)


@pytest.mark.parametrize("arch, switches", [("baseline", {}), ("enhanced", {}),
                                            ("enhanced", {"use_self_attention": False})])
def test_attention_sums_to_one_over_valid_frames(arch, switches):
    net = _net(arch=arch, **switches)
    lengths = torch.tensor([20, 9, 1])
    out = net(torch.randn(3, 20, 12), lengths)
    mask = lengths_to_mask(lengths, 20)
    assert out.attention.shape == (3, 20)
    assert torch.allclose(out.attention.sum(1), torch.ones(3), atol=1e-6)
    assert (out.attention[~mask] == 0).all() and (out.attention[mask] >= 0).all()
    if not switches and arch == "enhanced":
        assert out.attention[0].std() > 0  # real self-attention, not the uniform fallback


def test_enhanced_without_self_attention_shows_uniform_weights():
    out = _net(use_self_attention=False)(torch.randn(2, 8, 12), torch.tensor([8, 4]))
    assert torch.allclose(out.attention[1], torch.tensor([0.25] * 4 + [0.0] * 4))


def test_matching_attention_matches_the_loop_definition():
    attention = MatchingAttention(6)
    h = torch.randn(2, 5, 6)
    mask = lengths_to_mask(torch.tensor([5, 3]), 5)
    context, weights = attention(h, mask)
    W = attention.transform.weight
    for b, n in enumerate([5, 3]):
        for i in range(5):
            scores = torch.stack([h[b, i] @ (W @ h[b, j]) for j in range(n)])
            a = torch.softmax(scores, dim=0)
            assert torch.allclose(weights[b, i, :n], a, atol=1e-6)
            assert (weights[b, i, n:] == 0).all()
            assert torch.allclose(context[b, i], a @ h[b, :n], atol=1e-5)


@pytest.mark.parametrize("arch", ["baseline", "enhanced"])
@pytest.mark.parametrize("dim, layers", [(80, 1), (768, 1), (768, 4)])
def test_output_shapes(arch, dim, layers):
    cfg = _cfg(arch=arch, input_dim=dim, input_layers=layers, frame_pool=3)
    x = _features(cfg, 2, 10)
    out = build_network(cfg)(x, torch.tensor([10, 4]), alpha=1.0)
    assert isinstance(out, NetworkOutput)
    assert out.logits.shape == (2, 3) and out.attention.shape == (2, 4)
    assert out.frame_lengths.tolist() == [4, 2] and out.frame_lengths.dtype == torch.long
    if arch == "enhanced":
        assert out.speaker_logits.shape == (2, 5)
    else:
        assert out.speaker_logits is None


@pytest.mark.parametrize("arch, changes, present", [
    ("enhanced", {}, True),
    ("enhanced", {"n_speakers": 0}, False),
    ("enhanced", {"use_speaker_adversary": False}, False),
    ("baseline", {}, False),
])
def test_speaker_head_presence(arch, changes, present):
    net = _net(arch=arch, **changes)
    out = net(torch.randn(2, 6, 12), torch.tensor([6, 3]))
    assert (out.speaker_logits is not None) == present
    assert (getattr(net, "speaker_head", None) is not None) == present


def _trunk_grad_from_speaker_loss(net, alpha):
    net.zero_grad()
    out = net(torch.ones(2, 6, 12), torch.tensor([6, 4]), alpha=alpha)
    F.cross_entropy(out.speaker_logits, torch.tensor([0, 3])).backward()
    return net.project.weight.grad.clone(), net.speaker_head[0].weight.grad.clone()


def test_speaker_gradient_is_reversed_and_scaled_by_alpha():
    net = _net()
    plain, head_plain = _trunk_grad_from_speaker_loss(net, -1.0)  # -(-1) = ordinary gradient
    half, head_half = _trunk_grad_from_speaker_loss(net, 0.5)
    zero, head_zero = _trunk_grad_from_speaker_loss(net, 0.0)
    assert plain.abs().sum() > 0
    assert torch.allclose(half, -0.5 * plain, atol=1e-7)
    assert (zero == 0).all()
    # The head itself learns to find the speaker whatever alpha is.
    assert torch.allclose(head_half, head_plain) and torch.allclose(head_zero, head_plain)


def _logits(net, x, lengths):
    with torch.no_grad():
        return net(x, lengths).logits


def test_enhancement_branch_is_used():
    net = _net()
    x, lengths = torch.randn(3, 9, 12), torch.tensor([9, 5, 2])
    before = _logits(net, x, lengths)
    with torch.no_grad():
        for layer in net.enhancement:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.zero_()
    assert not torch.allclose(before, _logits(net, x, lengths), atol=1e-4)


@pytest.mark.parametrize("part", ["mean", "max"])
def test_both_mean_and_max_pooling_reach_the_head(part):
    net = _net()
    width = net.frame_dim
    assert width == 2 * SMALL.hidden  # frames include the enhancement branch
    first = net.emotion_head[0]
    assert first.in_features == 2 * width  # [mean; max], nothing sliced away
    x, lengths = torch.randn(3, 9, 12), torch.tensor([9, 5, 2])
    before = _logits(net, x, lengths)
    with torch.no_grad():
        columns = slice(0, width) if part == "mean" else slice(width, 2 * width)
        first.weight[:, columns] = 0
    assert not torch.allclose(before, _logits(net, x, lengths), atol=1e-4)


def test_heads_divisible_and_bad_input_errors():
    with pytest.raises(ValueError, match="divisible by attn_heads"):
        build_network(_cfg(hidden=10, attn_heads=4))
    build_network(_cfg(hidden=10, attn_heads=4, use_self_attention=False))
    with pytest.raises(ValueError, match=r"\(B, T, 12\)"):
        _net()(torch.randn(2, 5, 80), torch.tensor([5, 5]))


@pytest.mark.parametrize("arch", ["baseline", "enhanced"])
def test_network_trains_on_a_separable_toy_problem(arch):
    torch.manual_seed(0)
    net = build_network(_cfg(arch=arch, n_classes=2, n_speakers=2, gru_layers=1))
    labels = torch.arange(16) % 2
    lengths = torch.randint(5, 15, (16,))
    x = torch.randn(16, 15, 12)
    # A rising or falling ramp on 3 dims: a temporal cue, since the enhanced model's instance
    # normalisation over time removes any per-utterance constant offset by design.
    ramp = torch.linspace(-2, 2, 15)[None, :, None]
    x[:, :, :3] += (labels.float() * 2 - 1)[:, None, None] * ramp
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        out = net(x, lengths, alpha=0.1)
        loss = F.cross_entropy(out.logits, labels)
        if out.speaker_logits is not None:
            loss = loss + 0.1 * F.cross_entropy(out.speaker_logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(F.cross_entropy(out.logits, labels).item())
    assert losses[-1] < 0.25 * losses[0]
    net.eval()
    assert (_logits(net, x, lengths).argmax(1) == labels).float().mean() == 1.0


@pytest.mark.parametrize("arch, low, high", [("baseline", 2.4e6, 2.6e6),
                                              ("enhanced", 2.8e6, 3.0e6)])
def test_default_parameter_counts(arch, low, high):
    net = build_network(ModelConfig(arch=arch, n_speakers=10))
    count = sum(p.numel() for p in net.parameters())
    log.info("%s defaults (D=80, hidden=256, 2 GRU layers, 10 speakers): %d parameters",
             arch, count)
    assert low < count < high

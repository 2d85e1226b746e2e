"""The Hugging Face encoder frontend, loaded from a tiny HubertModel folder exactly as a user's
local folder is; plus the errors when the weights cannot be had."""
from __future__ import annotations

import dataclasses

import json
import shutil
import time

import numpy as np
import pytest
import torch

from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.features.base import FrontendUnavailable, NormalisedFrontend
from ser_studio.model.features.hubert import HFEncoderFrontend, chunk_spans
from ser_studio.model.features.registry import build_frontend, parse_frontend_spec

TINY_HIDDEN, TINY_LAYERS = 32, 2  # tests/conftest.py tiny_hubert_dir


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def frames(n_samples: int) -> int:
    return (n_samples - 400) // 320 + 1


def encoder(spec: str):
    """The bare encoder frontend of ``spec`` (no loudness normaliser in front)."""
    return build_frontend(dataclasses.replace(parse_frontend_spec(spec), loudness="none",
                                              highpass_hz=0.0))


@pytest.fixture(scope="module")
def last(tiny_hubert_dir):
    return encoder(f"hubert:{tiny_hubert_dir}")


@pytest.fixture(scope="module")
def weighted(tiny_hubert_dir):
    return encoder(f"hubert:{tiny_hubert_dir}@weighted")


def test_the_encoder_sits_behind_the_loudness_normaliser(tiny_hubert_dir):
    normalised = build_frontend(parse_frontend_spec(f"hubert:{tiny_hubert_dir}"))
    assert isinstance(normalised, NormalisedFrontend)
    assert isinstance(normalised.inner, HFEncoderFrontend)
    assert normalised.fingerprint() != encoder(f"hubert:{tiny_hubert_dir}").fingerprint()
    wav = speechlike(1.0)
    assert torch.allclose(normalised(wav), normalised(0.05 * wav), atol=1e-3)


def test_last_layer_shape_and_rate(last):
    assert isinstance(last, HFEncoderFrontend)
    assert (last.dim, last.layers, last.frame_rate) == (TINY_HIDDEN, 1, 50.0)
    feats = last(speechlike(1.0))
    assert feats.shape == (frames(SAMPLE_RATE), TINY_HIDDEN) == (49, TINY_HIDDEN)
    assert feats.dtype == torch.float32 and bool(torch.isfinite(feats).all())
    assert last(speechlike(0.005)).shape == (1, TINY_HIDDEN), "shorter than one frame: padded"


def test_encoder_is_frozen(last):
    assert not last.model.training
    assert all(not p.requires_grad for p in last.model.parameters())
    feats = last(speechlike(0.5))
    assert not feats.requires_grad and not feats.is_inference()


def test_weighted_keeps_every_hidden_state(last, weighted):
    assert weighted.layers == TINY_LAYERS + 1
    wav = speechlike(1.0)
    stack = weighted(wav)
    assert stack.shape == (TINY_LAYERS + 1, frames(SAMPLE_RATE), TINY_HIDDEN)
    assert torch.allclose(stack[-1], last(wav), atol=1e-5), "top of the stack = last layer"
    assert not torch.allclose(stack[0], stack[-1])
    assert weighted.fingerprint() != last.fingerprint()


def test_deterministic_and_fingerprint_stable(tiny_hubert_dir, last, tmp_path):
    wav = speechlike(0.7, seed=3)
    again = build_frontend(FrontendConfig(name="hubert", encoder=str(tiny_hubert_dir),
                                          loudness="none", highpass_hz=0.0))
    assert torch.equal(last(wav), last(wav))
    assert torch.equal(last(wav), again(wav))
    assert again.fingerprint() == last.fingerprint()
    moved = tmp_path / "moved"
    shutil.copytree(tiny_hubert_dir, moved)
    assert encoder(f"hubert:{moved}").fingerprint() == \
        last.fingerprint(), "the identity is the folder's content, not its location"
    assert [torch.equal(x, y) for x, y in zip(last.batch([wav, wav[:8000]]),
                                             [last(wav), last(wav[:8000])])] == [True, True]


def test_other_weights_change_the_fingerprint(last, tmp_path):
    from transformers import HubertModel

    torch.manual_seed(1)
    HubertModel(last.model.config).save_pretrained(tmp_path / "other")
    other = encoder(f"hubert:{tmp_path / 'other'}")
    assert other.fingerprint() != last.fingerprint()
    assert not torch.allclose(other(speechlike(0.5)), last(speechlike(0.5)))


def test_chunked_long_audio_keeps_the_frames(tiny_hubert_dir):
    frontend = encoder(f"hubert:{tiny_hubert_dir}")
    wav = speechlike(2.3, seed=5)
    whole = frontend(wav)
    frontend.chunk_hop = 320 * 30  # 0.6 s chunks instead of 30 s
    chunked = frontend(wav)
    assert chunked.shape == whole.shape == (frames(wav.shape[0]), TINY_HIDDEN)
    # Same convolutional frames; only the transformer context differs, so they are close to,
    # but not exactly, the unchunked features.
    assert not torch.equal(chunked, whole)
    assert frontend.expected_frames(wav.shape[0]) == whole.shape[0]


@pytest.mark.parametrize("n", [400, 719, 720, 9_999, 10_000, 10_080, 10_081, 33_333])
def test_chunk_spans_cover_exactly_the_whole_signal_frames(n):
    stride, receptive, hop = 320, 400, 320 * 10
    spans = chunk_spans(n, stride, receptive, hop)
    assert spans[0][0] == 0 and all(b[0] - a[0] == hop for a, b in zip(spans, spans[1:]))
    assert sum(frames(end - start) for start, end in spans) == frames(n)


def test_feature_extractor_decides_normalisation(tiny_hubert_dir, last, tmp_path):
    assert last.do_normalize is False  # no preprocessor_config.json; group-norm convs
    folder = tmp_path / "with_extractor"
    shutil.copytree(tiny_hubert_dir, folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "Wav2Vec2FeatureExtractor", "do_normalize": True,
        "feature_size": 1, "padding_side": "right", "padding_value": 0.0,
        "return_attention_mask": False, "sampling_rate": SAMPLE_RATE,
    }))
    normalising = encoder(f"hubert:{folder}")
    assert normalising.do_normalize is True
    assert normalising.fingerprint() != last.fingerprint()
    wav = speechlike(0.5)
    assert torch.allclose(normalising(wav), normalising(4 * wav + 0.01), atol=1e-4)
    assert not torch.allclose(last(wav), last(4 * wav + 0.01), atol=1e-4)


def assert_helpful(message: str, *names: str) -> None:
    assert "could not load the speech encoder weights" in message
    assert "--frontend logmel" in message and "--frontend hubert:/path/to/folder" in message
    for name in names:
        assert name in message


def test_missing_folder_is_unavailable(tmp_path):
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(FrontendUnavailable) as err:
        build_frontend(FrontendConfig(name="hubert", encoder=str(missing)))
    assert_helpful(str(err.value), str(missing), "does not exist")


def test_folder_without_weights_is_unavailable(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FrontendUnavailable) as err:
        build_frontend(parse_frontend_spec(f"hubert:{tmp_path / 'empty'}"))
    assert_helpful(str(err.value), str(tmp_path / "empty"))


def test_bogus_hub_id_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bogus = "ser-studio-tests/no-such-encoder"
    start = time.monotonic()
    with pytest.raises(FrontendUnavailable) as err:
        build_frontend(FrontendConfig(name="hubert", encoder=bogus))
    assert time.monotonic() - start < 10
    assert_helpful(str(err.value), bogus, "local Hugging Face cache", "HF_HUB_OFFLINE")


def test_bogus_hub_id_does_not_hang(monkeypatch):
    """Without the offline flag: unreachable hub (no network) or 'no such repo' (network)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    bogus = "ser-studio-tests/no-such-encoder-2"
    start = time.monotonic()
    with pytest.raises(FrontendUnavailable) as err:
        build_frontend(FrontendConfig(name="hubert", encoder=bogus))
    assert time.monotonic() - start < 20, "must not sit in the hub client's retries"
    assert_helpful(str(err.value), bogus, "Hugging Face hub")


def test_a_text_model_is_not_a_speech_encoder(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, vocab_size=50)).save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match="raw waveforms"):
        build_frontend(parse_frontend_spec(f"hubert:{tmp_path / 'bert'}"))

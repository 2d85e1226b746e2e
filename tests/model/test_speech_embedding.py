"""The speech_embedding frontend from the openwakeword 0.5.1 wheel's files: shapes and rate,
parity with openwakeword's own code, pinned files, and the networks on its 12.5 Hz frames."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ser_studio.model.config.schema import FrontendConfig, ModelConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.features import speech_embedding as se
from ser_studio.model.features import wheel_files
from ser_studio.model.features.base import FrontendUnavailable, NormalisedFrontend, frame_span
from ser_studio.model.features.registry import build_frontend, parse_frontend_spec
from ser_studio.model.networks.registry import build_network

CFG = FrontendConfig(name="speech_embedding")


@pytest.fixture(scope="module")
def frontend():
    return se.SpeechEmbeddingFrontend(CFG)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.05 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


def test_shapes_and_rate(frontend):
    assert (frontend.dim, frontend.layers, frontend.frame_rate) == (96, 1, 12.5)
    assert frontend(noise(5.0)).shape == (53, 96)  # (497 mel frames - 76) // 8 + 1
    assert frontend(noise(1.0)).shape == (3, 96)
    short = frontend(noise(0.05))
    assert short.shape == (1, 96) and short.dtype == torch.float32  # padded to one window
    assert torch.isfinite(frontend(noise(2.0))).all()


def test_frame_span_is_the_audio_each_embedding_reads(frontend):
    """A 10 ms burst changes exactly the embeddings whose frame_span holds it (ten of them,
    0.785 s each), so the live view can draw attention where its audio is; the combined
    frontend's frame spans its parts' (GE2E's centred 25 ms reaches 200 samples left)."""
    from ser_studio.model.inference.describe import attention_centre_s

    rng = np.random.default_rng(2)
    quiet = noise(5.0, seed=3) * 0.04
    start, stop = frame_span(frontend)
    step = SAMPLE_RATE / frontend.frame_rate
    for at in (30_000, 41_000):
        burst = quiet.copy()
        burst[at:at + 160] += (0.5 * rng.standard_normal(160)).astype(np.float32)
        moved = np.abs(frontend(burst).numpy() - frontend(quiet).numpy()).max(axis=1)
        changed = np.flatnonzero(moved > 1e-3)
        expected = [k for k in range(moved.size)
                    if k * step + start < at + 160 and at < k * step + stop]
        assert list(changed) == expected and len(expected) == 10
    assert attention_centre_s(frontend, 1) == pytest.approx(12560 / 2 / SAMPLE_RATE)
    both = build_frontend(FrontendConfig(name="speech_embedding+ge2e"))
    assert frame_span(both) == (-200.0, 12560.0)
    assert attention_centre_s(both, 2) == pytest.approx((12360 + 1280) / 2 / SAMPLE_RATE)


def test_same_embeddings_as_openwakeword_computes(frontend):
    utils = pytest.importorskip("openwakeword.utils")
    reference = utils.AudioFeatures(inference_framework="onnx")
    wav = noise(2.5, seed=1)
    expected = reference._get_embeddings((wav * 32767).astype(np.int16))
    got = frontend(wav).numpy()
    np.testing.assert_allclose(got, expected.reshape(got.shape), atol=1e-5)


def test_an_altered_or_missing_file_is_a_clear_error(tmp_path, monkeypatch):
    package = tmp_path / "openwakeword"
    shutil.copytree(wheel_files.package_folder(se.PACKAGE, se.PACKAGE_PIN) / se.MODELS_DIR,
                    package / se.MODELS_DIR)
    monkeypatch.setattr(wheel_files, "package_folder", lambda name, pin: package)
    folder = package / se.MODELS_DIR
    data = bytearray((folder / "embedding_model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (folder / "embedding_model.onnx").write_bytes(bytes(data))
    with pytest.raises(FrontendUnavailable, match="altered.*openwakeword==0.5.1"):
        se.SpeechEmbeddingFrontend(CFG)
    (folder / "embedding_model.onnx").unlink()
    with pytest.raises(FrontendUnavailable, match="missing.*openwakeword==0.5.1"):
        se.SpeechEmbeddingFrontend(CFG)


def test_missing_package_names_what_to_install(monkeypatch):
    monkeypatch.setattr(wheel_files.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FrontendUnavailable, match="pip install openwakeword==0.5.1"):
        se.SpeechEmbeddingFrontend(CFG)


def test_spec_fingerprint_and_normaliser():
    cfg = parse_frontend_spec("speech_embedding")
    built = build_frontend(cfg)
    assert isinstance(built, NormalisedFrontend)
    assert isinstance(built.inner, se.SpeechEmbeddingFrontend)
    assert built.fingerprint() != build_frontend(FrontendConfig(name="logmel")).fingerprint()
    assert built.fingerprint() == build_frontend(cfg).fingerprint()
    wav = noise(1.5, seed=2)
    assert torch.allclose(built(wav), built(0.1 * wav), atol=1e-2)  # level-invariant (int16)
    with pytest.raises(ValueError, match="no encoder"):
        parse_frontend_spec("speech_embedding:x")


@pytest.mark.parametrize("arch,pool,stats", [("baseline", 1, True), ("baseline", 4, True),
                                             ("enhanced", 2, False)])
def test_networks_take_12_5_hz_96_d_frames(arch, pool, stats):
    cfg = ModelConfig(arch=arch, input_dim=96, n_classes=4, hidden=16, gru_layers=1,
                      attn_heads=2, frame_pool=pool, stats_branch=stats, n_speakers=3)
    net = build_network(cfg).eval()
    x = torch.randn(3, 38, 96)  # 3 s at 12.5 Hz
    lengths = torch.tensor([38, 13, 1])  # down to a single 80 ms frame
    out = net(x, lengths)
    assert out.logits.shape == (3, 4) and torch.isfinite(out.logits).all()
    assert torch.allclose(out.attention.sum(1), torch.ones(3), atol=1e-4)


def test_combined_frontends_pool_to_the_slowest_rate_and_concatenate():
    from ser_studio.model.features.combined import ConcatFrontend

    built = build_frontend(parse_frontend_spec("speech_embedding+logmel"))
    inner = built.inner
    assert isinstance(inner, ConcatFrontend) and inner.factors == [1, 8]
    assert (built.dim, built.frame_rate) == (96 + 80, 12.5)
    wav = noise(3.0, seed=4)
    both = built(wav)
    alone = build_frontend(parse_frontend_spec("speech_embedding"))(wav)
    assert both.shape == (alone.shape[0], 176)
    assert torch.allclose(both[:, :96], alone)
    mel = build_frontend(FrontendConfig(name="logmel"))(wav)
    assert torch.allclose(both[0, 96:], mel[:8].mean(0), atol=1e-5)  # 8 mel frames pooled
    assert built.fingerprint() != build_frontend(
        parse_frontend_spec("logmel+speech_embedding")).fingerprint()
    with pytest.raises(ValueError, match="joined with"):
        FrontendConfig(name="logmel+logmel")


def test_the_pooled_statistics_linear_network():
    cfg = ModelConfig(arch="stats_linear", input_dim=96, n_classes=4)
    net = build_network(cfg).eval()
    x = torch.randn(2, 10, 96)
    lengths = torch.tensor([10, 4])
    out = net(x, lengths)
    assert out.logits.shape == (2, 4) and out.speaker_logits is None
    assert torch.allclose(out.attention[1, :4], torch.full((4,), 0.25))
    assert float(out.attention[1, 4:].abs().sum()) == 0.0
    x[1, 4:] = 1e3  # padding never reaches the statistics
    assert torch.allclose(net(x, lengths).logits, out.logits)


def test_a_cross_validation_and_a_prediction_on_speech_embedding(synth_corpus, tmp_path):
    """The frontend end to end: cached features, a fold, its checkpoint, and predict."""
    from ser_studio.model.audio.io import load_audio
    from ser_studio.model.config.schema import TrainConfig
    from ser_studio.model.corpora.corpus import load_corpus
    from ser_studio.model.inference.predictor import Predictor
    from ser_studio.model.training.experiment import run_cross_validation

    corpus = load_corpus(synth_corpus)
    model = ModelConfig(arch="baseline", hidden=16, gru_layers=1, frame_pool=1,
                        stats_branch=True)
    train = TrainConfig(epochs=2, batch_size=16, val_speakers=2, warmup_epochs=1)
    summary = run_cross_validation(corpus, parse_frontend_spec("speech_embedding"), model,
                                   train, tmp_path / "run", cache_dir=tmp_path / "cache",
                                   max_folds=1, final=False)
    fold = summary["folds"][0]
    assert summary["configs"]["model"]["input_dim"] == 96
    predictor = Predictor.load(tmp_path / "run" / fold["checkpoint"])
    assert "speech_embedding" in predictor.name and predictor.attention_rate == 12.5
    pred = predictor.predict(load_audio(corpus.utterances[0].path), vad=False)
    assert pred.label in corpus.labels and pred.attention.size >= 1


def test_the_sliding_graph_gives_the_wheel_graphs_embeddings_bit_for_bit(frontend):
    """One pass over a run of mel frames gives each window of 76 frames every 8 what the
    wheel's graph gives that window alone: lengths around a step, and runs long enough to go
    through in several pieces."""
    from ser_studio.model.onnx.session import session

    inner = frontend.inner if hasattr(frontend, "inner") else frontend
    wheel = session(se.checked_file("embedding_model.onnx"))
    rng = np.random.default_rng(4)
    for frames in (76, 83, 84, 157, 1100, 76 + 8 * (2 * se.EMBED_PIECE) + 3):
        spec = (2 * rng.standard_normal((frames, 32))).astype(np.float32)
        starts = range(0, frames - se.CONTEXT_FRAMES + 1, se.STEP_FRAMES)
        alone = np.concatenate([wheel.run(None, {"input_1": spec[s:s + se.CONTEXT_FRAMES][
            None, :, :, None]})[0].reshape(1, se.EMBEDDING_DIM) for s in starts])
        np.testing.assert_array_equal(inner.embed(spec).numpy(), alone)

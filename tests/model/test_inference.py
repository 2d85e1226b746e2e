"""The Predictor: loading, shapes, the speech gate, cropping, file timelines, errors."""
from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from ser_studio.model.audio.io import AudioError, load_audio
from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.features.logmel import LogMelFrontend
from ser_studio.model.features.registry import build_frontend
from ser_studio.model.inference import predictor as inference
from ser_studio.model.inference.predictor import ModelNotFoundError, Predictor, default_model_path
from ser_studio.model.networks.checkpoint import Checkpoint, CheckpointError, save_checkpoint
from ser_studio.model.networks.registry import build_network

LABELS = ["angry", "happy", "neutral", "sad"]
POOL = 2



def make_checkpoint(path, *, arch="enhanced", labels=LABELS, eval_max_seconds=4.0,
                    frontend=FrontendConfig(name="logmel"), input_dim=80, drop_key=False):
    """A randomly initialised network saved as a checkpoint; returns the weights path."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, input_dim=input_dim, n_classes=len(labels), hidden=16,
                      gru_layers=1, attn_heads=2, frame_pool=POOL)
    state = build_network(cfg).state_dict()
    if drop_key:
        state.pop(next(iter(state)))
    ckpt = Checkpoint(frontend=frontend, model=cfg,
                      train=TrainConfig(eval_max_seconds=eval_max_seconds), labels=list(labels),
                      norm_mean=[-6.0] * input_dim, norm_std=[3.0] * input_dim,
                      state_dict=state)
    return save_checkpoint(ckpt, path)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> Predictor:
    return Predictor.load(make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.safetensors"))


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    """About 4.5 s of espeak-ng speech at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("espeak") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "The quick brown fox jumps over the lazy "
                    "dog. I am very happy today."], check=True, capture_output=True)
    return load_audio(path)


def test_predict_shapes_and_probabilities(predictor, speech):
    clip = speech[: 3 * SAMPLE_RATE]
    pred = predictor.predict(clip)
    assert pred.speech and pred.speech_ratio > 0.5 and pred.label in LABELS
    assert pred.probs.shape == (4,) and pred.probs.dtype == np.float32
    assert pred.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert pred.label == LABELS[int(np.argmax(pred.probs))]
    frames = 1 + len(clip) // 160                       # log-mel frames
    assert pred.attention.shape == (math.ceil(frames / POOL),)
    assert pred.attention.sum() == pytest.approx(1.0, abs=1e-4)
    assert pred.attention_rate == pytest.approx(100 / POOL)
    assert pred.latency_s > 0 and pred.attention_offset_s == 0.0
    assert predictor.labels == LABELS and "enhanced" in predictor.name


def test_silence_and_noise_give_no_emotion(predictor):
    rng = np.random.default_rng(0)
    for wav in (np.zeros(2 * SAMPLE_RATE, np.float32),
                (0.2 * rng.standard_normal(2 * SAMPLE_RATE)).astype(np.float32)):
        pred = predictor.predict(wav)
        assert pred.label is None and not pred.speech
        assert not pred.probs.any() and pred.attention.size == 0
    forced = predictor.predict(np.zeros(SAMPLE_RATE, np.float32), vad=False)
    assert forced.label in LABELS and math.isnan(forced.speech_ratio)


def test_long_input_is_centre_cropped_to_eval_max_seconds(predictor, speech):
    wav = np.tile(speech, 3)[: 9 * SAMPLE_RATE]
    pred = predictor.predict(wav, vad=False)
    assert predictor.max_frames() == 400                  # 4 s of 100 fps log-mel
    assert pred.attention.shape == (400 // POOL,)
    assert pred.attention_offset_s == pytest.approx(2.5)
    centre = predictor.predict(wav[int(2.5 * SAMPLE_RATE): int(6.5 * SAMPLE_RATE)], vad=False)
    np.testing.assert_allclose(pred.probs, centre.probs, atol=1e-6)


def test_predict_rejects_bad_waveforms(predictor):
    with pytest.raises(ValueError, match="shape"):
        predictor.predict(np.zeros((100, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        predictor.predict(np.full(SAMPLE_RATE, np.nan, np.float32))


def test_predict_file_timeline_covers_the_file(predictor, speech, tmp_path):
    path = tmp_path / "long.wav"
    wav = np.concatenate([np.zeros(3 * SAMPLE_RATE, np.float32), speech])
    sf.write(path, wav, SAMPLE_RATE)
    result = predictor.predict_file(path)
    duration = len(wav) / SAMPLE_RATE
    assert result.path == path and result.duration_s == pytest.approx(duration)
    starts = [s for s, _, _ in result.windows]
    assert starts[0] == 0.0 and result.windows[-1][1] == pytest.approx(duration)
    assert all(e - s == pytest.approx(3.0) for s, e, _ in result.windows)
    assert all(b - a <= 1.0 + 1e-9 for a, b in zip(starts, starts[1:]))   # no gap
    assert result.windows[0][2].label is None                             # the silent start
    assert all(p.label in LABELS for s, _, p in result.windows if s >= 3.0)
    overall = result.overall                              # longer than 4 s: averaged windows
    assert overall.label in LABELS and overall.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert 0.3 < overall.speech_ratio < 0.9 and overall.latency_s > 0
    speech_windows = [(p.probs, p.speech_ratio) for _, _, p in result.windows if p.speech]
    expected = np.average([p for p, _ in speech_windows], axis=0,
                          weights=[r for _, r in speech_windows])
    np.testing.assert_allclose(overall.probs, expected / expected.sum(), atol=1e-5)


def test_predict_file_short_file_is_one_window(predictor, speech, tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, speech[: 2 * SAMPLE_RATE], SAMPLE_RATE)
    result = predictor.predict_file(path, window_s=3.0, hop_s=1.0)
    assert len(result.windows) == 1 and result.windows[0][:2] == (0.0, 2.0)
    assert result.windows[0][2].label == result.overall.label and result.overall.label in LABELS


@pytest.mark.parametrize("content", [None, b"", b"this is not audio at all" * 20])
def test_predict_file_bad_file_names_it(predictor, tmp_path, content):
    path = tmp_path / "bad file.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match="bad file.wav"):
        predictor.predict_file(path)


def test_missing_default_model_says_how_to_train(monkeypatch, tmp_path):
    monkeypatch.setattr(inference, "default_model_path", lambda: tmp_path / "none.safetensors")
    with pytest.raises(ModelNotFoundError) as err:
        Predictor.load()
    message = str(err.value)
    assert "none.safetensors" in message and "python main.py train" in message
    assert "--model DIR/model.safetensors" in message
    assert isinstance(err.value, CheckpointError)


def test_default_model_path_is_in_the_package_assets():
    path = default_model_path()
    assert path.name == "default_model.safetensors" and path.parent.name == "assets"
    assert (path.parent.parent / "model" / "inference" / "predictor.py").is_file()


def test_bad_checkpoints_are_refused(tmp_path):
    mismatched = make_checkpoint(tmp_path / "dims", frontend=FrontendConfig(n_mels=40))
    with pytest.raises(CheckpointError, match="expects 1 of 80"):
        Predictor.load(mismatched)
    missing = make_checkpoint(tmp_path / "missing", drop_key=True)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        Predictor.load(missing)
    with pytest.raises(CheckpointError):
        Predictor.load(tmp_path / "nothing.safetensors")


# ---- a tiny trained model -----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(synth_corpus, tmp_path_factory):
    """A baseline network trained briefly on sessions 1-4 of the synthetic corpus (log-mel),
    saved as a checkpoint; returns (path, held-out utterances, their features)."""
    corpus = load_corpus(synth_corpus)
    frontend = build_frontend(FrontendConfig(name="logmel"))
    feats = {u.path: frontend(load_audio(u.path)) for u in corpus.utterances}
    train = [u for u in corpus.utterances if u.session != "Ses05"]
    test = [u for u in corpus.utterances if u.session == "Ses05"]
    frames = torch.cat([feats[u.path] for u in train])
    mean, std = frames.mean(0), frames.std(0).clamp_min(1e-5)
    cfg = ModelConfig(arch="baseline", input_dim=80, n_classes=4, hidden=24, gru_layers=1,
                      frame_pool=4, input_dropout=0.0, dropout=0.1)
    torch.manual_seed(0)
    net = build_network(cfg)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(4):
        perm = torch.randperm(len(train), generator=order).tolist()
        for start in range(0, len(train), 32):
            items = [train[i] for i in perm[start:start + 32]]
            x = [(feats[u.path] - mean) / std for u in items]
            lengths = torch.tensor([len(f) for f in x])
            padded = torch.nn.utils.rnn.pad_sequence(x, batch_first=True)
            target = torch.tensor([LABELS.index(u.label) for u in items])
            loss = F.cross_entropy(net(padded, lengths).logits, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    ckpt = Checkpoint(frontend=frontend.config, model=cfg, train=TrainConfig(), labels=LABELS,
                      speakers=sorted({u.speaker for u in train}), norm_mean=mean.tolist(),
                      norm_std=std.tolist(), state_dict=net.state_dict())
    path = save_checkpoint(ckpt, tmp_path_factory.mktemp("trained") / "model.safetensors")
    return path, test, [feats[u.path] for u in test]


def test_trained_model_beats_chance_on_unseen_speakers(trained):
    path, test, feats = trained
    predictor = Predictor.load(path)
    probs = predictor.probs_of_features(feats, batch_size=7)
    assert probs.shape == (len(test), 4)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    accuracy = np.mean([LABELS[i] == u.label for i, u in zip(probs.argmax(1), test)])
    assert accuracy >= 0.5                                # chance: 0.25
    # batched (padded, length-sorted) == one at a time
    for i in (0, len(feats) - 1):
        single, _ = predictor.predict_features(feats[i])
        np.testing.assert_allclose(probs[i], single, atol=1e-5)
    # the waveform path gives the same as the feature path
    wav_pred = predictor.predict(load_audio(test[0].path), vad=False)
    np.testing.assert_allclose(wav_pred.probs, probs[0], atol=1e-5)


def test_predictions_are_immutable_and_a_one_window_file_keeps_its_window_latency(
        trained, tmp_path):
    import dataclasses

    import soundfile as sf

    path, test, _ = trained
    predictor = Predictor.load(path)
    wav = load_audio(test[0].path)[:2 * 16000]
    clip = tmp_path / "short.wav"
    sf.write(clip, wav, 16000)
    result = predictor.predict_file(clip, window_s=3.0, vad=False)
    assert len(result.windows) == 1
    window = result.windows[0][2]
    assert result.overall is not window and window.latency_s <= result.overall.latency_s
    np.testing.assert_array_equal(result.overall.probs, window.probs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.overall.label = "sad"

"""Per-speaker and per-corpus standardisation (TrainConfig.speaker_norm "speaker", "corpus"):
speech spans cached per file, each speaker (corpus) standardised by their (its) own speech's
statistics, in training and in the test."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from ser_studio.model.adaptation.profile import expects_calibration
from ser_studio.model.config.inference import InferenceConfig
from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.corpora.record import Utterance
from ser_studio.model.training.data import FeatureDataset
from ser_studio.model.training.experiment import run_cross_validation
from ser_studio.model.training.speaker_norms import (SpanCache, corpus_norms, group_norms,
                                                      speaker_norms, speech_norm)


def _utt(path, speaker):
    return Utterance(path=path, label="angry", speaker=speaker, gender="F", session="")


@pytest.fixture
def two_speakers(tmp_path):
    """Two speakers' files whose (fake) features differ by a constant offset per speaker."""
    rng = np.random.default_rng(0)
    utts, features = [], {}
    for speaker, offset in (("a", 0.0), ("b", 5.0)):
        for k in range(3):
            path = tmp_path / f"{speaker}{k}.wav"
            sf.write(path, (0.1 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32),
                     SAMPLE_RATE)
            utts.append(_utt(path, speaker))
            features[path] = torch.randn(50, 4, generator=torch.Generator().manual_seed(k)) + offset
    return utts, features


class _Spans:
    """Every file five minutes of speech (no detector), so the speakers' own statistics
    outweigh the global ones in the blend (w = 900 s / 930 s)."""

    def get(self, path):
        return [(0, 300 * SAMPLE_RATE)], 300 * SAMPLE_RATE


def test_each_speaker_is_standardised_by_their_own_statistics(two_speakers):
    utts, features = two_speakers
    mean, std = speech_norm(utts, features, _Spans(), frame_rate=50.0)
    norms = speaker_norms(utts, features, _Spans(), 50.0, mean, std)
    assert set(norms) == {"a", "b"}
    per_speaker = FeatureDataset(features, utts, ["angry"], mean, std, max_frames=50,
                                 train=False, norms=norms)
    global_only = FeatureDataset(features, utts, ["angry"], mean, std, max_frames=50,
                                 train=False)

    def speaker_means(dataset):
        items = [dataset[i][0].mean().item() for i in range(len(dataset))]
        return np.mean(items[:3]), np.mean(items[3:])

    a, b = speaker_means(per_speaker)
    assert abs(a - b) < 0.5  # the offset is (mostly) standardised away
    a, b = speaker_means(global_only)
    assert abs(a - b) > 1.5


def test_each_corpus_is_standardised_by_its_own_statistics(two_speakers):
    """Corpus X: speaker a (offset 0) and b (offset 5); corpus Y: speaker c (offset 20), one
    file. Every speaker gets their corpus's norm: a and b share one (their offset is kept),
    c's is its own, so the corpora's offsets are standardised away."""
    utts, features = two_speakers
    utts = [dataclasses.replace(u, corpus="X") for u in utts]
    extra = utts[0].path.with_name("c0.wav")
    extra.write_bytes(utts[0].path.read_bytes())
    features[extra] = features[utts[0].path] + 20.0
    utts.append(_utt(extra, "c"))
    utts[-1] = dataclasses.replace(utts[-1], corpus="Y")
    mean, std = speech_norm(utts, features, _Spans(), frame_rate=50.0)
    norms = corpus_norms(utts, features, _Spans(), 50.0, mean, std)
    assert set(norms) == {"a", "b", "c"}
    assert torch.equal(norms["a"][0], norms["b"][0]) and not torch.equal(norms["a"][0],
                                                                        norms["c"][0])
    assert group_norms("corpus", utts, features, _Spans(), 50.0, mean, std).keys() == norms.keys()
    dataset = FeatureDataset(features, utts, ["angry"], mean, std, max_frames=50, train=False,
                             norms=norms)
    means = [dataset[i][0].mean().item() for i in range(len(dataset))]
    plain = FeatureDataset(features, utts, ["angry"], mean, std, max_frames=50, train=False)
    y_global = plain[6][0].mean().item()
    x, y = np.mean(means[:6]), means[6]
    # each corpus centred on itself (Y's one file leans on the global statistics in the blend)
    assert abs(x) < 0.3 and abs(y) < 0.5 * abs(y_global)
    assert np.mean(means[3:6]) - np.mean(means[:3]) > 1.0  # a speaker's offset within it kept


def test_spans_are_found_once_per_file_and_a_broken_entry_is_recomputed(tmp_path, two_speakers):
    utts, _ = two_speakers
    cache = SpanCache(tmp_path / "cache")
    spans, n = cache.get(utts[0].path)
    assert n == SAMPLE_RATE and spans and cache.computed == 1
    again = SpanCache(tmp_path / "cache")
    assert again.get(utts[0].path) == (spans, n) and again.computed == 0
    entry = next((tmp_path / "cache" / "speech_spans").rglob("*.json"))
    entry.write_text("{broken")
    assert again.get(utts[0].path) == (spans, n) and again.computed == 0  # held in memory
    fresh = SpanCache(tmp_path / "cache")
    assert fresh.get(utts[0].path) == (spans, n) and fresh.computed == 1
    assert json.loads(entry.read_text())["n_samples"] == SAMPLE_RATE


def test_cross_validation_reports_adapted_and_uncalibrated_figures(synth_corpus, tmp_path):
    corpus = load_corpus(synth_corpus)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=3e-3, warmup_epochs=1, val_speakers=2,
                      speaker_norm="speaker")
    model = ModelConfig(arch="baseline", hidden=16, gru_layers=1, frame_pool=4)
    summary = run_cross_validation(corpus, FrontendConfig(), model, cfg, tmp_path / "run",
                                   cache_dir=tmp_path / "cache", max_folds=1, final=False)
    fold = summary["folds"][0]
    assert fold["uncalibrated_metrics"]["n"] == fold["metrics"]["n"]
    assert summary["uncalibrated_aggregate"]["folds"] == 1
    report = (tmp_path / "run" / "report.md").read_text()
    assert "speaker-adapted, unlabelled" in report and "Without calibration" in report
    assert any((tmp_path / "cache" / "speech_spans").rglob("*.json"))


def test_a_per_speaker_model_expects_calibration_and_predict_says_so(capsys):
    from ser_studio.model.cli.predict import _hint_calibration

    assert expects_calibration(TrainConfig(speaker_norm="speaker"))
    assert expects_calibration({"speaker_norm": "speaker"})
    assert expects_calibration({"speaker_norm": "corpus"})
    assert not expects_calibration(TrainConfig()) and not expects_calibration(None)

    class _Predictor:
        class checkpoint:
            inference = InferenceConfig(speaker_norm="speaker")

    assert expects_calibration(_Predictor.checkpoint.inference)
    _hint_calibration(_Predictor())
    assert "expects calibration" in capsys.readouterr().err
    _Predictor.checkpoint.inference = InferenceConfig()
    _hint_calibration(_Predictor())
    assert capsys.readouterr().err == ""


class _WholeFiles:
    """Every file all speech, each as long as ``seconds`` says (no detector)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def get(self, path):
        n = int(self.seconds[path] * SAMPLE_RATE)
        return [(0, n)], n


def test_pooled_statistics_and_blend_weights_follow_unequal_speech(tmp_path):
    """Speaker a: one 6 s file; speaker b: three files of 12, 20 and 4 s, with skewed features
    of unequal lengths. The uncalibrated statistics pool every frame (not a mean of the files'
    or the speakers' statistics); each speaker's blend weighs their own speech seconds,
    w = s / (s + 30), and standardises exactly their items."""
    rng = np.random.default_rng(5)
    table = [("a", 6.0, 30, 1.0, 0.0), ("b", 12.0, 40, 2.0, 3.0), ("b", 20.0, 80, 0.5, 3.0),
             ("b", 4.0, 10, 4.0, -1.0)]
    utts, features, seconds = [], {}, {}
    for k, (speaker, secs, frames, scale, shift) in enumerate(table):
        path = tmp_path / f"{speaker}{k}.wav"
        utts.append(_utt(path, speaker))
        features[path] = torch.tensor(rng.exponential(scale, (frames, 3)) + shift,
                                      dtype=torch.float32)
        seconds[path] = secs
    spans = _WholeFiles(seconds)  # 5 frames/s: every frame's centre lies inside its file
    mean, std = speech_norm(utts, features, spans, frame_rate=5.0)
    every = torch.cat(list(features.values())).double().numpy()
    np.testing.assert_allclose(mean, every.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, every.std(0), rtol=1e-5)
    global_mean, global_std = torch.tensor([1.0, -1.0, 0.5]), torch.tensor([2.0, 0.5, 1.0])
    norms = speaker_norms(utts, features, spans, 5.0, global_mean, global_std)
    for speaker, speech, files in (("a", 6.0, utts[:1]), ("b", 36.0, utts[1:])):
        own = torch.cat([features[u.path] for u in files]).double().numpy()
        w = speech / (speech + 30.0)
        want_mean = w * own.mean(0) + (1 - w) * global_mean.numpy()
        want_std = np.sqrt(w * own.std(0) ** 2 + (1 - w) * global_std.numpy() ** 2)
        np.testing.assert_allclose(norms[speaker][0], want_mean, rtol=1e-5)
        np.testing.assert_allclose(norms[speaker][1], want_std, rtol=1e-5)
    dataset = FeatureDataset(features, utts, ["angry"], global_mean, global_std,
                             max_frames=100, train=False, norms=norms)
    for i, utt in enumerate(utts):
        norm_mean, norm_std = norms[utt.speaker]
        torch.testing.assert_close(dataset[i][0], (features[utt.path] - norm_mean) / norm_std)

"""Speaker profiles: estimated from speech frames only, stored and refused for another model,
blended by speech seen, and the unlabelled adaptation protocols of ``evaluate``."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from ser_studio.model.adaptation.profile import (ProfileBuilder, ProfileError, SpeakerProfile,
                                                 blended_norm, load_profile, make_profile)
from ser_studio.model.config.schema import FrontendConfig, ModelConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.inference.predictor import Predictor
from ser_studio.model.networks.checkpoint import Checkpoint, save_checkpoint
from ser_studio.model.networks.registry import build_network

LABELS = ["angry", "happy", "neutral", "sad"]


def checkpoint(path, seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(arch="baseline", input_dim=80, n_classes=4, hidden=16, frame_pool=2)
    ckpt = Checkpoint(frontend=FrontendConfig(name="logmel"), model=cfg, train=None,
                      labels=LABELS, norm_mean=[-6.0] * 80, norm_std=[3.0] * 80,
                      state_dict=build_network(cfg).state_dict())
    return save_checkpoint(ckpt, path)


@pytest.fixture
def predictor(tmp_path):
    return Predictor.load(checkpoint(tmp_path / "a.safetensors"))


def test_only_speech_frames_count():
    builder = ProfileBuilder()
    feats = torch.full((100, 3), 100.0)  # 1 s at 100 frames/s
    feats[40:60] = torch.tensor([1.0, 2.0, 3.0])
    spans = [(int(0.4 * SAMPLE_RATE), int(0.6 * SAMPLE_RATE))]
    builder.add(feats, spans, SAMPLE_RATE, 100.0)
    profile = builder.profile("sha", "fp")
    np.testing.assert_allclose(profile.mean, [1.0, 2.0, 3.0])
    assert profile.speech_seconds == pytest.approx(0.2)
    with pytest.raises(ProfileError, match="no speech"):
        ProfileBuilder().profile("sha", "fp")


def test_blend_weighs_by_speech_seen():
    profile = SpeakerProfile("sha", "fp", (10.0,), (2.0,), speech_seconds=30.0)
    mean, std = blended_norm(profile, torch.tensor([0.0]), torch.tensor([2.0]),
                             prior_seconds=30.0)
    assert float(mean) == pytest.approx(5.0) and float(std) == pytest.approx(2.0)
    lots = SpeakerProfile("sha", "fp", (10.0,), (2.0,), speech_seconds=3000.0)
    assert float(blended_norm(lots, torch.tensor([0.0]), torch.tensor([2.0]))[0]) > 9.8


def test_blend_with_unequal_weights_mixes_means_and_variances():
    """10 s of speech against a 30 s prior: the speaker weighs w = 0.25, training 0.75; the
    spreads mix as variances (not as standard deviations)."""
    profile = SpeakerProfile("sha", "fp", (1.0, -2.0), (1.0, 0.5), speech_seconds=10.0)
    mean, std = blended_norm(profile, torch.tensor([3.0, 6.0]), torch.tensor([3.0, 2.0]),
                             prior_seconds=30.0)
    np.testing.assert_allclose(mean, [0.25 * 1 + 0.75 * 3, 0.25 * -2 + 0.75 * 6], rtol=1e-6)
    np.testing.assert_allclose(std, [np.sqrt(0.25 * 1 + 0.75 * 9),
                                     np.sqrt(0.25 * 0.25 + 0.75 * 4)], rtol=1e-6)


def test_profile_pools_all_speech_frames_of_unequal_recordings():
    """A short and a long recording of skewed features, one of them a layer stack: the profile is
    the mean and population std (ddof 0) of every speech frame (and layer) together, not the
    mean of the recordings' statistics."""
    rng = np.random.default_rng(3)
    short = rng.exponential(1.0, (30, 2))
    stack = np.stack([rng.exponential(4.0, (170, 2)) + 2, rng.exponential(0.5, (170, 2)) - 1])
    builder = ProfileBuilder()
    builder.add(torch.tensor(short), [(0, SAMPLE_RATE)], SAMPLE_RATE, 30.0)  # all speech
    # 1.7 s at 100 frames/s, speech from 0.5 s on: frames 50..169 of both layers
    builder.add(torch.tensor(stack), [(SAMPLE_RATE // 2, int(1.7 * SAMPLE_RATE))],
                int(1.7 * SAMPLE_RATE), 100.0)
    frames = np.concatenate([short, stack[0, 50:], stack[1, 50:]]).astype(np.float32)
    profile = builder.profile("sha", "fp")
    np.testing.assert_allclose(profile.mean, frames.mean(0), rtol=1e-5)
    np.testing.assert_allclose(profile.std, frames.std(0), rtol=1e-5)
    assert profile.speech_seconds == pytest.approx(1.0 + 1.2)


def test_a_profile_applied_twice_blends_once_into_the_training_statistics(tmp_path, predictor):
    """A profile of 10 s (w = 0.25) with mean 1 and std 2 on a model trained with mean -6 and
    std 3 standardises as a model trained with mean -4.25 and std sqrt(7.75) would, however
    often it is applied (each time from the training statistics, never from the last blend)."""
    profile = SpeakerProfile(predictor.model_sha1(), predictor.frontend.fingerprint(),
                             (1.0,) * 80, (2.0,) * 80, speech_seconds=10.0)
    torch.manual_seed(0)
    cfg = ModelConfig(arch="baseline", input_dim=80, n_classes=4, hidden=16, frame_pool=2)
    blended = Checkpoint(frontend=FrontendConfig(name="logmel"), model=cfg, train=None,
                         labels=LABELS, norm_mean=[0.25 * 1 - 0.75 * 6] * 80,
                         norm_std=[float(np.sqrt(0.25 * 4 + 0.75 * 9))] * 80,
                         state_dict=build_network(cfg).state_dict())
    reference = Predictor.load(save_checkpoint(blended, tmp_path / "blended.safetensors"))
    feats = [torch.randn(40, 80, generator=torch.Generator().manual_seed(1)) * 3 - 5]
    want = reference.probs_of_features(feats)
    for _ in range(2):
        predictor.use_profile(profile)
        np.testing.assert_allclose(predictor.probs_of_features(feats), want, atol=1e-5)
    predictor.use_profile(None)
    assert not np.allclose(predictor.probs_of_features(feats), want, atol=1e-3)


def test_speech_frames_are_found_on_a_centred_grid():
    """12.5 frames/s over 1 s: 7 frames centred in the signal (4160, 5440, ... 11840 samples),
    so a span of the first 5000 samples holds only frame 0, and the last 4200 only frame 6."""
    from ser_studio.model.adaptation.profile import speech_frame_mask

    assert speech_frame_mask(7, 12.5, [(0, 5000)], SAMPLE_RATE).tolist() == [
        True] + [False] * 6
    assert speech_frame_mask(7, 12.5, [(11800, SAMPLE_RATE)], SAMPLE_RATE).tolist() == [
        False] * 6 + [True]
    both = speech_frame_mask(7, 12.5, [(0, 5000), (6700, 6800)], SAMPLE_RATE)
    assert both.tolist() == [True, False, True, False, False, False, False]


def test_round_trip_and_refusal_for_another_model(tmp_path, predictor, speech_wav):
    profile = make_profile(predictor, [speech_wav])
    assert profile.speech_seconds > 1.0 and len(profile.mean) == 80
    path = profile.save(tmp_path / "me.json")
    assert load_profile(path) == profile
    before = predictor.probs_of_features([predictor.frontend(speech_wav)])
    predictor.use_profile(load_profile(path), source=path)
    after = predictor.probs_of_features([predictor.frontend(speech_wav)])
    assert not np.allclose(before, after)
    predictor.use_profile(None)
    np.testing.assert_allclose(predictor.probs_of_features([predictor.frontend(speech_wav)]),
                               before, atol=1e-6)
    other = Predictor.load(checkpoint(tmp_path / "b.safetensors", seed=1))
    with pytest.raises(ProfileError, match=r"me\.json: .*another model"):
        other.use_profile(load_profile(path), source=path)
    path.write_text(json.dumps({"format": "x"}))
    with pytest.raises(ProfileError, match=r"me\.json: not a speaker profile"):
        load_profile(path)


@pytest.fixture
def speech_wav(synth_corpus):
    from ser_studio.model.audio.io import load_audio

    utts = load_corpus(synth_corpus).utterances
    return np.concatenate([load_audio(u.path) for u in utts[:3]])


def _args(model, corpus, adapt, **extra):
    return argparse.Namespace(model=model, corpus=corpus, map=None, classes=None,
                              cache=corpus.parent / "cache",
                              batch_size=8, json=True, no_progress=True, adapt=adapt,
                              enrol_seconds=extra.get("enrol_seconds", 10.0))


def test_adaptation_reads_no_labels_and_enrolment_scores_only_the_rest(tmp_path,
                                                                       synth_corpus):
    from ser_studio.model.cli.evaluate import evaluate

    model = checkpoint(tmp_path / "m.safetensors")
    utts = load_corpus(synth_corpus).utterances
    rng = np.random.default_rng(0)
    manifests = []
    for name, labels in (("true", [u.label for u in utts]),
                         ("shuffled", list(rng.permutation([u.label for u in utts])))):
        path = tmp_path / f"{name}.csv"
        path.write_text("path,label,speaker\n" + "".join(
            f"{u.path},{label},{u.speaker}\n" for u, label in zip(utts, labels)))
        manifests.append(path)
    plain = evaluate(_args(model, manifests[0], "none"))
    adapted = [evaluate(_args(model, m, "speaker")) for m in manifests]
    assert "speaker-adapted, unlabelled" in adapted[0]["protocol"]
    assert plain["protocol"].startswith("plain")
    assert adapted[0]["n"] == plain["n"] == len(utts)
    # the same predictions whatever the labels say: the adaptation never reads them
    from ser_studio.model.cli.evaluate import predict_adapted
    from ser_studio.model.features.cache import FeatureCache

    predictor = Predictor.load(model)
    cache = FeatureCache(predictor.frontend, tmp_path / "cache")
    runs = [predict_adapted(predictor, cache, load_corpus(m), "speaker", 10.0, 8)
            for m in manifests]
    by_path = [dict(zip([u.path for u in scored], labels)) for scored, labels in runs]
    assert by_path[0] == by_path[1]
    enrol = evaluate(_args(model, manifests[0], "enrol", enrol_seconds=1.0))
    speakers = {u.speaker for u in utts}
    assert len(utts) - len(speakers) * 3 <= enrol["n"] < len(utts)
    assert "first 1 s of speech" in enrol["protocol"]


def _predict_json(args, capsys) -> dict:
    from ser_studio.model.cli.main import main as cli_main

    assert cli_main(["predict", *map(str, args), "--json", "--no-vad"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_profile_fits_the_models_onnx_export_and_predict_says_it_applied_it(
        tmp_path, speech_wav, capsys):
    """Issue 23: `export`, then `predict --model OUT.onnx --profile P.json` with a profile of
    the checkpoint (and the other way round); the output says the profile was applied."""
    import soundfile as sf

    from ser_studio.model.cli.main import main as cli_main

    ckpt, onnx, prof = tmp_path / "m.safetensors", tmp_path / "m_export.onnx", tmp_path / "p.json"
    checkpoint(ckpt)
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech_wav, SAMPLE_RATE)
    assert cli_main(["export", "--model", str(ckpt), "--onnx", str(onnx)]) == 0
    assert cli_main(["profile", str(wav), "--model", str(ckpt), "--out", str(prof)]) == 0
    capsys.readouterr()
    seconds = load_profile(prof).speech_seconds
    plain = _predict_json([wav, "--model", onnx], capsys)
    adapted = _predict_json([wav, "--model", onnx, "--profile", prof], capsys)
    on_ckpt = _predict_json([wav, "--model", ckpt, "--profile", prof], capsys)
    assert plain["profile"] is None
    assert adapted["profile"] == on_ckpt["profile"] == {"path": str(prof),
                                                        "speech_seconds": seconds}
    assert adapted["probs"] != pytest.approx(plain["probs"], abs=1e-3)   # it changed them
    assert adapted["probs"] == pytest.approx(on_ckpt["probs"], abs=1e-4)  # as on the checkpoint
    assert cli_main(["predict", str(wav), "--model", str(onnx), "--profile", str(prof),
                     "--no-vad"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == \
        f"speaker profile applied: {prof} ({seconds:.1f} s of speech)"
    # a profile made with the export fits the checkpoint; another model's export refuses it
    exported = Predictor.load(onnx)
    Predictor.load(ckpt).use_profile(make_profile(exported, [speech_wav]))
    other = tmp_path / "other.onnx"
    assert cli_main(["export", "--model", str(checkpoint(tmp_path / "o.safetensors", seed=1)),
                     "--onnx", str(other)]) == 0
    with pytest.raises(ProfileError, match="another model"):
        Predictor.load(other).use_profile(load_profile(prof), source=prof)

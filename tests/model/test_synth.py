"""The synthetic IEMOCAP-layout corpus: layout, determinism, idempotence, emotion prosody."""
from __future__ import annotations

import hashlib
import logging
import shutil

import numpy as np
import pytest
import soundfile as sf

from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.corpora.record import CorpusError
from ser_studio.model.corpora.synth import (SPEC_FILE, SynthSpec, resolve_engine,
                                            write_synthetic_iemocap)

HAS_ESPEAK = shutil.which("espeak-ng") is not None
ENGINES = ["tone", pytest.param("espeak", marks=pytest.mark.skipif(
    not HAS_ESPEAK, reason="espeak-ng is not installed"))]
SMALL = dict(per_speaker_per_emotion=1, sessions=1, dropped_per_speaker=1)


def digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_fixture_corpus_reads_as_iemocap(synth_corpus):
    corpus = load_corpus(synth_corpus)
    summary = corpus.summary()
    assert corpus.kind == "iemocap"
    assert sorted(p.name for p in synth_corpus.glob("Session*")) == [
        f"Session{k}" for k in range(1, 6)]
    assert summary["utterances"] == 160
    assert summary["labels"] == {"angry": 40, "happy": 40, "neutral": 40, "sad": 40}
    assert len(summary["speakers"]) == 10 and set(summary["speakers"].values()) == {16}
    assert summary["sessions"] == {f"Ses0{k}": 32 for k in range(1, 6)}
    assert summary["genders"] == {"F": 80, "M": 80}
    assert summary["dropped"] == {"frustrated": 10, "xxx": 10}
    assert summary["missing_audio"] == 0


def test_fixture_layout_details(synth_corpus):
    emo = synth_corpus / "Session5" / "dialog" / "EmoEvaluation"
    for decoys in ("Categorical", "Self-evaluation", "Attribute"):
        assert list((emo / decoys).glob("*.txt"))
    labels = (emo / "Ses05M_script01_1.txt").read_text()
    assert "\tSes05M_script01_1_F000\t" in labels  # the female speaks in the male's dialog
    assert "\texc\t" in labels or "\texc\t" in (emo / "Ses05F_impro01.txt").read_text()
    speakers = {u.speaker for u in load_corpus(synth_corpus).utterances
                if u.path.parent.name == "Ses05M_script01_1"}
    assert speakers == {"Ses05F", "Ses05M"}


def test_fixture_wavs_are_16k_mono_of_the_spec_length(synth_corpus):
    for utt in load_corpus(synth_corpus).utterances[::20]:
        info = sf.info(utt.path)
        assert (info.samplerate, info.channels) == (SAMPLE_RATE, 1)
        assert 1.0 <= info.duration <= 4.0


@pytest.mark.parametrize("engine", ENGINES)
def test_deterministic_given_seed(tmp_path, engine):
    first = write_synthetic_iemocap(tmp_path / "a", SynthSpec(engine=engine, seed=3, **SMALL))
    second = write_synthetic_iemocap(tmp_path / "b", SynthSpec(engine=engine, seed=3, **SMALL))
    other = write_synthetic_iemocap(tmp_path / "c", SynthSpec(engine=engine, seed=4, **SMALL))
    assert digests(first) == digests(second)
    wavs = [k for k in digests(first) if k.endswith(".wav")]
    assert len(wavs) == 10  # 2 speakers x (4 emotions + 1 dropped)
    assert any(digests(first)[k] != digests(other)[k] for k in wavs)


def test_idempotent_rerun_writes_only_what_is_missing(tmp_path, caplog):
    spec = SynthSpec(engine="tone", **SMALL)
    root = write_synthetic_iemocap(tmp_path, spec)
    before = digests(root)
    victim = next(root.rglob("*.wav"))
    victim.unlink()
    with caplog.at_level(logging.INFO, logger="ser_studio.model.corpora.synth"):
        write_synthetic_iemocap(tmp_path, spec)
    assert "wrote 1 wavs, 9 were already there; wrote 0 label files" in caplog.text
    assert digests(root) == before


def test_refuses_a_folder_holding_something_else(tmp_path):
    (tmp_path / "foreign.txt").write_text("mine")
    with pytest.raises(CorpusError, match="not empty and not a synthetic corpus"):
        write_synthetic_iemocap(tmp_path, SynthSpec(engine="tone", **SMALL))
    root = write_synthetic_iemocap(tmp_path / "new", SynthSpec(engine="tone", **SMALL))
    assert (root / SPEC_FILE).is_file()
    with pytest.raises(CorpusError, match="another spec"):
        write_synthetic_iemocap(root, SynthSpec(engine="tone", seed=9, **SMALL))


def test_engine_resolution_without_espeak(monkeypatch):
    monkeypatch.setattr("ser_studio.model.corpora.synth_speech.shutil.which", lambda name: None)
    assert resolve_engine("auto") == "tone"
    assert resolve_engine("tone") == "tone"
    with pytest.raises(CorpusError, match="espeak-ng program is not installed"):
        resolve_engine("espeak")


@pytest.mark.parametrize("kwargs, problem", [
    ({"engine": "festival"}, "choose one of auto, espeak, tone"),
    ({"per_speaker_per_emotion": 0}, "per_speaker_per_emotion must be >= 1"),
    ({"min_seconds": 3.0, "max_seconds": 2.0}, "min_seconds <= max_seconds"),
])
def test_spec_validation(kwargs, problem):
    with pytest.raises(CorpusError, match=problem):
        SynthSpec(**kwargs)


def median_f0(wav: np.ndarray) -> float:
    """Median autocorrelation pitch (Hz) over 40 ms frames louder than a third of the RMS."""
    frame, hop = int(0.04 * SAMPLE_RATE), int(0.01 * SAMPLE_RATE)
    starts = np.arange(0, len(wav) - frame, hop)
    frames = np.stack([wav[s:s + frame] for s in starts]).astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    frames = frames[np.sqrt(np.mean(frames ** 2, axis=1)) > np.sqrt(np.mean(wav ** 2)) / 3]
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * frame)) ** 2)[:, :frame]
    lo, hi = SAMPLE_RATE // 500, SAMPLE_RATE // 60
    lags = lo + np.argmax(ac[:, lo:hi], axis=1)
    voiced = ac[np.arange(len(ac)), lags] > 0.3 * ac[:, 0]
    return float(np.median(SAMPLE_RATE / lags[voiced]))


@pytest.mark.parametrize("engine", ENGINES)
def test_emotion_prosody_survives_speakers(tmp_path, engine):
    spec = SynthSpec(engine=engine, per_speaker_per_emotion=2, sessions=2, dropped_per_speaker=0)
    corpus = load_corpus(write_synthetic_iemocap(tmp_path, spec))
    rms, f0 = {}, {}
    for utt in corpus.utterances:
        wav, rate = sf.read(utt.path, dtype="float32")
        assert rate == SAMPLE_RATE and np.max(np.abs(wav)) > 0.05  # not silent
        rms.setdefault(utt.label, []).append(float(np.sqrt(np.mean(wav ** 2))))
        f0.setdefault((utt.speaker, utt.label), []).append(median_f0(wav))
    energy = {label: np.mean(values) for label, values in rms.items()}
    assert energy["angry"] > energy["happy"] > energy["neutral"] > energy["sad"]
    for speaker in corpus.speakers:
        pitch = {label: np.mean(f0[speaker, label]) for label in corpus.labels}
        assert pitch["happy"] > 1.1 * pitch["neutral"] > 1.1 * pitch["sad"], (speaker, pitch)
    for session in ("Ses01", "Ses02"):
        assert np.mean(f0[session + "F", "neutral"]) > 1.4 * np.mean(f0[session + "M", "neutral"])

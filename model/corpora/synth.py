"""A small synthetic corpus written in the IEMOCAP full-release layout.

Session1..SessionN, each with a female and a male speaker; two dialogs per session (an
improvisation named after the female, a script named after the male) in which both speakers
talk, so the speaker must come from the last token of the utterance id. Label files follow the
EmoEvaluation format exactly, with "exc" for half of the happy utterances and per-speaker
"fru" and "xxx" utterances that the default classes drop; EmoEvaluation/Categorical/,
Self-evaluation/ and Attribute/ hold decoy .txt files (label-shaped lines that disagree) that a
reader must ignore.

Writing is idempotent: a spec file records what the folder holds, finished wavs are skipped,
and a folder holding anything else is refused.
"""
from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.corpora.record import CorpusError
from ser_studio.model.corpora.synth_speech import (PROSODY, Voice, espeak_available,
                                                   espeak_utterance, make_voice, tone_utterance)

log = logging.getLogger(__name__)

ENGINES = ("auto", "espeak", "tone")
EMOTIONS = ("angry", "happy", "neutral", "sad")
SPEC_FILE = "synth_spec.json"
FORMAT_VERSION = 1

_CODES = {"angry": "ang", "happy": "hap", "neutral": "neu", "sad": "sad"}
# Dropped-label utterances: (code, prosody used to speak them).
_DROPPED = (("fru", "angry"), ("xxx", "neutral"))
# Valence, activation, dominance per emotion, for the label lines' bracket.
_VAD = {"angry": (1.5, 4.0, 4.0), "happy": (4.0, 3.5, 3.0), "neutral": (3.0, 2.5, 2.5),
        "sad": (1.5, 2.0, 2.0)}
_WORDS = {"ang": "Anger", "hap": "Happiness", "exc": "Excited", "neu": "Neutral state",
          "sad": "Sadness", "fru": "Frustration", "xxx": "Other"}


@dataclass(frozen=True)
class SynthSpec:
    """What to synthesise.

    per_speaker_per_emotion: utterances per speaker for each of angry, happy, neutral, sad;
    seed: RNG seed (same seed, same corpus); engine: "auto" (espeak-ng when installed, else
    tone), "espeak" or "tone"; sessions: number of SessionN folders (2 speakers each);
    min_seconds/max_seconds: utterance length range (s); dropped_per_speaker: utterances per
    speaker with labels outside the four classes (fru, xxx).
    """

    per_speaker_per_emotion: int = 4
    seed: int = 0
    engine: str = "auto"
    sessions: int = 5
    min_seconds: float = 1.5
    max_seconds: float = 3.0
    dropped_per_speaker: int = 2

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise CorpusError(f"synth engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.per_speaker_per_emotion < 1 or not 1 <= self.sessions <= 99:
            raise CorpusError(
                "synth: per_speaker_per_emotion must be >= 1 and sessions within 1..99, got "
                f"{self.per_speaker_per_emotion} and {self.sessions}"
            )
        if not 0.5 <= self.min_seconds <= self.max_seconds <= 30:
            raise CorpusError(
                "synth: need 0.5 <= min_seconds <= max_seconds <= 30, got "
                f"{self.min_seconds} and {self.max_seconds}"
            )
        if self.dropped_per_speaker < 0:
            raise CorpusError(
                f"synth: dropped_per_speaker must be >= 0, got {self.dropped_per_speaker}"
            )


@dataclass(frozen=True)
class _Item:
    """One planned utterance: id, dialog, session number, label code, the emotion whose
    prosody speaks it, the speaker's voice, length (s) and its RNG key."""

    utt_id: str
    dialog: str
    session: int
    code: str
    emotion: str
    voice: Voice
    seconds: float
    rng_key: tuple[int, ...]


def resolve_engine(engine: str) -> str:
    """"espeak" or "tone" for a requested engine; CorpusError when espeak-ng is asked for
    but not installed."""
    if engine == "tone" or (engine == "auto" and not espeak_available()):
        return "tone"
    if not espeak_available():
        raise CorpusError(
            "synth engine 'espeak': the espeak-ng program is not installed "
            "(apt-get install espeak-ng); use the 'tone' engine instead"
        )
    return "espeak"


def _speaker_items(spec: SynthSpec, session: int, gender: str, voice: Voice) -> list[_Item]:
    """All utterances of one speaker, in shuffled order, alternating between the session's
    two dialogs (so half of them sit in a dialog named after the other speaker)."""
    dialogs = (f"Ses{session:02d}F_impro01", f"Ses{session:02d}M_script01_1")
    jobs = [(e, "exc" if e == "happy" and i % 2 else _CODES[e])
            for e in EMOTIONS for i in range(spec.per_speaker_per_emotion)]
    jobs += [(_DROPPED[i % len(_DROPPED)][1], _DROPPED[i % len(_DROPPED)][0])
             for i in range(spec.dropped_per_speaker)]
    order = np.random.default_rng([spec.seed, session, ord(gender)]).permutation(len(jobs))
    counters = dict.fromkeys(dialogs, 0)
    items = []
    for serial, j in enumerate(order):
        emotion, code = jobs[j]
        dialog = dialogs[serial % 2]
        utt_id = f"{dialog}_{gender}{counters[dialog]:03d}"
        counters[dialog] += 1
        key = (spec.seed, session, ord(gender), serial)
        length_rng = np.random.default_rng(key + (1,))
        seconds = float(length_rng.uniform(spec.min_seconds, spec.max_seconds))
        items.append(_Item(utt_id, dialog, session, code, emotion, voice, seconds, key))
    return items


def plan(spec: SynthSpec) -> list[_Item]:
    """Every utterance of the corpus, deterministic given the spec."""
    items = []
    for session in range(1, spec.sessions + 1):
        for index, gender in enumerate("FM"):
            rng = np.random.default_rng([spec.seed, session, ord(gender), 0xC0FFEE])
            voice = make_voice(gender, session - 1 + index, rng)
            items += _speaker_items(spec, session, gender, voice)
    return items


def _wav_path(root: Path, item: _Item) -> Path:
    session = root / f"Session{item.session}"
    return session / "sentences" / "wav" / item.dialog / f"{item.utt_id}.wav"


def _synthesise(item: _Item, engine: str) -> np.ndarray:
    """(N,) float32 16 kHz speech for one planned utterance."""
    rng = np.random.default_rng(item.rng_key)
    make = espeak_utterance if engine == "espeak" else tone_utterance
    return make(item.voice, PROSODY[item.emotion], item.seconds, rng)


def _write_wav(root: Path, item: _Item, engine: str) -> bool:
    """Write one wav unless a finished one is there; True when written. Atomic (temp, rename)
    so an interrupted run never leaves a truncated wav that a rerun would skip."""
    path = _wav_path(root, item)
    if path.is_file() and path.stat().st_size > 44:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    sf.write(tmp, _synthesise(item, engine), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
    return True


def _label_block(item: _Item, start: float, end: float) -> str:
    """One utterance's block in an EmoEvaluation file: the label line, then annotator lines."""
    v, a, d = _VAD[item.emotion]
    word = _WORDS[item.code]
    return (
        f"[{start:.4f} - {end:.4f}]\t{item.utt_id}\t{item.code}\t[{v:.4f}, {a:.4f}, {d:.4f}]\n"
        f"C-E2:\t{word};\t()\nC-E3:\t{word};\t()\nC-F1:\t{word};\t(synthetic)\n"
        f"A-E3:\tval {int(v)}; act {int(a)}; dom  {int(d)};\t()\n\n"
    )


def _label_files(items: list[_Item]) -> dict[str, str]:
    """Relative path -> text of every label file and decoy file."""
    blocks: dict[str, list[str]] = {}
    clock: dict[str, float] = {}
    for item in items:
        folder = f"Session{item.session}/dialog/EmoEvaluation"
        start = clock.get(item.dialog, 2.0)
        end = start + item.seconds
        clock[item.dialog] = end + 0.7
        blocks.setdefault(f"{folder}/{item.dialog}.txt", []).append(_label_block(item, start, end))
        # Decoys: per-annotator files in subfolders, with label-shaped lines that disagree
        # (all "ang" or all "sad"): a reader that looks into subfolders gets the counts wrong.
        blocks.setdefault(f"{folder}/Categorical/{item.dialog}_e2_cat.txt", []).append(
            f"[{start:.4f} - {end:.4f}]\t{item.utt_id}\tang\t[1.0000, 1.0000, 1.0000]\n")
        blocks.setdefault(f"{folder}/Self-evaluation/{item.dialog}.txt", []).append(
            f"[{start:.4f} - {end:.4f}]\t{item.utt_id}\tsad\t[1.0000, 1.0000, 1.0000]\n")
        blocks.setdefault(f"{folder}/Attribute/{item.dialog}_atr.txt", []).append(
            f"{item.utt_id} :act 2; val 3; dom 2; ()\n")
    header = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
    return {
        path: ("" if path.count("/") > 3 else header) + "".join(b)  # no header in subfolders
        for path, b in blocks.items()
    }


def _check_folder(root: Path, record: dict) -> None:
    """Refuse a folder that holds anything but this very synthetic corpus."""
    spec_path = root / SPEC_FILE
    if spec_path.is_file():
        try:
            found = json.loads(spec_path.read_text())
        except (OSError, ValueError) as err:
            raise CorpusError(f"{spec_path}: unreadable synthetic-corpus spec: {err}") from None
        if found != record:
            raise CorpusError(
                f"{root}: holds a synthetic corpus made with another spec ({found}); "
                f"choose another folder, or delete this one to write {record}"
            )
    elif root.is_file():
        raise CorpusError(f"{root}: is a file; give a folder to write the corpus into")
    elif root.exists() and any(root.iterdir()):
        raise CorpusError(f"{root}: not empty and not a synthetic corpus; choose an empty folder")


def _write_label_files(root: Path, items: list[_Item]) -> int:
    """Write label and decoy files whose content differs; returns how many were written."""
    written = 0
    for rel, text in _label_files(items).items():
        path = root / rel
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written += 1
    return written


def write_synthetic_iemocap(root, spec: SynthSpec = SynthSpec()) -> Path:
    """Write (or complete) the synthetic corpus under ``root``; returns ``root`` as a Path.

    Layout: root/SessionK/dialog/EmoEvaluation/<dialog>.txt and
    root/SessionK/sentences/wav/<dialog>/<utterance>.wav (16 kHz, 16-bit, mono), K = 1..sessions,
    plus root/synth_spec.json. Same spec and seed, same files. Raises CorpusError for a folder
    holding anything else or an engine that is not available.
    """
    root = Path(root).expanduser()
    engine = resolve_engine(spec.engine)
    record = {**asdict(spec), "engine": engine, "format": FORMAT_VERSION}
    _check_folder(root, record)
    root.mkdir(parents=True, exist_ok=True)
    (root / SPEC_FILE).write_text(json.dumps(record, indent=1) + "\n")
    items = plan(spec)
    text_written = _write_label_files(root, items)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        written = sum(pool.map(lambda item: _write_wav(root, item, engine), items))
    log.info(
        "%s: synthetic IEMOCAP (%s engine, %d sessions, %d speakers): wrote %d wavs, %d were "
        "already there; wrote %d label files", root, engine, spec.sessions, 2 * spec.sessions,
        written, len(items) - written, text_written,
    )
    return root

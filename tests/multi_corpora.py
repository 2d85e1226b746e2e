"""Two small corpora of unequal size whose speakers share IDs, cut from the synthetic IEMOCAP
corpus (tests/conftest.py ``synth_corpus``), for the tests of runs on several corpora.

tests/model/conftest.py makes them the ``two_corpora`` fixture.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from ser_studio.model.corpora.corpus import load_corpus

BIG_SPEAKERS, SMALL_SPEAKERS = 6, 4
SMALL_PER_LABEL = 2  # clips per speaker and emotion in the small corpus (the big one: all 4)
WRITTEN = {"angry": "Anger", "happy": "Happiness", "neutral": "Neutral", "sad": "Sadness"}


def write_two_corpora(synth_root: Path, root: Path) -> tuple[Path, Path]:
    """big/manifest.csv: sessions 1-3 of the synthetic corpus (6 speakers, every clip);
    small/manifest.csv: sessions 4-5 (4 speakers, 2 clips per emotion each, labels written
    "Anger", "Happiness", ... for its own reader to map). Both name their speakers spk1,
    spk2, ... so only corpus namespacing keeps them apart. Returns the two manifest paths."""
    by_speaker = defaultdict(list)
    for utt in load_corpus(synth_root).utterances:
        by_speaker[utt.speaker].append(utt)
    speakers = sorted(by_speaker)  # Ses01F, Ses01M, ..., Ses05M
    paths = []
    for name, chosen, per_label in (("big", speakers[:BIG_SPEAKERS], None),
                                    ("small", speakers[BIG_SPEAKERS:], SMALL_PER_LABEL)):
        (root / name).mkdir(parents=True, exist_ok=True)
        path = root / name / "manifest.csv"
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label", "speaker", "gender"])
            for k, speaker in enumerate(chosen, 1):
                kept = defaultdict(int)
                for utt in by_speaker[speaker]:
                    kept[utt.label] += 1
                    if per_label is None or kept[utt.label] <= per_label:
                        label = WRITTEN[utt.label] if name == "small" else utt.label
                        writer.writerow([utt.path, label, f"spk{k}", utt.gender])
        paths.append(path)
    return paths[0], paths[1]

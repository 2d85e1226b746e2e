"""UA of a model on a corpus it never heard, as recorded, with a DC offset and with mains hum
(model.conditions' renders), so a model without the input high-pass can be compared with one
that has it on speakers neither saw.

    python bench/results/highpass-2026-12-07/dc_hum_unseen.py MODEL CORPUS_CSV [MODEL...]
"""
import json
import sys
import zlib

import numpy as np

from ser_studio.model.audio.io import load_audio
from ser_studio.model.augmentation.conditions import render
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.inference.predictor import Predictor
from ser_studio.model.evaluation.metrics import compute_metrics

CONDITIONS = ["as recorded", "DC offset +0.05", "mains hum 50 Hz 20 dB SNR"]


def main() -> None:
    corpus_path, models = sys.argv[2], [sys.argv[1]] + sys.argv[3:]
    corpus = load_corpus(corpus_path)
    utts = corpus.utterances
    wavs = [load_audio(u.path) for u in utts]
    truth = [u.label for u in utts]
    out = {}
    for model in models:
        predictor = Predictor.load(model)
        row = {}
        for name in CONDITIONS:
            feats = [predictor.window_features(render(name, w, seed=zlib.crc32(
                f"{i}/{name}".encode())))[0] for i, w in enumerate(wavs)]
            preds = [predictor.labels[int(np.argmax(p))]
                     for p in predictor.probs_of_features(feats)]
            row[name] = round(compute_metrics(truth, preds, predictor.labels)["ua"], 3)
        out[model] = row
        print(model, row, flush=True)
    print(json.dumps({"corpus": corpus_path, "ua": out}, indent=2))


if __name__ == "__main__":
    main()

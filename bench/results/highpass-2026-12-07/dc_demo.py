"""The issue's demonstration: one angry clip with a DC offset added, through each model given
(label and its probability for each offset).

    python bench/results/highpass-2026-12-07/dc_demo.py CLIP MODEL [MODEL...]
"""
import sys

import numpy as np

from ser_studio.model.audio.io import load_audio
from ser_studio.model.inference.predictor import Predictor

OFFSETS = (0.0, 0.01, 0.05, 0.1, 0.5)


def main() -> None:
    wav = load_audio(sys.argv[1])
    for model in sys.argv[2:]:
        predictor = Predictor.load(model)
        cells = []
        for offset in OFFSETS:
            pred = predictor.predict(wav + np.float32(offset))
            label = pred.label or "no speech"
            p = float(pred.probs.max()) if pred.label else 0.0
            cells.append(f"+{offset:g}: {label} {100 * p:.0f} %")
        print(f"{model}: " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()

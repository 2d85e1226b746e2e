"""The speech gate's two error rates, measured: real emotional speech called "no speech" (every
clip of a corpus folder, RAVDESS-named files, as recorded and at other levels and offsets) and
noise called "speech" (noises made here, quiet to loud, hum, DC offset), for a grid of silero
thresholds and minimum speech durations.

    python -m bench.speech_gate [--corpus ../shared/data/ravdess-dev] [--json OUT]

silero runs once per clip (model.audio.vad_stream); each setting then segments the stored chunk
probabilities exactly as the gate does (model.audio.vad.spans_from_probs, then
model.audio.vad.is_speech on the whole clip). RAVDESS intensity (field 4: 01 normal, 02 strong) and
actor are read from the file names, so misses are also given for strong clips and for the worst
actor.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.5)
MIN_SPEECH_MS = (100, 250)
log = logging.getLogger("speech_gate")


def noises(seconds: float = 8.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Non-speech test signals (16 kHz float32): coloured noise at three levels, a tone, mains
    hum with harmonics, digital silence."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n, 1 / 16000), 1.0)
    coloured = {"white": white, "pink": np.fft.irfft(spectrum / np.sqrt(f), n),
                "brown": np.fft.irfft(spectrum / f, n)}
    out = {}
    for name, x in coloured.items():
        x = x / np.sqrt(np.mean(x ** 2))
        for db in (-60, -40, -20):
            out[f"{name} noise {db} dBFS"] = (x * 10 ** (db / 20)).astype(np.float32)
        out[f"{name} noise -6 dBFS peak"] = (0.5 * x / np.abs(x).max()).astype(np.float32)
    out["tone 440 Hz"] = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 8))
    out["mains hum 50 Hz + harmonics"] = (0.1 * hum).astype(np.float32)
    out["loud mains hum (peak -3 dBFS)"] = (0.7 * hum / np.abs(hum).max()).astype(np.float32)
    out["digital silence"] = np.zeros(n, np.float32)
    out["DC offset 0.1, white noise -60 dBFS"] = (0.1 + out["white noise -60 dBFS"]).astype(
        np.float32)
    return out


# what the speech is also tried as: a shouting user, a quiet one, a cheap microphone's offset
SPEECH_VARIANTS = {
    "as recorded": lambda w: w,
    "peak -1 dBFS": lambda w: w * (10 ** (-1 / 20) / max(float(np.abs(w).max()), 1e-9)),
    "20 dB quieter": lambda w: w * 0.1,
    "DC offset +0.1": lambda w: w + 0.1,
}


def verdict(probs: np.ndarray, n: int, threshold: float, min_ms: int) -> bool:
    from ser_studio.model.audio import vad

    spans = vad.spans_from_probs(probs, n, threshold=threshold, min_speech_ms=min_ms)
    return vad.is_speech(vad.spans_ratio(spans, 0, n), n)


def measure(corpus: Path) -> dict:
    from ser_studio.model.audio.io import load_audio
    from ser_studio.model.audio.vad_stream import SpeechProbStream

    stream = SpeechProbStream()
    clips = sorted(corpus.rglob("03-01-*.flac")) + sorted(corpus.rglob("03-01-*.wav"))
    speech = {v: [] for v in SPEECH_VARIANTS}
    for path in clips:
        wav = load_audio(path)
        for variant, make in SPEECH_VARIANTS.items():
            heard = make(wav).astype(np.float32)
            speech[variant].append((path.name, stream.run(heard), heard.size))
    noise = [(name, stream.run(w), w.size) for name, w in noises().items()]
    rows = []
    for threshold in THRESHOLDS:
        for min_ms in MIN_SPEECH_MS:
            rows.append(_row(speech, noise, threshold, min_ms))
    return {"corpus": str(corpus), "rows": rows}


def _row(speech: dict, noise: list, threshold: float, min_ms: int) -> dict:
    """One setting's misses per speech variant (strong clips and the worst actor as
    recorded) and the noises it calls speech."""
    missed = {v: [name for name, p, n in runs if not verdict(p, n, threshold, min_ms)]
              for v, runs in speech.items()}
    recorded = speech["as recorded"]
    false = [name for name, p, n in noise if verdict(p, n, threshold, min_ms)]
    strong = [c for c, _, _ in recorded if c.split("-")[3] == "02"]
    actors = sorted({c.split("-")[6][:2] for c, _, _ in recorded})
    per_actor = {a: sum(m.split("-")[6][:2] == a for m in missed["as recorded"])
                 / sum(c.split("-")[6][:2] == a for c, _, _ in recorded) for a in actors}
    worst = max(per_actor, key=per_actor.get)
    return {"threshold": threshold, "min_speech_ms": min_ms, "speech_clips": len(recorded),
            "missed": len(missed["as recorded"]),
            "missed_by_variant": {v: len(m) for v, m in missed.items()},
            "missed_strong": sum(m in strong for m in missed["as recorded"]),
            "strong_clips": len(strong), "worst_actor": worst,
            "worst_actor_missed": per_actor[worst], "noises": len(noise),
            "noise_as_speech": false, "first_missed": missed["as recorded"][:5]}


def table(result: dict) -> str:
    variants = list(result["rows"][0]["missed_by_variant"])
    lines = ["| threshold | min speech | " + " | ".join(f"speech missed, {v}" for v in variants)
             + " | of strong clips | worst actor | noises called speech |",
             "|---|---|" + "---|" * (len(variants) + 3)]
    for r in result["rows"]:
        missed = " | ".join(f"{n} / {r['speech_clips']}" for n in r["missed_by_variant"].values())
        lines.append(
            f"| {r['threshold']:.2f} | {r['min_speech_ms']} ms | {missed} | "
            f"{r['missed_strong']} / {r['strong_clips']} | Actor {r['worst_actor']}: "
            f"{100 * r['worst_actor_missed']:.0f} % | {len(r['noise_as_speech'])} / "
            f"{r['noises']} {', '.join(r['noise_as_speech'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/ravdess-dev")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = measure(args.corpus)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

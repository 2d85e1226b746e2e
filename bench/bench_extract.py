"""Feature extraction timings (prints numbers; asserts nothing).

(a) log-mel extraction of every audio file under a corpus folder into a fresh temporary cache
    (decode + resample + log-mel + write), the way ``main.py extract --frontend logmel`` does it;
(b) the cached load of the same files (second pass, all hits);
(c) HuBERT-base extraction time per 3 s clip: a randomly initialised model of the real base size
    (HubertConfig() defaults: 12 layers, 768 wide, ~94 M parameters), saved with save_pretrained
    and loaded through the frontend like a user's local folder, timed after a warm-up.

Usage: python -m bench.bench_extract [CORPUS_DIR] [--clips N] [--skip-hubert]
(default CORPUS_DIR: ../shared/data/ravdess-dev relative to the repository root).
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ser_studio.model.audio.io import load_audio
from ser_studio.model.constants import CLIP_SAMPLES, SAMPLE_RATE
from ser_studio.model.features.cache import FeatureCache
from ser_studio.model.features.registry import build_frontend, parse_frontend_spec

REPO = Path(__file__).resolve().parents[1]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def audio_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)


def bench_logmel(files: list[Path]) -> None:
    torch.set_num_threads(1)  # as `main.py extract --frontend logmel` does
    start = time.perf_counter()
    seconds_of_audio = sum(len(load_audio(p)) for p in files) / SAMPLE_RATE
    decode = time.perf_counter() - start
    print(f"corpus: {len(files)} files, {seconds_of_audio / 60:.1f} min of audio "
          f"(decode + resample alone: {decode:.2f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(build_frontend(parse_frontend_spec("logmel")), Path(tmp))
        start = time.perf_counter()
        cache.fill(files)
        first = time.perf_counter() - start
        print(f"(a) log-mel extraction into a fresh cache: {first:.2f} s "
              f"({1000 * first / len(files):.1f} ms/file, {seconds_of_audio / first:.0f}x "
              f"real time; misses {cache.stats.misses})")
        start = time.perf_counter()
        for path in files:
            cache.get(path)
        second = time.perf_counter() - start
        print(f"(b) cached load of the same files: {second:.2f} s "
              f"({1000 * second / len(files):.2f} ms/file; hits {cache.stats.hits})")


def bench_hubert(clips: int, threads: int) -> None:
    from transformers import HubertConfig, HubertModel

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        model = HubertModel(HubertConfig())
        params = sum(p.numel() for p in model.parameters())
        model.save_pretrained(tmp)
        del model
        start = time.perf_counter()
        frontend = build_frontend(parse_frontend_spec(f"hubert:{tmp}"))
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        frontend.fingerprint()
        hashed = time.perf_counter() - start
        rng = np.random.default_rng(0)
        wavs = [(0.1 * rng.standard_normal(CLIP_SAMPLES)).astype(np.float32)
                for _ in range(clips + 2)]
        for wav in wavs[:2]:  # warm-up
            frontend(wav)
        times = []
        for wav in wavs[2:]:
            start = time.perf_counter()
            feats = frontend(wav)
            times.append(time.perf_counter() - start)
    print(f"(c) HuBERT base (random init, {params / 1e6:.1f} M parameters, {threads} threads): "
          f"load {loaded:.1f} s, fingerprint (weights hash) {hashed:.1f} s; per 3 s clip "
          f"{1000 * statistics.mean(times):.0f} ms mean, {1000 * statistics.median(times):.0f} ms "
          f"median, {1000 * min(times):.0f}-{1000 * max(times):.0f} ms range over {clips} clips "
          f"-> features {tuple(feats.shape)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path,
                        default=REPO.parent / "shared" / "data" / "ravdess-dev")
    parser.add_argument("--clips", type=int, default=10, help="timed HuBERT clips")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads for HuBERT (default: torch's default)")
    parser.add_argument("--skip-hubert", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    files = audio_files(args.corpus)
    if not files:
        sys.exit(f"{args.corpus}: no audio files found")
    print(f"torch {torch.__version__}, default threads {torch.get_num_threads()}")
    bench_logmel(files)
    if not args.skip_hubert:
        bench_hubert(args.clips, args.threads)


if __name__ == "__main__":
    main()

"""Benchmark: the same small cross-validation with the feature cache and with the encoder
inside the training loop (as the seed did).

(a) cache: features are computed once per file into a fresh FeatureCache, then every epoch and
    fold reads them from memory.
(b) in-loop: every time the training loop asks for an utterance's features (each batch of each
    epoch, validation and test passes, normalisation statistics) the encoder runs again on the
    waveform. Waveforms are decoded once and kept in memory, so only the encoder is measured.

Both runs use the same corpus, seeds and settings; the encoder is deterministic (eval mode), so
both reach the same results, which the script checks. Prints encoder forward passes (one per
waveform) and wall time of each, and their ratios.

    python -m bench.bench_cache_vs_inloop [--size tiny|small] [--epochs 4] [--folds 2]
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import torch


from ser_studio.model.audio.io import load_audio
from ser_studio.model.config.schema import ModelConfig, TrainConfig
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.corpora.synth import SynthSpec, write_synthetic_iemocap
from ser_studio.model.features.base import CountingFrontend
from ser_studio.model.features.registry import build_frontend, parse_frontend_spec
from ser_studio.model.training.experiment import run_cross_validation

# Random HuBERTs of the real architecture; "small" is about a quarter of hubert-base's width.
SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, conv_dim=(32,) * 7),
    "small": dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=768, conv_dim=(128,) * 7),
}


class InLoopFeatures(Mapping):
    """path -> features, re-encoded on every access (the seed's encoder-in-the-loop)."""

    def __init__(self, frontend, paths):
        self.frontend = frontend
        self.wavs = {Path(p): load_audio(p) for p in paths}

    def __getitem__(self, path):
        return self.frontend(self.wavs[Path(path)])

    def __iter__(self):
        return iter(self.wavs)

    def __len__(self):
        return len(self.wavs)


def make_encoder(size: str, folder: Path) -> Path:
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    config = HubertConfig(num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                          **SIZES[size])
    HubertModel(config).save_pretrained(folder)
    return folder


def run(mode: str, corpus, spec, model_cfg, train_cfg, work: Path, folds: int):
    frontend = CountingFrontend(build_frontend(spec))
    features = InLoopFeatures(frontend, [u.path for u in corpus.utterances]) \
        if mode == "in-loop" else None
    started = time.perf_counter()
    summary = run_cross_validation(corpus, spec, model_cfg, train_cfg, work / mode,
                                   cache_dir=work / "cache", frontend=frontend,
                                   features=features, max_folds=folds, final=False)
    return frontend.calls, time.perf_counter() - started, summary["aggregate"]["ua"]["values"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--folds", type=int, default=2, help="leave-one-session-out folds run")
    parser.add_argument("--per-speaker", type=int, default=4,
                        help="utterances per speaker and emotion (10 speakers, 4 emotions)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="ser-bench-") as tmp:
        work = Path(tmp)
        write_synthetic_iemocap(work / "corpus", SynthSpec(per_speaker_per_emotion=args.per_speaker,
                                                           seed=0))
        corpus = load_corpus(work / "corpus")
        spec = parse_frontend_spec(f"hubert:{make_encoder(args.size, work / 'encoder')}")
        model_cfg = ModelConfig(arch="enhanced", hidden=32, gru_layers=1, attn_heads=4,
                                frame_pool=2)
        train_cfg = TrainConfig(epochs=args.epochs, batch_size=16, patience=args.epochs,
                                val_speakers=2, warmup_epochs=1, alpha_start_epoch=1)
        print(f"corpus: {len(corpus.utterances)} utterances, {len(corpus.speakers)} speakers; "
              f"encoder: random HuBERT '{args.size}'; {args.folds} folds x {args.epochs} "
              f"epochs; torch threads {args.threads}")
        results = {mode: run(mode, corpus, spec, model_cfg, train_cfg, work, args.folds)
                   for mode in ("cache", "in-loop")}
    print(f"{'mode':<8} {'encoder passes':>15} {'wall s':>8}  fold UA")
    for mode, (calls, wall, uas) in results.items():
        print(f"{mode:<8} {calls:>15d} {wall:>8.1f}  {', '.join(f'{u:.3f}' for u in uas)}")
    (c_calls, c_wall, c_ua), (l_calls, l_wall, l_ua) = results["cache"], results["in-loop"]
    print(f"ratio in-loop / cache: encoder passes {l_calls / c_calls:.1f}x, "
          f"wall time {l_wall / c_wall:.1f}x")
    if c_ua != l_ua:
        print("warning: the two runs disagree on fold UA", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

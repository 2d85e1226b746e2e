"""``python main.py extract``: compute the features of one or several corpora once, into the
feature cache."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from ser_studio.model.corpora.multi import load_corpora
from ser_studio.model.corpora.labels import parse_classes
from ser_studio.model.corpora.record import CorpusError
from ser_studio.model.cluster.options import add_ray_options, wants_ray
from ser_studio.model.files import default_cache_dir

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    """Register the ``extract`` command."""
    parser = subparsers.add_parser(
        "extract", help="fill the feature cache for a corpus",
        description="Compute the features of every utterance of a corpus once and store them "
                    "in the feature cache, where training and evaluation find them.",
    )
    parser.add_argument("--corpus", required=True, type=Path, action="append",
                        help="IEMOCAP folder, RAVDESS folder or CSV manifest; repeat for "
                             "several corpora")
    parser.add_argument("--frontend", default="logmel",
                        help="logmel (default, no download), hubert, hubert:HUB_ID_OR_FOLDER, "
                             "optionally with @weighted to keep every hidden layer")
    parser.add_argument("--cache", type=Path, default=None,
                        help=f"cache folder (default: $SER_CACHE_DIR or {default_cache_dir()})")
    parser.add_argument("--map", action="append", default=None, metavar="A=B,...",
                        help="label map, e.g. calm=neutral,exc=happy (with several corpora "
                             "NAME:A=B,... maps corpus NAME only)")
    parser.add_argument("--classes", nargs="+", default=None, metavar="CLASS",
                        help="labels to keep (space or comma separated)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_ray_options(parser)
    parser.add_argument("--ray-chunk", type=int, default=16, metavar="N",
                        help="files per Ray task (default 16)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fill the cache and print a summary; errors go to stderr with exit code 2."""
    import torch

    from ser_studio.model.features.base import FrontendUnavailable
    from ser_studio.model.features.cache import FeatureCache, FillError
    from ser_studio.model.features.registry import build_frontend, parse_frontend_spec

    if args.frontend.strip() == "logmel":
        # Log-mel's per-file tensor ops are too small to gain from intra-op threads, and on a
        # busy machine the thread hand-offs make them many times slower.
        torch.set_num_threads(1)
    try:
        corpus = load_corpora(args.corpus, label_map=args.map,
                              classes=parse_classes(args.classes))
        cache = FeatureCache(build_frontend(parse_frontend_spec(args.frontend)), args.cache)
    except (CorpusError, FrontendUnavailable, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = [u.path for u in corpus.utterances]
    start = time.perf_counter()
    failed: list = []  # AudioError per file
    try:
        if wants_ray(args.ray):
            from ser_studio.model.cluster.extract import fill_on_cluster

            fill_on_cluster(args.ray, cache, paths, cpus=args.ray_cpus,
                            retries=args.ray_retries, memory_mb=args.ray_memory,
                            chunk=args.ray_chunk,
                            storage=args.ray_storage or "ship", progress=not args.no_progress)
        else:
            cache.fill(paths, progress=not args.no_progress)
    except FillError as exc:
        failed = exc.failures
    except (OSError, RuntimeError, ValueError) as exc:  # e.g. the cache folder cannot be
        # written, the Ray cluster cannot be reached (model.cluster.connect.ClusterError)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    stats = cache.stats
    print(f"frontend {args.frontend} -> {cache.folder}")
    if len(corpus.parts) > 1:
        print("corpora " + ", ".join(f"{n} ({len(p)} files)" for n, p in zip(corpus.names,
                                                                             corpus.parts)))
    print(f"files {len(paths)}, hits {stats.hits}, misses {stats.misses}, recomputed "
          f"{stats.recomputed}, failed {len(failed)}, {seconds:.1f} s")
    if failed:
        print(f"error: {len(failed)} files could not be loaded (all others are cached):",
              file=sys.stderr)
        for err in failed:
            print(f"  {err}", file=sys.stderr)
        return 2
    return 0

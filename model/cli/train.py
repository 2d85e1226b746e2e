"""``main.py train``: speaker-independent cross-validation, then a final model, into a run folder.

Without ``--progress-json``, tqdm bars (files during feature extraction, folds, epochs) go to
stderr and a result summary to stdout. With it, stdout carries only JSON lines, one per
progress event (model.training.progress.ProgressEvent documents them), logs go to stderr
(both displays: model.cli.train_progress).
SIGTERM/SIGINT cancel after the current batch (or the current file while features are
extracted): finished folds are kept and summarised, "done" is still emitted
(cancelled: true), exit code 3 with a message naming the folds kept and the ``--resume``
command. A second SIGINT aborts at once. Errors: a message on stderr (and an "error" event),
exit code 2.

``--config FILE``: JSON object with optional sections "frontend", "model", "train" (the config
dataclasses' fields, "train" may hold "augment" and "channel" objects), "corpus" and "run" (see
model.config.run; every run folder's run.json is such a file). Options that set a config
field (``--epochs``, ``--no-adain``, ...) keep their value under the field's dotted name
("train.epochs"), and ``--set SECTION.FIELD=VALUE`` reaches any field; all of them override the
file through one path (``apply_overrides``), and the configs built from the result check every
value. ``--resume RUN`` reads RUN/run.json, keeps the folds RUN/metrics.json finished and
trains the rest with the settings of RUN/run.json: an option that would change the run is
refused (model.cli.train_resume).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from ser_studio.model.audio.loudness import LOUDNESS_MODES
from ser_studio.model.cli.train_progress import Bars, JsonLines
from ser_studio.model.cli.train_resume import refuse_run_options
from ser_studio.model.cluster.options import add_ray_options
from ser_studio.model.config.run import (RUN_FILE, apply_overrides, configs_from_sections,
                                         corpus_paths, describe_run, finished_folds,
                                         read_sections, write_run_file)
from ser_studio.model.config.schema import (ARCHS, BALANCES, BAND_NORMS, PROTOCOLS, ConfigError,
                                            FrontendConfig, ModelConfig, TrainConfig)
from ser_studio.model.training.progress import ProgressEvent

log = logging.getLogger(__name__)

ABLATION = "ablation: switch this part of the enhanced network off"


def _override(p, flag: str, path: str, **kwargs) -> None:
    """An option that sets the config field ``path`` ("section.field[.field]"): its value
    lands in ``args`` under that dotted name, which build_configs applies generically
    (``args.option_flags`` maps it back to ``flag`` for messages)."""
    if "action" not in kwargs and "choices" not in kwargs:
        kwargs.setdefault("metavar", path.rsplit(".", 1)[-1].upper())
    p.add_argument(flag, dest=path, default=None, **kwargs)
    p.set_defaults(option_flags={**(p.get_default("option_flags") or {}), path: flag})


def _add_config_options(p) -> None:
    """Options that override single config fields; ``--set`` reaches every other one."""
    _override(p, "--arch", "model.arch", choices=ARCHS, help="network (default: enhanced)")
    _override(p, "--folds", "train.folds", type=int,
              help="k of grouped k-fold; 0 = leave-one-speaker-out (corpora with sessions: "
                   "one fold per session)")
    for flag, path, kind in (("--epochs", "train.epochs", int),
                             ("--batch-size", "train.batch_size", int),
                             ("--lr", "train.lr", float), ("--hidden", "model.hidden", int),
                             ("--gru-layers", "model.gru_layers", int),
                             ("--dropout", "model.dropout", float),
                             ("--adversarial-weight", "train.adversarial_weight", float),
                             ("--seed", "train.seed", int)):
        _override(p, flag, path, type=kind)
    _override(p, "--frame-pool", "model.frame_pool", type=int,
              help="average-pool input frames by this factor")
    _override(p, "--ensemble", "model.ensemble", type=int, metavar="M",
              help="train M networks one by one (own seed, validation speakers and early "
                   "stopping) and average their probabilities")
    _override(p, "--stats-branch", "model.stats_branch", action=argparse.BooleanOptionalAction,
              help="fuse the network with a linear classifier on utterance statistics")
    _override(p, "--protocol", "train.protocol", choices=PROTOCOLS,
              help="cv (default): speaker cross-validation over the pooled corpora; loco: "
                   "leave one corpus out, one fold per corpus (needs two or more --corpus)")
    _override(p, "--balance", "train.balance", choices=BALANCES,
              help="several corpora: weights (default) weights each training clip's loss so "
                   "every (corpus, class) carries the same total; sampler draws clips so "
                   "every (corpus, class) is drawn equally often; none pools them as they come")
    _override(p, "--patience", "train.patience", type=int, help="early-stopping patience")
    _override(p, "--val-speakers", "train.val_speakers", type=int,
              help="validation speakers per fold")
    _override(p, "--no-level-augment", "train.augment.gain_prob", action="store_const",
              const=0.0, help="no random recording-level gain (the rest of the augmentation "
                              "stays)")
    _override(p, "--loudness", "frontend.loudness", choices=LOUDNESS_MODES,
              help="loudness normaliser in front of the frontend (default: bs1770)")
    _override(p, "--band-norm", "frontend.band_norm", choices=BAND_NORMS,
              help="per-utterance normalisation of each log-mel band (cmvn | none)")
    _override(p, "--channel-variants", "train.channel.variants", type=int, metavar="K",
              help="K channel-augmented variants per training file (rooms, noise, babble "
                   "from training speakers, phone band, codec, clipping); 0 = off")
    for flag, field in (("--no-adain", "use_adain"), ("--no-adversary", "use_speaker_adversary"),
                        ("--no-self-attention", "use_self_attention"),
                        ("--no-posenc", "use_posenc"), ("--no-enhancement", "use_enhancement")):
        _override(p, flag, f"model.{field}", action="store_const", const=False, help=ABLATION)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="set any config field, e.g. train.augment.warp_prob=0.3 or "
                        "train.augment.stretch_range=[0.9,1.1] (VALUE is JSON, else a string;"
                        " may be repeated; applied after the options above)")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="cross-validate and train a model on one or several corpora",
        description="Speaker-independent cross-validation (IEMOCAP: leave-one-session-out; "
                    "other corpora: grouped k-fold by speaker; --protocol loco: leave one "
                    "corpus out), then a final model on every speaker, written to a run folder "
                    "with metrics.json, plots and report.md (per-corpus figures for several "
                    "corpora).")
    p.add_argument("--corpus", action="append", metavar="PATH",
                   help="corpus folder or .csv manifest (or the config's \"corpus\" "
                        "section); repeat for several corpora, pooled with speakers named "
                        "CORPUS/ID (one --corpus: speaker IDs as the corpus has them)")
    p.add_argument("--frontend", help="logmel (default) | speech_embedding | ge2e | hubert | "
                                      "hubert:ID_OR_DIR[@weighted]; join two with + (e.g. "
                                      "speech_embedding+ge2e, the shipped model's)")
    p.add_argument("--out", type=Path, help="run folder to write (it gets a run.json that "
                                             "repeats the run with --config)")
    p.add_argument("--resume", type=Path, metavar="RUN",
                   help="continue a cancelled run in folder RUN from its finished folds (its "
                        "run.json holds the settings)")
    _add_config_options(p)
    p.add_argument("--no-augment", action="store_true", help="no feature augmentation")
    p.add_argument("--map", action="append", metavar="A=B,...",
                   help="label map, e.g. calm=neutral,exc=happy (may be repeated; with several "
                        "corpora NAME:A=B,... maps corpus NAME only)")
    p.add_argument("--classes", nargs="+", help="classes to keep (space or comma separated)")
    p.add_argument("--language", action="append", metavar="[NAME:]LANGUAGE",
                   help="the language spoken in the corpus (NAME:LANGUAGE: in corpus NAME "
                        "only), recorded in the model (default: RAVDESS and IEMOCAP English, "
                        "a manifest's language column)")
    p.add_argument("--drop-conflicting", action="store_true",
                   help="leave out files listed under two labels (default: an error)")
    p.add_argument("--cache", type=Path, help="feature cache folder (default: user cache)")
    p.add_argument("--config", type=Path, help="JSON file with frontend/model/train sections")
    p.add_argument("--no-final", action="store_true", help="skip the final all-speaker model")
    p.add_argument("--max-folds", type=int, help="run only the first K folds (quick looks)")
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--progress-json", action="store_true",
                   help="one JSON object per line per event on stdout instead of bars")
    add_ray_options(p)
    p.set_defaults(func=run)


def _parse_set(item: str) -> tuple[str, object]:
    """``"train.lr=0.002"`` -> ("train.lr", 0.002); a VALUE that is not JSON is a string."""
    path, sep, text = item.partition("=")
    if not sep or "." not in path:
        raise ConfigError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. train.lr=0.002")
    try:
        return path.strip(), json.loads(text)
    except json.JSONDecodeError:
        return path.strip(), text


def config_overrides(args) -> dict[str, object]:
    """The config fields the command line sets: {"train.epochs": 3, ...} (options, then
    --set, then the frontend spec's name, encoder and layer mode)."""
    from ser_studio.model.features.registry import parse_frontend_spec

    given = {k: v for k, v in vars(args).items() if "." in k and v is not None}
    given.update(_parse_set(item) for item in getattr(args, "set", None) or [])
    if getattr(args, "frontend", None):
        spec = parse_frontend_spec(args.frontend)
        given.update({f"frontend.{k}": getattr(spec, k)
                      for k in ("name", "encoder", "layer_mode")})
    return given


def build_configs(args, sections: dict | None = None
                  ) -> tuple[FrontendConfig, ModelConfig, TrainConfig]:
    """The three configs from the config's ``sections`` (read from --config when not given)
    overridden by the command-line options."""
    if sections is None:
        sections = read_sections(args.config) if args.config is not None else {}
    frontend, model, train = configs_from_sections(
        apply_overrides(sections, config_overrides(args)))
    if args.no_augment:
        train = dataclasses.replace(train, augment=train.augment.off())
    return frontend, model, train


def run_sections(args, frontend, model, train) -> dict:
    """The run.json object of a ``train`` invocation (parsed args and its three configs)."""
    return describe_run(frontend, model, train, corpus=args.corpus, label_map=args.map,
                        classes=args.classes, drop_conflicting=args.drop_conflicting,
                        languages=args.language,
                        final=not args.no_final, max_folds=args.max_folds, ray=args.ray,
                        ray_storage=args.ray_storage, cache=args.cache)


def _install_signals(cancel: threading.Event) -> dict:
    """SIGTERM/SIGINT set ``cancel``; a second SIGINT raises KeyboardInterrupt. Returns the
    previous handlers (empty when not in the main thread, where handlers cannot be set)."""
    def handler(signum, _frame):
        if cancel.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning("%s: stopping after the current batch (finished folds are kept)",
                    signal.Signals(signum).name)
        cancel.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
    return previous


def _print_result(summary: dict, out: Path) -> None:
    agg = summary["aggregate"]
    state = " (cancelled)" if summary["cancelled"] else ""
    print(f"{summary['protocol']}: {len(summary['folds'])} fold(s){state}")
    if agg:
        for key, name in (("wa", "WA"), ("ua", "UA"), ("macro_f1", "macro-F1")):
            print(f"{name}: {agg[key]['mean']:.3f} ± {agg[key]['std']:.3f}")
    if agg and agg.get("per_corpus"):
        title = ("held-out corpus" if summary["protocol"] == "leave-one-corpus-out"
                 else "corpus (its test clips, all folds)")
        print(f"per {title}:")
        for name, c in agg["per_corpus"].items():
            print(f"  {name}: WA {c['wa']:.3f} UA {c['ua']:.3f} (n={c['n']})")
        mean = agg["corpus_mean"]
        print(f"  mean over {len(agg['per_corpus'])} corpora: WA {mean['wa']:.3f} "
              f"UA {mean['ua']:.3f}")
    print(f"report: {out / 'report.md'}")
    if summary["final_model"]:
        print(f"model: {out / summary['final_model']}")


EXIT_CANCELLED = 3


def _apply_run_sections(args) -> dict:
    """Fill corpus/run options not given on the command line from the config's "corpus" and
    "run" sections (``--resume RUN`` reads RUN/run.json); returns the config's sections."""
    if args.resume is not None:
        refuse_run_options(args)  # a resumed run is the run RUN/run.json describes
        if args.config is not None or (args.out is not None and args.out != args.resume):
            raise ConfigError("--resume RUN takes its settings from RUN/run.json and writes "
                              "into RUN: leave out --config and --out")
        args.config, args.out = args.resume / RUN_FILE, args.resume
        if not args.config.is_file():
            raise ConfigError(f"{args.resume}: no run to resume (no {RUN_FILE}; `train` writes "
                              "one into every run folder)")
    sections = read_sections(args.config) if args.config is not None else {}
    corpus, run = sections.get("corpus", {}), sections.get("run", {})
    for option, value in (("corpus", corpus_paths(corpus.get("path"))),
                          ("map", corpus.get("map")), ("classes", corpus.get("classes")),
                          ("language", corpus.get("language")),
                          ("max_folds", run.get("max_folds")), ("ray", run.get("ray")),
                          ("ray_storage", run.get("ray_storage")),
                          ("cache", Path(run["cache"]) if run.get("cache") else None)):
        if getattr(args, option) is None:
            setattr(args, option, value)
    args.drop_conflicting = args.drop_conflicting or bool(corpus.get("drop_conflicting"))
    args.no_final = args.no_final or run.get("final") is False
    if args.corpus is None or args.out is None:
        raise ConfigError("give --corpus and --out (or a --config with a \"corpus\" section "
                          "and --out, or --resume RUN)")
    return sections


def _resumed_folds(args, train_cfg) -> list[dict]:
    """The finished folds to keep: those of RUN/metrics.json under ``--resume RUN``, else
    none."""
    from ser_studio.model.config.schema import config_to_dict

    if args.resume is None:
        return []
    kept = finished_folds(args.resume, config_to_dict(train_cfg))
    log.info("%s: resuming; keeping finished fold(s) %s", args.resume,
             ", ".join(str(f["fold"]) for f in kept) or "none")
    return kept


def _write_run(args, sections: dict, configs: tuple) -> None:
    """Write ``OUT/run.json``, the run this invocation trains, unless the file already says
    so: a resumed run keeps the run.json it read (its finished folds were trained by it), and
    ``--config OUT/run.json --out OUT`` (the wizard's way: it writes the file, then starts
    ``train``) leaves it untouched when its options change nothing. Otherwise (a recipe that
    leaves fields at their defaults, options that override it) the file is (re)written, since
    run.json must repeat exactly what ran."""
    if args.resume is not None:
        return
    described = run_sections(args, *configs)
    target = args.out / RUN_FILE
    if (args.config is not None and target.exists() and Path(args.config).samefile(target)
            and json.loads(json.dumps(described)) == sections):
        return
    write_run_file(args.out, described)


def _ray_prints_to_stderr(runner):
    """While training on a Ray cluster, stdout is stderr: Ray prints its notices (a worker
    died, a task is retried) to stdout, where only results and JSON lines belong (JsonLines
    keeps the real stdout)."""
    import contextlib

    return contextlib.redirect_stdout(sys.stderr) if runner else contextlib.nullcontext()


def _say_cancelled(summary: dict, out: Path) -> None:
    folds = ", ".join(str(f["fold"]) for f in summary["folds"]) or "none"
    print(f"cancelled: finished fold(s) kept in {out}: {folds}; continue with "
          f"`python main.py train --resume {out}`", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ser_studio.model.corpora.checks import audio_warnings
    from ser_studio.model.corpora.checks import log_warnings
    from ser_studio.model.corpora.labels import parse_classes
    from ser_studio.model.corpora.multi import load_corpora
    from ser_studio.model.cluster.options import record_cluster
    from ser_studio.model.cluster.training import training_runner
    from ser_studio.model.training.experiment import run_cross_validation
    from ser_studio.model.training.trainer import check_device

    progress = JsonLines() if args.progress_json else Bars()
    cancel = threading.Event()
    previous = _install_signals(cancel)
    try:
        check_device(args.device, "--device")  # before anything loads
        sections = _apply_run_sections(args)  # the one read of --config / RUN/run.json
        frontend_cfg, model_cfg, train_cfg = build_configs(args, sections)
        if train_cfg.protocol == "loco" and len(args.corpus) < 2:
            raise ConfigError(f"--protocol loco (leave one corpus out) needs at least two "
                              f"corpora (--corpus A --corpus B ...); got {len(args.corpus)}: "
                              f"{args.corpus[0]}")
        corpus = load_corpora(args.corpus, args.map, parse_classes(args.classes),
                              drop_conflicts=args.drop_conflicting, languages=args.language)
        for part in corpus.parts:
            log_warnings(part.root, audio_warnings(part.utterances))
        resumed = _resumed_folds(args, train_cfg)
        _write_run(args, sections, (frontend_cfg, model_cfg, train_cfg))
        with training_runner(args.ray, args.ray_cpus, args.ray_retries, args.ray_memory,
                             args.ray_storage or "ship") as runner, \
                _ray_prints_to_stderr(runner):
            summary = run_cross_validation(
                corpus, frontend_cfg, model_cfg, train_cfg, args.out, cache_dir=args.cache,
                progress=progress, cancel=cancel, final=not args.no_final,
                max_folds=args.max_folds, device=args.device,
                resume=resumed, runner=runner)
            record_cluster(args.out, runner)
    except Exception as exc:  # every failure becomes a message and exit code 2
        if not isinstance(exc, (ValueError, RuntimeError, OSError, AssertionError)):
            log.exception("unexpected error")
        message = str(exc) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        if args.progress_json:
            progress(ProgressEvent("error", message=message))
        return 2
    finally:
        progress.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not args.progress_json:
        _print_result(summary, args.out)
    if summary["cancelled"]:
        _say_cancelled(summary, args.out)
        return EXIT_CANCELLED
    return 0

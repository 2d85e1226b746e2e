"""``train --resume RUN`` continues the run RUN/run.json describes, and only that run.

Its finished folds were trained with the settings RUN/run.json holds, and the run folder (its
run.json, metrics.json and report) describes one run, so a resumed run takes every setting from
there: an option that defines a run (a config field, ``--set``, the corpus and its labels,
``--no-final``, ``--max-folds``, ...) is refused, naming it, rather than mixing folds trained
two ways under one description. Options that say where and how the run is computed, not what
it trains, are kept (RESUME_OPTIONS).
"""
from __future__ import annotations

from pathlib import Path

from ser_studio.model.config.run import RUN_FILE
from ser_studio.model.config.schema import ConfigError

# parsed options that may come with --resume: the resumed run, where features are cached, the
# torch device, the progress display and the Ray cluster (model.cluster.options)
RESUME_OPTIONS = ("resume", "cache", "device", "progress_json", "ray", "ray_cpus",
                  "ray_retries", "ray_memory", "ray_storage")
_NOT_OPTIONS = ("command", "func", "verbose", "option_flags")  # the parser's own entries
_CHECKED_WHERE_READ = ("config", "out")  # model.cli.train refuses them with --resume


def run_options_given(args) -> list[str]:
    """The options on the command line (``args``, parsed ``train`` arguments) that define a
    run, as flags in the order parsed: every one not at its default (a config field's option:
    None; the others: None, false or []) except RESUME_OPTIONS. ``--config`` and ``--out`` are checked where they are read."""
    flags = getattr(args, "option_flags", None) or {}
    given = []
    for dest, value in vars(args).items():
        if dest in RESUME_OPTIONS + _NOT_OPTIONS + _CHECKED_WHERE_READ:
            continue
        if value is None or ("." not in dest and (value is False or value == [])):
            continue  # at its default (a config option's is None; --no-adain stores false)
        given.append(flags.get(dest, "--" + dest.replace("_", "-")))
    return given


def refuse_run_options(args) -> None:
    """ConfigError naming the run and each option given with ``--resume RUN`` that would
    change the run (see the module docstring)."""
    given = run_options_given(args)
    if not given:
        return
    run = Path(args.resume)
    allowed = ", ".join("--" + name.replace("_", "-") for name in RESUME_OPTIONS[1:])
    raise ConfigError(
        f"--resume {run}: {', '.join(given)} would change the run; a resumed run trains its "
        f"remaining folds with the settings of {run / RUN_FILE}, as its finished ones were "
        f"(only {allowed} may be given). Leave {'it' if len(given) == 1 else 'them'} out, or "
        f"start a new run from it: `python main.py train --config {run / RUN_FILE} --out "
        f"NEW_FOLDER {' '.join(given)} ...`")

"""Where a wizard run goes and how it is started: the run folder gets the run.json the wizard
describes (model.config.run's format), and ``main.py train --config`` runs exactly that."""
from __future__ import annotations

import time
from pathlib import Path

import platformdirs


def default_run_dir() -> Path:
    """A fresh run folder under the user data dir: .../ser-studio/runs/run-YYYYmmdd-HHMMSS."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(platformdirs.user_data_dir("ser-studio")) / "runs" / f"run-{stamp}"


def write_run(out_dir: Path, sections: dict) -> Path:
    """Write ``sections`` (a run.json object) as ``out_dir/run.json``; returns its path. The
    trainer reads it once and leaves it as it is (it describes the run the trainer runs)."""
    from ser_studio.model.config.run import write_run_file

    return write_run_file(Path(out_dir), sections)


def train_args(run_file: Path, out_dir: Path) -> list[str]:
    """Arguments after ``main.py`` that train the run described by ``run_file`` (configs,
    corpus and run options all come from it)."""
    return ["train", "--progress-json", "--config", str(run_file), "--out", str(out_dir)]

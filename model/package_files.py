"""Files that ship inside the package: ``assets/`` (the default model, its card and recipe) and
``resources/`` (stylesheet, icons). Found through importlib.resources, so a checkout and an
installed wheel give the same answer, whatever the working folder."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def assets_dir() -> Path:
    """The ``assets`` package folder."""
    return Path(str(files("assets")))


def resources_dir() -> Path:
    """The ``resources`` package folder."""
    return Path(str(files("resources")))

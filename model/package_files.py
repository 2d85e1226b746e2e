"""Files that ship inside the package: ``assets/`` (the default model, its card and recipe) and
``resources/`` (stylesheet, icons). Found through importlib.resources, so a checkout and an
installed wheel give the same answer, whatever the working folder."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def assets_dir() -> Path:
    """The ``ser_studio.assets`` package folder (the repository's ``assets/``)."""
    return Path(str(files("ser_studio.assets")))


def resources_dir() -> Path:
    """The ``ser_studio.resources`` package folder (the repository's ``resources/``)."""
    return Path(str(files("ser_studio.resources")))

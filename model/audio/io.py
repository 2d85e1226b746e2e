"""Audio loading and slicing: any common file to float32 mono at SAMPLE_RATE.

Decoding is libsndfile's (through soundfile: wav of any bit depth, flac, ogg/vorbis, opus, and mp3
where the installed libsndfile reads it); resampling is soxr's. Every failure is an AudioError
whose message names the file and the problem.

A long file need not be held whole: ``iter_audio`` decodes it block by block (the same samples
as ``load_audio``, soxr's streaming resampler being exact across blocks) and ``stream_windows``
cuts a timeline of windows from such a stream, holding only what a later window can need.
"""
from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ser_studio.model.constants import CLIP_SAMPLES, HOP_SAMPLES, SAMPLE_RATE, WINDOW_SAMPLES
from ser_studio.model.files import why_missing

log = logging.getLogger(__name__)

DECODE_BLOCK_SECONDS = 10.0  # iter_audio: source audio decoded per read


class AudioError(ValueError):
    """Unusable audio; ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def load_audio(path: str | Path) -> np.ndarray:
    """Read an audio file as float32 mono at SAMPLE_RATE.

    Returns: (N,) float32 in [-1, 1] for integer formats (float files are passed through).
    Raises AudioError for a missing, unreadable, empty or truncated file, a file that is not
    audio, or one with NaN/inf samples.
    """
    path = _check_file(path)
    samples, rate = _decode(path)
    if samples.shape[0] == 0:
        raise AudioError(path, "no audio samples (zero length)")
    if not np.isfinite(samples).all():
        raise AudioError(path, "contains NaN or infinite samples")
    return to_mono_16k(samples, rate)


def iter_audio(path: str | Path, block_seconds: float = DECODE_BLOCK_SECONDS
               ) -> Iterator[np.ndarray]:
    """Decode an audio file block by block as float32 mono at SAMPLE_RATE.

    Yields (n,) float32 blocks, each from about ``block_seconds`` of the source (n at most
    ~block_seconds * SAMPLE_RATE plus the resampler's few-ms delay); their concatenation is
    exactly ``load_audio(path)``. Raises AudioError as ``load_audio`` does, for a file whose
    defect shows only later (NaN samples, a read error) when the iteration reaches it.
    """
    if block_seconds <= 0:
        raise ValueError(f"block_seconds must be positive, got {block_seconds}")
    path = _check_file(path)
    read = 0
    with _decode_errors(path), sf.SoundFile(str(path)) as f:
        rate, expected = f.samplerate, f.frames
        if rate <= 0:
            raise AudioError(path, f"invalid sample rate {rate}")
        resampler = (None if rate == SAMPLE_RATE else
                     soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ"))
        frames = max(1, int(block_seconds * rate))
        while True:
            samples = f.read(frames, dtype="float32", always_2d=True)
            if samples.shape[0] == 0:
                break
            read += samples.shape[0]
            if not np.isfinite(samples).all():
                raise AudioError(path, "contains NaN or infinite samples")
            block = _mono(samples) if resampler is None else resampler.resample_chunk(
                _mono(samples), last=False)
            if block.size:
                yield np.ascontiguousarray(block, dtype=np.float32)
        if read:
            warn_if_truncated(path, read, rate)
        if read == 0:
            raise AudioError(path, "truncated: the header promises samples but none could be "
                             "read" if expected > 0 else "no audio samples (zero length)")
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                yield np.ascontiguousarray(tail, dtype=np.float32)


def header_seconds(path: str | Path) -> float:
    """The duration in seconds the file's header states (exact for WAV and FLAC, an estimate
    for some compressed formats; 0 when unknown). Raises AudioError as ``load_audio``."""
    path = _check_file(path)
    with _decode_errors(path), sf.SoundFile(str(path)) as f:
        return f.frames / f.samplerate if f.samplerate > 0 and f.frames > 0 else 0.0


def _check_file(path: str | Path) -> Path:
    """``path`` as a Path; AudioError when it is missing, not a file, or empty."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, why_missing(path))
    if not path.is_file():
        raise AudioError(path, "not a file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    return path


@contextlib.contextmanager
def _decode_errors(path: Path):
    """Turn soundfile's and the OS's read errors into AudioErrors naming ``path``."""
    try:
        yield
    except sf.LibsndfileError as exc:
        container = _container_by_magic(path)
        if container in _UNSUPPORTED or path.suffix.lower() in UNSUPPORTED_SUFFIXES:
            name = container or path.suffix.lstrip(".").upper()
            raise AudioError(path, f"{name} is not supported; convert it to WAV or FLAC, "
                                   f"e.g. `ffmpeg -i IN OUT.wav`") from exc
        if container:
            raise AudioError(
                path, f"truncated or corrupt {container} header ({_reason(exc)})") from exc
        raise AudioError(path, f"not audio or an unsupported format ({_reason(exc)})") from exc
    except (RuntimeError, OSError, EOFError) as exc:
        raise AudioError(path, f"unreadable or truncated audio ({exc})") from exc


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode with soundfile; returns ((N, C) float32, rate)."""
    with _decode_errors(path), sf.SoundFile(str(path)) as f:
        rate = f.samplerate
        expected = f.frames
        samples = f.read(dtype="float32", always_2d=True)
    if expected > 0 and samples.shape[0] == 0:
        raise AudioError(path, "truncated: the header promises samples but none could be read")
    if rate <= 0:
        raise AudioError(path, f"invalid sample rate {rate}")
    warn_if_truncated(path, samples.shape[0], rate)
    return samples, rate


_MAGIC = {b"RIFF": "WAV", b"RF64": "WAV", b"fLaC": "FLAC", b"OggS": "Ogg", b"ID3": "MP3",
          b"FORM": "AIFF"}


_UNSUPPORTED = {"m4a/AAC (MP4)", "WMA/ASF"}   # containers libsndfile never decodes
# names of files in formats libsndfile never decodes, whatever their bytes say (the app's Open
# dialog lists them too, so that the Files tab explains each one chosen)
UNSUPPORTED_SUFFIXES = (".m4a", ".aac", ".mp4", ".wma", ".m4b", ".3gp")


def _container_by_magic(path: Path) -> str | None:
    """The container a file claims to be by its first bytes, or None."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp":
        return "m4a/AAC (MP4)"
    if head.startswith(b"\x30\x26\xb2\x75"):
        return "WMA/ASF"
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def warn_if_truncated(path: Path, frames_read: int, rate: int) -> float:
    """Log a WARNING naming ``path`` when its WAV header promises more audio than the file
    holds (libsndfile quietly decodes what is there); returns the seconds missing (0 if none)."""
    missing = _wav_missing_frames(path, frames_read)
    if missing <= 0 or rate <= 0:
        return 0.0
    seconds = missing / rate
    log.warning("%s: truncated WAV: the header promises %.2f s more audio than the file "
                "holds; decoded the %.2f s present", path, seconds, frames_read / rate)
    return seconds


def _wav_missing_frames(path: Path, frames_read: int) -> int:
    """Frames a RIFF/WAVE header's data chunk promises beyond ``frames_read`` (0: none, or
    not a plain WAV, or a streamed one with an unset size)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        block_align = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return 0
            tag, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if tag == b"fmt ":
                block_align = struct.unpack("<H", f.read(16)[12:14])[0]
                f.seek(size - 16 + size % 2, 1)
            elif tag == b"data":
                if block_align <= 0 or size in (0, 0xFFFFFFFF):
                    return 0
                return max(0, size // block_align - frames_read)
            else:
                f.seek(size + size % 2, 1)


def _reason(exc: sf.LibsndfileError) -> str:
    """libsndfile's own words, without the file name it repeats."""
    text = getattr(exc, "error_string", "") or str(exc)
    return text.strip().rstrip(".")


def to_mono_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Downmix to mono and resample to SAMPLE_RATE.

    samples: (N,) or (N, C); rate in Hz. Returns (N',) float32, N' = round(N * 16000 / rate).
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = _mono(samples)
    elif samples.ndim != 1:
        raise ValueError(f"expected (N,) or (N, C) samples, got shape {samples.shape}")
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


def _mono(samples: np.ndarray) -> np.ndarray:
    """(N, C) float32 -> (N,) float32, the mean of the channels."""
    return samples.mean(axis=1)


def crop_or_pad(
    wav: np.ndarray, n: int = CLIP_SAMPLES, *, random: np.random.Generator | None = None
) -> np.ndarray:
    """Return exactly ``n`` samples: a centre crop (a random one when ``random`` is given) of a
    longer signal, or the signal zero-padded at the end. wav: (N,) -> (n,)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    length = wav.shape[0]
    if length >= n:
        start = int(random.integers(0, length - n + 1)) if random is not None else (length - n) // 2
        return wav[start:start + n]
    out = np.zeros(n, dtype=wav.dtype)
    out[:length] = wav
    return out


def frame_windows(
    wav: np.ndarray, window: int = WINDOW_SAMPLES, hop: int = HOP_SAMPLES
) -> list[tuple[int, int]]:
    """(start, end) sample spans of windows of ``window`` samples every ``hop`` covering ``wav``.

    A signal no longer than one window gives one span (0, N). The last window is aligned to the
    end of the signal so no tail is left out; it may overlap its neighbour more than ``hop``.
    """
    return window_spans(wav.shape[0], window, hop)


def window_spans(length: int, window: int = WINDOW_SAMPLES, hop: int = HOP_SAMPLES
                 ) -> list[tuple[int, int]]:
    """``frame_windows`` of a signal of ``length`` samples, without the signal."""
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive, got {window}, {hop}")
    if length <= window:
        return [(0, length)]
    spans = [(start, start + window) for start in range(0, length - window + 1, hop)]
    if spans[-1][1] < length:
        spans.append((length - window, length))
    return spans


def stream_windows(blocks: Iterable[np.ndarray], window: int = WINDOW_SAMPLES,
                   hop: int = HOP_SAMPLES) -> Iterator[tuple[int, int, np.ndarray]]:
    """The ``window_spans`` of a signal that arrives in blocks, its length unknown until it ends.

    blocks: consecutive (n,) float32 pieces of one signal. Yields (start, end, samples
    (end - start,)) in order: each regular window as soon as its end has arrived, then, when
    the signal has ended, the end-aligned last window (or the one window of a signal no longer
    than ``window``), exactly the spans window_spans(length, window, hop) lists. Only the
    samples a later window can still need are held (about one window plus one block),
    whatever the signal's length.
    """
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive, got {window}, {hop}")
    held, origin, next_start, last_end = np.zeros(0, dtype=np.float32), 0, 0, 0
    for block in blocks:
        held = np.concatenate([held, block])
        total = origin + held.size
        while next_start + window <= total:
            yield next_start, next_start + window, \
                held[next_start - origin:next_start + window - origin].copy()
            last_end, next_start = next_start + window, next_start + hop
        keep = min(next_start, max(0, total - window))  # the tail window may need these
        if keep > origin:
            held, origin = held[keep - origin:], keep
    total = origin + held.size
    if total < window:  # no regular window fitted
        yield 0, total, held[:total].copy()
    elif last_end < total:
        yield total - window, total, held[total - window - origin:].copy()

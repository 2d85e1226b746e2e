"""silero-vad over a stream (a live microphone or a whole file), every sample through the model
once, at a fraction of silero's chunk-by-chunk cost.

silero's 16 kHz model gives one speech probability per 512-sample (32 ms) chunk. Called chunk
by chunk (``model(chunk, 16000)``, as its get_speech_timestamps loop and model.vad do), it
prepends the previous chunk's last 64 samples as context, runs a stateless front (an STFT and
four conv blocks) over those 576 samples, then a recurrent decoder (an LSTM cell, ReLU, a 1x1
conv, a sigmoid) whose state is the only memory reaching further back. :class:`SpeechProbStream`
runs the front on many chunks at once (each chunk's context is the tail of the one before) and
the LSTM cell's weights as one ``nn.LSTM`` over them, carrying context and decoder state from
call to call. Measured on one core: a live 0.5 s hop (16 chunks) costs ~0.6 ms instead of ~5 ms;
a file costs ~20 ms per 1024 chunks (33 s), about 10x less than silero's loop.

Numerics: batched convolutions and the sequence LSTM sum in another order than the per-chunk
calls; probabilities differ by ~1e-6 typically and at most 6e-5 measured (speech, silence,
noise; tests/model/test_vad_stream.py). A segment edge can therefore move by one 32 ms chunk
only where a probability lies that close to silero's thresholds (0.5 to start, 0.35 to end).
``exact=True`` runs silero's own call chunk by chunk instead (bit-identical to its loop).

The batched form reaches into the TorchScript model's parts (``_model.stft``, ``encoder``,
``decoder.rnn``, ``decoder.decoder``). At first use it is checked against silero's own call on
a probe fed in two parts (so carrying state over is checked too); if the parts are missing or
the two disagree by more than PROBE_TOLERANCE (another silero release), every stream uses
silero's own call and a warning is logged. The checked parts are pure functions shared by all
streams and threads; a stream on silero's own call owns its (stateful) model.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
import torch

from model.constants import SAMPLE_RATE
from model.vad import CHUNK_SAMPLES, load_model, spans_from_probs

log = logging.getLogger(__name__)

CONTEXT = 64               # samples of the previous chunk silero prepends to each chunk
BATCH_CHUNKS = 1024        # chunks per batched front call (~33 s of audio, ~10 MB)
PROBE_TOLERANCE = 1e-3     # far above the batching's 1e-5, far below a wrong layout's


@dataclass(frozen=True)
class _Parts:
    """silero's 16 kHz network (front + decoder head) and its LSTM cell as an nn.LSTM."""

    net: torch.nn.Module       # .stft, .encoder, .decoder.decoder
    lstm: torch.nn.LSTM


_UNSET = object()
_parts: _Parts | None | object = _UNSET
_parts_lock = threading.Lock()


def _shared_parts() -> _Parts | None:
    """The process-wide parts, loaded and probe-checked on first call; None when the batched
    form is unavailable and streams must use silero's own call."""
    global _parts
    with _parts_lock:
        if _parts is _UNSET:
            _parts = _checked_parts()
        return _parts


def _checked_parts() -> _Parts | None:
    """Load the parts and compare them with silero's own call on the probe."""
    try:
        net = load_model()._model
        parts = _Parts(net, _as_lstm(net.decoder.rnn))
        probe = _probe()
        ours = _Batched(parts)
        fast = np.concatenate([ours(probe[:5]), ours(probe[5:])])
        gap = float(np.max(np.abs(fast - _Silero()(probe))))
    except (AttributeError, RuntimeError, TypeError, ValueError) as exc:
        log.warning("batched silero-vad unavailable (%s); using silero's own call", exc)
        return None
    if not gap <= PROBE_TOLERANCE:
        log.warning("batched silero-vad differs from silero's own call by %.2g on the probe; "
                    "using silero's own call", gap)
        return None
    return parts


def _as_lstm(cell) -> torch.nn.LSTM:
    """An nn.LSTM of one layer holding an LSTMCell's weights."""
    hidden, inputs = cell.weight_hh.shape[1], cell.weight_ih.shape[1]
    lstm = torch.nn.LSTM(inputs, hidden)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{name}_l0").copy_(getattr(cell, name))
    return lstm.eval()


def _probe(chunks: int = 94) -> torch.Tensor:
    """A fixed signal for the check, 3 s of a gated gliding tone in noise: (chunks, 512)."""
    rng = np.random.default_rng(0)
    t = np.arange(chunks * CHUNK_SAMPLES) / SAMPLE_RATE
    wav = (0.3 * np.sin(2 * np.pi * (150 + 100 * t) * t) * (np.sin(2 * np.pi * 3 * t) > 0)
           + 0.02 * rng.standard_normal(t.size))
    return torch.from_numpy(wav.astype(np.float32)).view(chunks, CHUNK_SAMPLES)


class _Batched:
    """Chunks (K, 512) -> probabilities (K,) through the shared parts, context and state
    carried from call to call."""

    def __init__(self, parts: _Parts) -> None:
        self._parts = parts
        self.reset()

    def reset(self) -> None:
        hidden = self._parts.lstm.hidden_size
        self._context = torch.zeros(CONTEXT)
        self._state = (torch.zeros(1, 1, hidden), torch.zeros(1, 1, hidden))

    def __call__(self, chunks: torch.Tensor) -> np.ndarray:
        net = self._parts.net
        extended = torch.cat([self._context, chunks.reshape(-1)])
        frames = extended.unfold(0, CONTEXT + CHUNK_SAMPLES, CHUNK_SAMPLES)  # (K, 576)
        self._context = chunks[-1, -CONTEXT:].clone()
        with torch.inference_mode():
            feats = net.encoder(net.stft(frames.contiguous()))              # (K, H_in, 1)
            seq, self._state = self._parts.lstm(feats.squeeze(-1).unsqueeze(1), self._state)
            out = net.decoder.decoder(seq.squeeze(1).unsqueeze(-1))         # (K, 1, 1)
        return out.squeeze(1).mean(1).numpy().astype(np.float32)


class _Silero:
    """Chunks (K, 512) -> probabilities (K,) by silero's own call, one chunk at a time, on a
    model of its own (silero's state is the model's)."""

    def __init__(self) -> None:
        self._model = load_model()

    def reset(self) -> None:
        self._model.reset_states()

    def __call__(self, chunks: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return np.array([float(self._model(c.unsqueeze(0), SAMPLE_RATE)) for c in chunks],
                            dtype=np.float32)


class SpeechProbStream:
    """silero speech probabilities of one stream fed in blocks of any size; one thread.

    ``feed`` returns the probabilities of the chunks each block completes; ``flush`` adds the
    unfinished last chunk zero-padded, as get_speech_timestamps pads a signal's end. The model
    is loaded on first use. Holds less than one chunk of samples.
    """

    def __init__(self, *, exact: bool = False) -> None:
        self._exact = exact
        self._model: _Batched | _Silero | None = None
        self._tail = np.zeros(0, dtype=np.float32)  # < CHUNK_SAMPLES samples awaiting a chunk
        self.n_samples = 0                          # samples fed since the last reset

    @property
    def batched(self) -> bool:
        """Whether this stream runs the batched form (loads the model if needed)."""
        return isinstance(self._load(), _Batched)

    @property
    def pending(self) -> int:
        """Samples fed that no probability covers yet (< CHUNK_SAMPLES)."""
        return self._tail.size

    def reset(self) -> None:
        """Start a new stream: forget the recurrent state and the unfinished chunk."""
        if self._model is not None:
            self._model.reset()
        self._tail = np.zeros(0, dtype=np.float32)
        self.n_samples = 0

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities (K,) float32 of the chunks that ``samples`` ((N,) float32,
        16 kHz, following the previous call's) complete. NaN/inf samples are fed as 0 so that
        they cannot poison the recurrent state."""
        samples = np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1),
                                nan=0.0, posinf=0.0, neginf=0.0)
        self.n_samples += samples.size
        audio = np.concatenate([self._tail, samples])
        whole = audio.size - audio.size % CHUNK_SAMPLES
        self._tail = audio[whole:].copy()
        if whole == 0:
            return np.zeros(0, dtype=np.float32)
        chunks = torch.from_numpy(audio[:whole]).view(-1, CHUNK_SAMPLES)
        model = self._load()
        return np.concatenate([model(part) for part in chunks.split(BATCH_CHUNKS)])

    def flush(self) -> np.ndarray:
        """The probability (1,) of the unfinished chunk zero-padded, or (0,) when none is
        pending. The stream then continues after that padded chunk."""
        if self._tail.size == 0:
            return np.zeros(0, dtype=np.float32)
        padded = np.pad(self._tail, (0, CHUNK_SAMPLES - self._tail.size))
        self._tail = np.zeros(0, dtype=np.float32)
        return self._load()(torch.from_numpy(padded).view(1, CHUNK_SAMPLES))

    def run(self, wav: np.ndarray) -> np.ndarray:
        """Probabilities (ceil(N / CHUNK_SAMPLES),) of a whole signal wav (N,) from a fresh
        state: ``reset``, ``feed`` and ``flush``."""
        self.reset()
        return np.concatenate([self.feed(wav), self.flush()])

    def _load(self) -> _Batched | _Silero:
        if self._model is None:
            parts = None if self._exact else _shared_parts()
            self._model = _Batched(parts) if parts is not None else _Silero()
        return self._model


def speech_spans(wav: np.ndarray, *, exact: bool = False) -> list[tuple[int, int]]:
    """model.vad.speech_spans of ``wav`` ((N,) float32, 16 kHz) through a SpeechProbStream."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    return spans_from_probs(SpeechProbStream(exact=exact).run(wav), wav.size)

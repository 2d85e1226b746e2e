"""silero-vad over a long stream at a fraction of the chunk-by-chunk cost.

silero's model is a stateless front (an STFT and four conv blocks on each 32 ms chunk and the
64 samples before it) and a recurrent decoder (an LSTM cell, then ReLU, a 1x1 conv and a
sigmoid). silero's own loop (``get_speech_timestamps``, model.vad.speech_spans) calls the whole
model once per chunk, ~0.3 ms a chunk, mostly call overhead and unbatched convolutions.
:class:`SpeechProbs` runs the front on many chunks at once and the LSTM cell's weights as one
``nn.LSTM`` over them, carrying the decoder state from batch to batch, so its probabilities are
those of one pass over the whole stream, about 10x cheaper. Segments come from silero's own
post-processing (model.vad.spans_from_probs) with model.vad's settings.

Numerics: batched convolutions (oneDNN) and the sequence LSTM sum in another order than the
per-chunk calls (one chunk at a time takes PyTorch's plain convolution); probabilities differ by
~1e-6 typically and at most 6e-5 measured (speech, silence and brown noise;
tests/model/test_vad_batch.py). A segment edge can therefore move by one 32 ms chunk only where
a probability lies that close to silero's thresholds (0.5 to start, 0.35 to end): by that
estimate about one edge per hour of speech, moving 1 % of a 3 s window's speech ratio.
``exact=True`` runs the per-chunk path instead (bit-identical to silero's loop, ~10x the cost).
At first use the batched path is checked against the per-chunk one on a probe signal; if they
disagree by more than PROBE_TOLERANCE (another silero release with another layout), every
stream uses the per-chunk path and a warning is logged.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass

import numpy as np
import torch

from model import vad as vad_mod
from model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

CHUNK = vad_mod.CHUNK_SAMPLES  # 512 samples = 32 ms, one probability each
CONTEXT = 64                   # samples of the previous chunk silero prepends to each chunk
BATCH_CHUNKS = 1024            # chunks per batched front call (~33 s of audio)
PROBE_TOLERANCE = 1e-3     # far above the batching's 1e-5, far below a wrong layout's


@dataclass(frozen=True)
class _Parts:
    """silero's 16 kHz model (front + decoder head) and its LSTM cell as an nn.LSTM."""

    model: torch.nn.Module     # forward(x (B, CONTEXT + CHUNK), state (2, B, H)) -> (p, state)
    lstm: torch.nn.LSTM
    batched: bool              # the batched path passed the probe check


_parts: _Parts | None = None
_parts_lock = threading.Lock()


def _silero_parts() -> _Parts:
    """The process-wide parts (loaded and probe-checked on first call); calls are pure."""
    global _parts
    with _parts_lock:
        if _parts is None:
            model = vad_mod.load_model()._model
            candidate = _Parts(model, _as_lstm(model.decoder.rnn), batched=True)
            _parts = (candidate if _probe_agrees(candidate)
                      else dataclasses.replace(candidate, batched=False))
        return _parts


def _as_lstm(cell) -> torch.nn.LSTM:
    """An nn.LSTM of one layer holding an LSTMCell's weights."""
    hidden, inputs = cell.weight_hh.shape[1], cell.weight_ih.shape[1]
    lstm = torch.nn.LSTM(inputs, hidden)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{name}_l0").copy_(getattr(cell, name))
    return lstm.eval()


def _probe_agrees(parts: _Parts) -> bool:
    """True when the batched path gives the per-chunk probabilities on a probe signal."""
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    probe = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
             + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    try:
        fast = SpeechProbs(parts=parts, exact=False).run(probe)
        exact = SpeechProbs(parts=parts, exact=True).run(probe)
        gap = float(np.max(np.abs(fast - exact)))
    except (RuntimeError, AttributeError, ValueError) as exc:
        log.warning("batched silero-vad unavailable (%s); using the per-chunk path", exc)
        return False
    if gap > PROBE_TOLERANCE:
        log.warning("batched silero-vad differs from the per-chunk path by %.2g on the probe; "
                    "using the per-chunk path", gap)
        return False
    return True


class SpeechProbs:
    """silero speech probabilities of one stream fed in blocks (one thread).

    ``feed`` blocks of (n,) float32 at 16 kHz, then ``finish`` for the probabilities (K,) of all
    CHUNK-sample chunks, the last one zero-padded, as silero's get_speech_timestamps makes them.
    Holds the probabilities (4 bytes per 32 ms) and less than one chunk of samples.
    """

    def __init__(self, *, exact: bool = False, parts: _Parts | None = None) -> None:
        self._parts = parts or _silero_parts()
        self.exact = exact or not self._parts.batched
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._tail = np.zeros(0, dtype=np.float32)
        self._state: tuple[torch.Tensor, torch.Tensor] | None = None
        self._probs: list[np.ndarray] = []
        self.n_samples = 0

    def feed(self, samples: np.ndarray) -> None:
        """Add the next samples (n,) float32 of the stream."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.n_samples += samples.size
        audio = np.concatenate([self._tail, samples])
        whole = audio.size - audio.size % CHUNK
        self._tail = audio[whole:].copy()
        for start in range(0, whole, BATCH_CHUNKS * CHUNK):
            self._run_chunks(audio[start:min(whole, start + BATCH_CHUNKS * CHUNK)])

    def finish(self) -> np.ndarray:
        """Probabilities (K,) float32 of all chunks fed, K = ceil(n_samples / CHUNK)."""
        if self._tail.size:
            self._run_chunks(np.pad(self._tail, (0, CHUNK - self._tail.size)))
            self._tail = np.zeros(0, dtype=np.float32)
        return (np.concatenate(self._probs) if self._probs
                else np.zeros(0, dtype=np.float32))

    def run(self, wav: np.ndarray) -> np.ndarray:
        """``feed(wav)`` then ``finish()``."""
        self.feed(wav)
        return self.finish()

    def _run_chunks(self, audio: np.ndarray) -> None:
        """Probabilities of whole chunks ``audio`` (k * CHUNK,), following the previous ones."""
        extended = np.concatenate([self._context, audio])
        self._context = audio[-CONTEXT:].copy()
        frames = torch.from_numpy(extended).unfold(0, CONTEXT + CHUNK, CHUNK)  # (k, 576)
        with torch.inference_mode():
            probs = self._per_chunk(frames) if self.exact else self._batched(frames)
        self._probs.append(probs.numpy().astype(np.float32))

    def _per_chunk(self, frames: torch.Tensor) -> torch.Tensor:
        """silero's own call, chunk by chunk: (k, 576) -> (k,)."""
        state = (torch.zeros(2, 1, self._parts.lstm.hidden_size) if self._state is None
                 else torch.stack(self._state))
        out = []
        for frame in frames:
            prob, state = self._parts.model(frame.unsqueeze(0), state)
            out.append(prob.reshape(()))
        self._state = (state[0], state[1])
        return torch.stack(out)

    def _batched(self, frames: torch.Tensor) -> torch.Tensor:
        """The front on all chunks at once, the decoder as one LSTM pass: (k, 576) -> (k,)."""
        model = self._parts.model
        feats = model.encoder(model.stft(frames.contiguous()))           # (k, H_in, 1)
        hidden = self._parts.lstm.hidden_size
        h, c = self._state or (torch.zeros(1, hidden), torch.zeros(1, hidden))
        seq, (h, c) = self._parts.lstm(feats.squeeze(-1).unsqueeze(1),
                                       (h.unsqueeze(0), c.unsqueeze(0)))  # (k, 1, H)
        self._state = (h[0], c[0])
        out = model.decoder.decoder(seq.squeeze(1).unsqueeze(-1))         # (k, 1, 1)
        return out.squeeze(1).mean(1)


def speech_spans(wav: np.ndarray, *, exact: bool = False) -> list[tuple[int, int]]:
    """model.vad.speech_spans of ``wav`` ((N,) float32, 16 kHz) through :class:`SpeechProbs`."""
    stream = SpeechProbs(exact=exact)
    return vad_mod.spans_from_probs(stream.run(wav), stream.n_samples)

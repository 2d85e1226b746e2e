"""silero-vad over a live stream: every sample goes through the model once, state carried over.

silero's 16 kHz model gives one speech probability per 512-sample (32 ms) chunk. Called chunk by
chunk (``model(chunk, 16000)``), it prepends the previous chunk's last 64 samples as context,
runs an STFT and four convolution blocks over those 576 samples, then steps an LSTM cell whose
state is the only memory that reaches further back. So the probabilities of K consecutive chunks
can be computed with the convolutional part run on all K at once (each chunk's context is
already known: the tail of the chunk before it) and only the LSTM cell stepped chunk by chunk:
about 3x less CPU for a 0.5 s hop (16 chunks) than K separate calls, with the same numbers.

That batched form reaches into the TorchScript model's parts (``_model.stft``, ``encoder``,
``decoder.rnn``, ``decoder.decoder``), so :class:`ChunkModel` checks it against the plain
chunk-by-chunk call when it loads and falls back to that call when a silero version differs.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from model.constants import SAMPLE_RATE
from model.vad import CHUNK_SAMPLES, load_model

log = logging.getLogger(__name__)

CHECK_TOLERANCE = 1e-4  # batched vs chunk-by-chunk probabilities on the load-time probe


def _probe(chunks: int = 12) -> torch.Tensor:
    """A fixed signal for the load-time check: a gliding tone in noise, (chunks, 512)."""
    rng = np.random.default_rng(0)
    t = np.arange(chunks * CHUNK_SAMPLES) / SAMPLE_RATE
    wav = 0.3 * np.sin(2 * np.pi * (150 + 400 * t) * t) + 0.05 * rng.standard_normal(t.size)
    return torch.from_numpy(wav.astype(np.float32)).view(chunks, CHUNK_SAMPLES)


class ChunkModel:
    """A silero-vad model stepped over consecutive (K, 512) chunks, state carried between calls.
    Use under ``torch.inference_mode()``; one thread."""

    def __init__(self) -> None:
        self.model = load_model()
        self.batched = False
        try:
            net = self.model._model
            self._context_size = int(net.context_size_samples)
            self._hidden = int(net.decoder.rnn.hidden_size)
            self.batched = self._batched_matches()
        except (AttributeError, RuntimeError, TypeError, ValueError) as exc:
            log.info("silero-vad's parts differ from the ones known (%s)", exc)
        if not self.batched:
            log.info("silero-vad steps chunk by chunk (its batched form is not available)")
        self.reset()

    def reset(self) -> None:
        """Forget the stream: zero state and context, as silero's ``reset_states``."""
        self.model.reset_states()
        if hasattr(self, "_hidden"):
            self._context = torch.zeros(1, self._context_size)
            self._state = (torch.zeros(1, self._hidden), torch.zeros(1, self._hidden))

    def __call__(self, chunks: torch.Tensor) -> np.ndarray:
        """Speech probabilities (K,) float32 of chunks (K, 512) that follow the previous ones."""
        if not self.batched:
            return np.array([float(self.model(c.unsqueeze(0), SAMPLE_RATE)) for c in chunks],
                            dtype=np.float32)
        return self._batched(chunks).numpy().astype(np.float32)

    def _batched(self, chunks: torch.Tensor) -> torch.Tensor:
        """silero's 16 kHz forward over K chunks: convolutions as one batch, LSTM stepped."""
        net = self.model._model
        context = torch.cat([self._context, chunks[:-1, -self._context_size:]])
        features = net.encoder(net.run_extractors(torch.cat([context, chunks], dim=1)))
        h, c = self._state
        steps = []
        for x in features.squeeze(-1).split(1):
            h, c = net.decoder.rnn(x, (h, c))
            steps.append(h)
        self._state = (h, c)
        self._context = chunks[-1:, -self._context_size:].clone()
        out = net.decoder.decoder(torch.cat(steps).unsqueeze(-1))  # (K, 1, T)
        return out.squeeze(1).mean(dim=1)

    def _batched_matches(self) -> bool:
        """Whether the batched form gives the chunk-by-chunk call's probabilities on a probe
        fed in two parts (so that carrying state and context over is checked too)."""
        probe = _probe()
        with torch.inference_mode():
            self.model.reset_states()
            plain = np.array([float(self.model(c.unsqueeze(0), SAMPLE_RATE)) for c in probe])
            self.reset()
            both = torch.cat([self._batched(probe[:5]), self._batched(probe[5:])]).numpy()
        gap = float(np.abs(both - plain).max())
        if gap > CHECK_TOLERANCE:
            log.warning("silero-vad's batched form differs from its own call by %.2g", gap)
        return gap <= CHECK_TOLERANCE


class SpeechProbStream:
    """silero-vad run over a stream, its recurrent state carried between calls, so every sample
    goes through the model once. Owns its model (never the shared one, model.vad's), loaded on
    first use; for one thread. ``feed`` keeps an unfinished chunk's samples for the next call."""

    def __init__(self) -> None:
        self._model: ChunkModel | None = None
        self._tail = np.zeros(0, dtype=np.float32)  # < CHUNK_SAMPLES samples awaiting a chunk

    @property
    def pending(self) -> int:
        """Samples fed that no probability covers yet (< CHUNK_SAMPLES)."""
        return self._tail.size

    def reset(self) -> None:
        """Start a new stream: forget the recurrent state and the unfinished chunk."""
        if self._model is not None:
            self._model.reset()
        self._tail = np.zeros(0, dtype=np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities (K,) float32 of the chunks that ``samples`` ((N,) float32,
        16 kHz, following the previous call's) complete. NaN/inf samples are fed as 0 so that
        they cannot poison the recurrent state."""
        samples = np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1),
                                nan=0.0, posinf=0.0, neginf=0.0)
        audio = np.concatenate([self._tail, samples])
        whole = audio.size - audio.size % CHUNK_SAMPLES
        self._tail = audio[whole:].copy()
        if whole == 0:
            return np.zeros(0, dtype=np.float32)
        if self._model is None:
            self._model = ChunkModel()
        with torch.inference_mode():
            return self._model(torch.from_numpy(audio[:whole]).view(-1, CHUNK_SAMPLES))

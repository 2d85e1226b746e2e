"""silero-vad over a stream (a live microphone or a whole file), every sample through the model
once, at a fraction of silero's chunk-by-chunk cost.

silero's 16 kHz model gives one speech probability per 512-sample (32 ms) chunk. Called chunk
by chunk (``model(chunk, 16000)``, as its get_speech_timestamps loop and model.audio.vad do), it
prepends the previous chunk's last 64 samples as context, runs a stateless front (an STFT and
four conv blocks) over those 576 samples, then a recurrent decoder whose state is the only
memory reaching further back. silero-vad (6.2.2 and later) ships the same network as a
"sequence" ONNX graph (``silero_vad_16k_sequence.onnx``: frames (K, 576) with their context,
LSTM state h, c (1, 1, 128) -> probabilities (K,) and the next state), run here on onnxruntime
(one thread, model.onnx.session.session). :class:`SpeechProbStream` cuts each block of a
stream into such frames, carrying context and state from call to call; a file goes through
BATCH_CHUNKS chunks (~33 s) per call, a live 0.5 s hop through its 16. The graph is loaded once
per process without torch (not silero's TorchScript file, which takes more memory:
bench/results/memory-2026-12-06/README.md) and shared by every stream and thread; each stream
owns its context and state.

Numerics: probabilities follow silero's own chunk-by-chunk call closely: within 5e-4 on
speech, silence and noise (tests/model/test_vad_stream.py; the measured differences are in
bench/results/memory-2026-12-06/README.md). A segment edge can
therefore move by one 32 ms chunk only where a probability lies that close to silero's
thresholds. ``exact=True`` runs silero's own TorchScript call chunk by chunk instead
(bit-identical to its loop); a stream whose graph cannot be loaded does so too, with a warning.
"""
from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np
import torch

from ser_studio.model.audio.vad import CHUNK_SAMPLES, GateInput, load_model, spans_from_probs
from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

CONTEXT = 64               # samples of the previous chunk silero prepends to each chunk
HIDDEN = 128               # silero's LSTM state size
BATCH_CHUNKS = 1024        # chunks per graph call (~33 s of audio, ~3 MB of frames)
SEQUENCE_GRAPH = "silero_vad_16k_sequence.onnx"


def sequence_graph_path() -> Path:
    """silero-vad's sequence graph, found without importing the package (which imports torch
    and changes its thread count). OSError when this silero-vad has none (before 6.2.2)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise OSError("silero-vad is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / SEQUENCE_GRAPH
    if not path.is_file():
        raise OSError(f"{path} is missing: silero-vad 6.2.2 or later ships it")
    return path


_UNSET = object()
_session = _UNSET
_session_lock = threading.Lock()


def _shared_session():
    """The process-wide onnxruntime session of the sequence graph, loaded on first call; None
    when it cannot be loaded (streams then use silero's own call)."""
    global _session
    with _session_lock:
        if _session is _UNSET:
            from ser_studio.model.onnx.session import OnnxGraphError, session

            try:
                _session = session(sequence_graph_path())
            except (OSError, ImportError, OnnxGraphError) as exc:
                log.warning("silero-vad's sequence graph unavailable (%s); using its own "
                            "chunk-by-chunk call", exc)
                _session = None
        return _session


class _Sequence:
    """Chunks (K, 512) -> probabilities (K,) through silero's sequence graph, context and state
    carried from call to call."""

    def __init__(self, session) -> None:
        self._session = session
        self.reset()

    def reset(self) -> None:
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._h = np.zeros((1, 1, HIDDEN), dtype=np.float32)
        self._c = np.zeros((1, 1, HIDDEN), dtype=np.float32)

    def __call__(self, chunks: np.ndarray) -> np.ndarray:
        contexts = np.concatenate([self._context[None], chunks[:-1, -CONTEXT:]])
        frames = np.ascontiguousarray(np.concatenate([contexts, chunks], axis=1))  # (K, 576)
        self._context = chunks[-1, -CONTEXT:].copy()
        probs, self._h, self._c = self._session.run(
            ["speech_probs", "hn", "cn"], {"input": frames, "h": self._h, "c": self._c})
        return probs.reshape(-1).astype(np.float32)


class _Silero:
    """Chunks (K, 512) -> probabilities (K,) by silero's own call, one chunk at a time, on a
    model of its own (silero's state is the model's)."""

    def __init__(self) -> None:
        self._model = load_model()

    def reset(self) -> None:
        self._model.reset_states()

    def __call__(self, chunks: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return np.array([float(self._model(torch.from_numpy(c).unsqueeze(0), SAMPLE_RATE))
                             for c in chunks], dtype=np.float32)


class SpeechProbStream:
    """silero speech probabilities of one stream fed in blocks of any size; one thread.

    ``feed`` returns the probabilities of the chunks each block completes; ``flush`` adds the
    unfinished last chunk zero-padded, as get_speech_timestamps pads a signal's end. The model
    is loaded on first use. Holds less than one chunk of samples.
    """

    def __init__(self, *, exact: bool = False) -> None:
        self._exact = exact
        self._models: list[_Sequence] | list[_Silero] | None = None  # one per gate level
        self._tail = np.zeros(0, dtype=np.float32)  # < CHUNK_SAMPLES samples awaiting a chunk
        self.n_samples = 0                          # samples fed since the last reset
        self._input = GateInput()                   # the high-pass over the stream

    @property
    def batched(self) -> bool:
        """Whether this stream runs silero's sequence graph (loads it if needed)."""
        return isinstance(self._load()[0], _Sequence)

    @property
    def pending(self) -> int:
        """Samples fed that no probability covers yet (< CHUNK_SAMPLES)."""
        return self._tail.size

    def reset(self) -> None:
        """Start a new stream: forget the recurrent state and the unfinished chunk."""
        for model in self._models or ():
            model.reset()
        self._tail = np.zeros(0, dtype=np.float32)
        self.n_samples = 0
        self._input = GateInput()

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities (K,) float32 of the chunks that ``samples`` ((N,) float32,
        16 kHz, following the previous call's) complete, heard through model.audio.vad.GateInput.
        NaN/inf samples are fed as 0 so that they cannot poison the recurrent state."""
        samples = np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1),
                                nan=0.0, posinf=0.0, neginf=0.0)
        self.n_samples += samples.size
        if samples.size == 0:
            return np.zeros(0, dtype=np.float32)
        audio = np.concatenate([self._tail, self._input.filter(samples)])
        whole = audio.size - audio.size % CHUNK_SAMPLES
        self._tail = audio[whole:].copy()
        if whole == 0:
            return np.zeros(0, dtype=np.float32)
        chunks = audio[:whole].reshape(-1, CHUNK_SAMPLES)
        return np.concatenate([self._probs(chunks[i:i + BATCH_CHUNKS])
                               for i in range(0, len(chunks), BATCH_CHUNKS)])

    def _probs(self, chunks: np.ndarray) -> np.ndarray:
        """Probabilities (K,) of filtered chunks (K, 512): each level through its own model."""
        models = self._load()
        return GateInput.loudest(lambda i, scaled: models[i](scaled), chunks)

    def flush(self) -> np.ndarray:
        """The probability (1,) of the unfinished chunk zero-padded, or (0,) when none is
        pending. The stream then continues after that padded chunk."""
        if self._tail.size == 0:
            return np.zeros(0, dtype=np.float32)
        padded = np.pad(self._tail, (0, CHUNK_SAMPLES - self._tail.size))
        self._tail = np.zeros(0, dtype=np.float32)
        return self._probs(padded.reshape(1, CHUNK_SAMPLES))

    def run(self, wav: np.ndarray) -> np.ndarray:
        """Probabilities (ceil(N / CHUNK_SAMPLES),) of a whole signal wav (N,) from a fresh
        state: ``reset``, ``feed`` and ``flush``."""
        self.reset()
        return np.concatenate([self.feed(wav), self.flush()])

    def _load(self) -> list[_Sequence] | list[_Silero]:
        if self._models is None:
            session = None if self._exact else _shared_session()
            self._models = [_Sequence(session) if session is not None else _Silero()
                            for _ in GateInput.gains]
        return self._models


def speech_spans(wav: np.ndarray, *, exact: bool = False) -> list[tuple[int, int]]:
    """model.audio.vad.speech_spans of ``wav`` ((N,) float32, 16 kHz) through a
    SpeechProbStream."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    return spans_from_probs(SpeechProbStream(exact=exact).run(wav), wav.size)

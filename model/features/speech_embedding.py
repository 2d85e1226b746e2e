"""Google's speech_embedding network as a feature frontend, run from the ONNX files that the
``openwakeword==0.5.1`` wheel ships (no download; the files are found in the installed package
and checked against pinned sha256 hashes, so an altered or missing file is a clear error).

The files are used by path; openwakeword's own code (and its tflite runtime) is not imported.

Pipeline (as openwakeword computes it, which reproduces the TF-Hub model): 16 kHz samples
scaled to int16 range -> ``melspectrogram.onnx`` (32 mel bands, 10 ms hop) -> x / 10 + 2 ->
windows of 76 mel frames (0.76 s of context) every 8 frames -> ``embedding_model.onnx`` ->
one 96-d embedding every 80 ms (12.5 frames per second).

The embedding network is convolutional along time with no padding there, and its pools stride
8 frames in all, so one pass over a whole run of mel frames gives the embedding of every window
of 76 frames starting on a multiple of 8: the same numbers as window by window (tested to be
equal), at a fraction of the cost (consecutive windows share 68 of their 76 frames).
``sliding_graph`` rewrites the wheel's graph in memory to take any number of frames. The network was trained by Google on a
large amount of speech; openwakeword's README puts the bundled models under CC BY-NC-SA 4.0.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import MEL_HOP_LENGTH, N_FFT, SAMPLE_RATE
from ser_studio.model.features import wheel_files

log = logging.getLogger(__name__)

PACKAGE = "openwakeword"
PACKAGE_PIN = "openwakeword==0.5.1"
MODEL_FILES = {  # file -> sha256 of the copy in the openwakeword 0.5.1 wheel
    "melspectrogram.onnx": "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f",
    "embedding_model.onnx": "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f",
}
EMBEDDING_DIM = 96
CONTEXT_FRAMES = 76  # mel frames seen by one embedding (0.76 s)
STEP_FRAMES = 8  # mel frames between embeddings (80 ms)
MEL_FRAME_RATE = 100.0
# samples one embedding reads: the mel model gives (N - 400) // 160 frames, so CONTEXT_FRAMES
# of them need 76 * 160 + 400 = 12560 (0.785 s)
CONTEXT_SAMPLES = CONTEXT_FRAMES * MEL_HOP_LENGTH + N_FFT
FRAME_RATE = MEL_FRAME_RATE / STEP_FRAMES  # 12.5 embeddings per second
INT16_SCALE = 32767.0
# samples the mel model needs for CONTEXT_FRAMES frames (frames = (N - 400) // 160 + 1 ... 2)
MIN_SAMPLES = int(0.775 * SAMPLE_RATE) + 480


MODELS_DIR = "resources/models"
# Embeddings per pass of the sliding graph: its memory grows with the frames of a call, so a
# long input goes through in pieces of this many embeddings (~10 s), overlapping by 68 frames.
EMBED_PIECE = 128


def checked_file(name: str) -> Path:
    """Path of one bundled model file, verified against its pinned sha256."""
    return wheel_files.checked_file(PACKAGE, f"{MODELS_DIR}/{name}", MODEL_FILES[name],
                                    PACKAGE_PIN)


def sliding_graph(path: Path) -> bytes:
    """The embedding graph at ``path`` (input (B, 76, 32, 1) -> (B, 1, 1, 96)) rewritten to run
    over any number of mel frames: input (1, T, 32, 1) -> (1, 96, (T - 76) // 8 + 1, 1), the
    embedding of each window of 76 frames every 8 (see the module docstring)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    first, last = graph.node[0], graph.node[-1]
    if first.op_type != "Reshape" or last.op_type != "Reshape":
        raise ValueError(f"{path}: not the embedding graph this frontend rewrites")
    for init in graph.initializer:  # (B, 76, 32, 1) -> (1, 1, T, 32): the time axis free
        if init.name == first.input[1]:
            init.CopyFrom(numpy_helper.from_array(
                np.array([1, 1, -1, 32], dtype=np.int64), init.name))
    graph.node.remove(last)  # keep the last convolution's (1, 96, T', 1) maps
    graph.initializer.remove(next(i for i in graph.initializer if i.name == last.input[1]))
    del graph.output[:], graph.value_info[:]
    graph.output.append(helper.make_tensor_value_info(last.input[0], onnx.TensorProto.FLOAT,
                                                      None))
    graph.input[0].CopyFrom(helper.make_tensor_value_info(
        graph.input[0].name, onnx.TensorProto.FLOAT, [1, "frames", 32, 1]))
    return model.SerializeToString()


class SpeechEmbeddingFrontend:
    """(N,) float32 at 16 kHz -> (T, 96) float32 speech_embedding frames at 12.5 Hz,
    T = max(1, (mel frames - 76) // 8 + 1); shorter inputs are zero-padded to one window."""

    def __init__(self, cfg: FrontendConfig | None = None):
        self.config = cfg or FrontendConfig(name="speech_embedding")
        if self.config.name != "speech_embedding":
            raise ValueError(f"SpeechEmbeddingFrontend needs a speech_embedding config, got "
                             f"{self.config.name!r}")
        self.dim, self.layers, self.frame_rate = EMBEDDING_DIM, 1, FRAME_RATE
        self.frame_span = (0, CONTEXT_SAMPLES)  # embedding k reads [1280 k, 1280 k + 12560)
        from ser_studio.model.onnx.session import session

        self._mel = session(checked_file("melspectrogram.onnx"))
        embedding = checked_file("embedding_model.onnx")
        self._embed = session(embedding, graph=sliding_graph(embedding))

    def fingerprint(self) -> str:
        from ser_studio.model.features.base import digest

        return digest({"name": "speech_embedding", "files": MODEL_FILES, "version": 1,
                       "context": CONTEXT_FRAMES, "step": STEP_FRAMES})

    def mel(self, wav: np.ndarray) -> np.ndarray:
        """(N,) float -> (T_mel, 32) transformed mel frames (N padded to MIN_SAMPLES)."""
        from ser_studio.model.features.base import as_waveform

        samples = as_waveform(wav).numpy()
        if samples.shape[0] < MIN_SAMPLES:
            samples = np.pad(samples, (0, MIN_SAMPLES - samples.shape[0]))
        # int16 PCM values, as openwakeword feeds the model
        pcm = np.clip(samples * INT16_SCALE, -32768, 32767).astype(np.int16)
        scaled = pcm.astype(np.float32)[None, :]
        spec = np.squeeze(self._mel.run(None, {"input": scaled})[0], axis=(1,))[0]
        return (spec / 10.0 + 2.0).astype(np.float32)

    def __call__(self, wav: np.ndarray) -> torch.Tensor:
        """(N,) -> (T, 96) float32, one embedding per 80 ms of 0.76 s context."""
        return self.embed(self.mel(wav))

    def embed(self, spec: np.ndarray) -> torch.Tensor:
        """Mel frames (T_mel >= 76, 32) -> embeddings (T, 96) of their windows of 76 frames
        every 8, T = (T_mel - 76) // 8 + 1, through the sliding graph in pieces."""
        count = (spec.shape[0] - CONTEXT_FRAMES) // STEP_FRAMES + 1
        out = []
        for first in range(0, count, EMBED_PIECE):
            n = min(EMBED_PIECE, count - first)
            piece = spec[first * STEP_FRAMES:(first + n - 1) * STEP_FRAMES + CONTEXT_FRAMES]
            (maps,) = self._embed.run(None, {"input_1": np.ascontiguousarray(
                piece[None, :, :, None], dtype=np.float32)})
            out.append(maps[0, :, :n, 0].T)  # (96, n', 1) channels first -> (n, 96)
        return torch.from_numpy(np.ascontiguousarray(np.concatenate(out), dtype=np.float32))

    def batch(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        return [self(wav) for wav in wavs]

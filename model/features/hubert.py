"""Frozen Hugging Face speech encoder frontend (HuBERT, wav2vec 2.0, WavLM, ...).

The encoder comes from a local folder (anything ``save_pretrained`` wrote) or a hub id. A hub id
already in the local Hugging Face cache is used as it is, with no network access and no update
check; otherwise it is downloaded, but only after a short reachability probe, so an offline
machine fails in seconds (not after the hub client's retries) with FrontendUnavailable.

Input normalisation follows the encoder's feature extractor (``preprocessor_config.json``): when
it says ``do_normalize`` the waveform is scaled to zero mean, unit variance over the whole
utterance. Without that file the encoder's own config decides: models with layer-norm
convolutions (``feat_extract_norm == "layer"``, the "large" family) were trained on normalised
input, group-norm ones (the "base" family, e.g. facebook/hubert-base-ls960) on raw input.

Long signals are encoded in chunks of CHUNK_SECONDS so memory stays bounded (self-attention is
quadratic in frames). Chunks are cut so their convolutional frames coincide with those of the
whole signal: the frame count and positions are exactly the unchunked ones; only the
transformer's context is limited to the chunk.
"""
from __future__ import annotations

import logging
import math
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from safetensors import SafetensorError

from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import DEFAULT_ENCODER, SAMPLE_RATE
from ser_studio.model.features.base import FrontendUnavailable, as_waveform, digest
from ser_studio.model.files import file_sha1

log = logging.getLogger(__name__)

HF_FRONTEND_VERSION = 1  # bump when the feature computation below changes
CHUNK_SECONDS = 30.0
PROBE_TIMEOUT_S = 3.0
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, SafetensorError)
_IDENTITY_FILES = ("config.json", "preprocessor_config.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def looks_like_folder(encoder: str) -> bool:
    """True when ``encoder`` names a local folder rather than a hub id ("org/name").

    An existing directory is a folder; so is anything written as a path (absolute, ``./``,
    ``../``, ``~``, a Windows drive, or more than one ``/``), which must then exist.
    """
    path = Path(encoder).expanduser()
    if path.is_dir():
        return True
    return (encoder.startswith(("/", "./", "../", "~", "\\")) or encoder.count("/") > 1
            or (len(encoder) > 1 and encoder[1] == ":"))


def unavailable(encoder: str, tried: list[str]) -> FrontendUnavailable:
    """The error for weights that cannot be had: what was tried, and the offline alternatives."""
    hub_id = DEFAULT_ENCODER if looks_like_folder(encoder) else encoder
    return FrontendUnavailable(
        f"could not load the speech encoder weights {encoder!r}; tried: " + "; ".join(tried)
        + ". Offline alternatives: use the log-mel frontend, which needs no download "
        "('--frontend logmel'), or put the encoder in a local folder (on a machine with "
        f"network: `hf download {hub_id} --local-dir /path/to/folder`, or save_pretrained) and "
        "use '--frontend hubert:/path/to/folder'."
    )


def hub_offline() -> bool:
    """True when the environment asks the Hugging Face libraries to stay offline."""
    flags = (os.environ.get(name, "") for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags)


def hub_unreachable_reason(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the hub endpoint accepts a TCP connection within ``timeout`` s, else why not.

    Skipped (None) behind a proxy, where only the HTTP client knows the way out.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    outcome: dict[str, str] = {}

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome["ok"] = ""
        except OSError as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=probe, daemon=True)  # bounds a slow DNS lookup too
    thread.start()
    thread.join(timeout + 1.0)
    if "ok" in outcome:
        return None
    return f"{host}:{port} unreachable ({outcome.get('error', f'no answer in {timeout:.0f} s')})"


def _from_pretrained(source: str, local_only: bool) -> torch.nn.Module:
    from transformers import AutoModel

    return AutoModel.from_pretrained(source, local_files_only=local_only)


def load_encoder(encoder: str) -> tuple[torch.nn.Module, Path, bool]:
    """Load the encoder weights; returns (model, folder its files are in, network_used).

    Raises FrontendUnavailable naming everything tried when the weights cannot be had.
    """
    if looks_like_folder(encoder):
        folder = Path(encoder).expanduser()
        if not folder.is_dir():
            raise unavailable(encoder, [f"local folder {folder} (does not exist)"])
        try:
            return _from_pretrained(str(folder), local_only=True), folder.resolve(), False
        except _LOAD_ERRORS as exc:
            raise unavailable(encoder, [f"local folder {folder} ({_short(exc)})"]) from exc
    tried = []
    try:
        model = _from_pretrained(encoder, local_only=True)
        return model, _snapshot_folder(encoder), False
    except _LOAD_ERRORS:
        tried.append("the local Hugging Face cache (not there, or incomplete)")
    if hub_offline():
        tried.append("the Hugging Face hub (not contacted: HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE set)")
        raise unavailable(encoder, tried)
    reason = hub_unreachable_reason()
    if reason:
        tried.append(f"the Hugging Face hub ({reason})")
        raise unavailable(encoder, tried)
    try:
        model = _from_pretrained(encoder, local_only=False)
    except _LOAD_ERRORS as exc:
        tried.append(f"the Hugging Face hub ({_short(exc)})")
        raise unavailable(encoder, tried) from exc
    return model, _snapshot_folder(encoder), True


def _short(exc: BaseException) -> str:
    """First line of an exception message, for a compact 'tried' list."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _snapshot_folder(hub_id: str) -> Path:
    """The local cache folder (snapshots/<commit>) holding a loaded hub model's files."""
    from transformers.utils import cached_file

    return Path(cached_file(hub_id, "config.json", local_files_only=True)).parent


def folder_identity(folder: Path) -> dict[str, str]:
    """Content hashes of the files that define an encoder: configs and weights (by name)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and (
        p.name in _IDENTITY_FILES or p.name.endswith(_WEIGHT_SUFFIXES)))
    return {p.name: file_sha1(p) for p in files}


def wants_normalised_input(encoder: str, model: torch.nn.Module, local_only: bool) -> bool:
    """Whether the encoder expects zero-mean unit-variance input (see the module docstring)."""
    from transformers import AutoFeatureExtractor

    source = encoder if not looks_like_folder(encoder) else str(Path(encoder).expanduser())
    try:
        extractor = AutoFeatureExtractor.from_pretrained(source, local_files_only=local_only)
    except _LOAD_ERRORS:
        norm = getattr(model.config, "feat_extract_norm", "group")
        log.info("%s: no feature extractor config; feat_extract_norm=%s -> do_normalize=%s",
                 encoder, norm, norm == "layer")
        return norm == "layer"
    rate = getattr(extractor, "sampling_rate", SAMPLE_RATE)
    if rate != SAMPLE_RATE:
        raise ValueError(f"encoder {encoder!r} expects {rate} Hz audio; this project uses "
                         f"{SAMPLE_RATE} Hz")
    return bool(getattr(extractor, "do_normalize", False))


def conv_geometry(config) -> tuple[int, int]:
    """(stride, receptive field) in samples of one frame of the convolutional feature encoder."""
    kernels, strides = getattr(config, "conv_kernel", None), getattr(config, "conv_stride", None)
    if not kernels or not strides:
        raise ValueError(f"{type(config).__name__} has no conv_kernel/conv_stride: not a "
                         "waveform speech encoder of the wav2vec 2.0 family")
    receptive, jump = 1, 1
    for kernel, stride in zip(kernels, strides):
        receptive += (kernel - 1) * jump
        jump *= stride
    return jump, receptive


def chunk_spans(n_samples: int, stride: int, receptive: int, hop: int) -> list[tuple[int, int]]:
    """(start, end) sample spans, ``hop`` apart (a multiple of ``stride``), whose frames are
    exactly the frames of the whole signal: frame i covers [i*stride, i*stride + receptive)."""
    overlap = receptive - stride
    if n_samples <= hop + overlap:
        return [(0, n_samples)]
    spans = []
    for start in range(0, n_samples, hop):
        end = min(start + hop + overlap, n_samples)
        if end - start < receptive:
            break  # no complete frame left; the whole signal has none there either
        spans.append((start, end))
    return spans


class HFEncoderFrontend:
    """A frozen Hugging Face speech encoder as a frontend.

    (N,) float32 at 16 kHz -> (T, D) last hidden layer (layer_mode "last"), or (L, T, D) all
    hidden states, L = num_hidden_layers + 1 (layer_mode "weighted"; the network learns the
    softmax weights). T = floor((N - receptive) / stride) + 1 (HuBERT base: receptive 400,
    stride 320 samples, 50 frames per second). Raises FrontendUnavailable when the weights
    cannot be had.
    """

    def __init__(self, cfg: FrontendConfig):
        if cfg.name != "hubert":
            raise ValueError(f"HFEncoderFrontend needs a hubert config, got {cfg.name!r}")
        self.config = cfg
        model, self.folder, used_network = load_encoder(cfg.encoder)
        if getattr(model, "main_input_name", "") != "input_values":
            raise ValueError(f"encoder {cfg.encoder!r} ({type(model).__name__}) does not take "
                             "raw waveforms (input_values); choose a speech encoder")
        self.model = model.eval().requires_grad_(False)
        self.stride, self.receptive = conv_geometry(model.config)
        self.do_normalize = wants_normalised_input(cfg.encoder, model, not used_network)
        self.dim = int(model.config.hidden_size)
        self.layers = int(model.config.num_hidden_layers) + 1 if cfg.layer_mode == "weighted" else 1
        self.frame_rate = SAMPLE_RATE / self.stride
        chunk_frames = int(CHUNK_SECONDS * self.frame_rate)
        self.chunk_hop = chunk_frames * self.stride
        self._fingerprint: str | None = None
        log.info("encoder %s loaded from %s (D=%d, L=%d, %.0f fps, normalise=%s)", cfg.encoder,
                 self.folder, self.dim, self.layers, self.frame_rate, self.do_normalize)

    @property
    def frame_span(self) -> tuple[int, int]:
        """Frame i reads samples [i * stride, i * stride + receptive) (model.features.base)."""
        return 0, self.receptive

    def fingerprint(self) -> str:
        """Digest of settings and the encoder's identity: content hashes of its config and
        weight files (plus hub id and commit for a hub model), computed once."""
        if self._fingerprint is None:
            identity: dict = {"files": folder_identity(self.folder)}
            if not looks_like_folder(self.config.encoder):
                identity.update(hub_id=self.config.encoder, revision=self.folder.name)
            self._fingerprint = digest({
                "name": "hubert", "version": HF_FRONTEND_VERSION, "encoder": identity,
                "layer_mode": self.config.layer_mode, "do_normalize": self.do_normalize,
                "chunk_hop": self.chunk_hop, "sample_rate": SAMPLE_RATE,
            })
        return self._fingerprint

    def __call__(self, wav: np.ndarray) -> torch.Tensor:
        """(N,) float32 at 16 kHz -> (T, D) or (L, T, D) float32 (see the class docstring)."""
        signal = as_waveform(wav)
        if self.do_normalize:
            signal = (signal - signal.mean()) / torch.sqrt(signal.var(unbiased=False) + 1e-7)
        if signal.shape[0] < self.receptive:  # too short for one frame: pad to exactly one
            signal = torch.nn.functional.pad(signal, (0, self.receptive - signal.shape[0]))
        spans = chunk_spans(signal.shape[0], self.stride, self.receptive, self.chunk_hop)
        with torch.inference_mode():
            parts = [self._encode(signal[start:end]) for start, end in spans]
            feats = torch.cat(parts, dim=-2)
        return feats.clone()  # an ordinary tensor, usable in autograd later

    def _encode(self, chunk: torch.Tensor) -> torch.Tensor:
        """(n,) -> (T, D) or (L, T, D); call under inference_mode."""
        weighted = self.layers > 1
        out = self.model(chunk[None, :], output_hidden_states=weighted)
        if weighted:
            return torch.stack(out.hidden_states, dim=0)[:, 0].float()
        return out.last_hidden_state[0].float()

    def batch(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """Per-item features. Not padded into one batch: group-norm encoders (HuBERT base) take
        no attention mask, so padding would change the features of the shorter signals."""
        return [self(wav) for wav in wavs]

    def expected_frames(self, n_samples: int) -> int:
        """T for a signal of ``n_samples`` samples."""
        return max(1, math.floor((n_samples - self.receptive) / self.stride) + 1)

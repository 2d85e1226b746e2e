"""A GE2E speaker encoder's hidden states as a feature frontend, from the ``pretrained.pt`` that
the ``resemblyzer==0.1.4`` wheel ships (Apache-2.0; no download). The file is found in the
installed package without importing it, checked against a pinned sha256, and read with
``torch.load(weights_only=True)`` (tensors only, nothing executed).

The encoder (Wan et al. 2018, as resemblyzer trained it): 40 mel bands of power (25 ms window,
10 ms hop, librosa's Slaney mel scale, as resemblyzer computes them), then a 3-layer LSTM of
256 units. The frontend returns the last layer's output at every frame, (T, 256) at 100 frames
per second: a representation of voice quality and prosody learned from thousands of speakers.
The speaker-embedding head (linear + ReLU) is not used.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from model import wheel_files
from model.config import FrontendConfig
from model.constants import MEL_HOP_LENGTH, N_FFT, SAMPLE_RATE

PACKAGE = "resemblyzer"
PACKAGE_PIN = "resemblyzer==0.1.4"
WEIGHTS = "pretrained.pt"
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
N_MELS = 40
HIDDEN = 256
LAYERS = 3
FRAME_RATE = SAMPLE_RATE / MEL_HOP_LENGTH  # 100 frames per second


def ge2e_mel(wav: np.ndarray) -> np.ndarray:
    """(N,) float32 at 16 kHz -> (T, 40) mel power frames, T = 1 + N // 160 (resemblyzer's
    ``wav_to_mel_spectrogram``)."""
    import librosa

    frames = librosa.feature.melspectrogram(y=np.asarray(wav, dtype=np.float32), sr=SAMPLE_RATE,
                                            n_fft=N_FFT, hop_length=MEL_HOP_LENGTH,
                                            n_mels=N_MELS)
    return frames.astype(np.float32).T


class GE2EFrontend:
    """(N,) float32 at 16 kHz -> (T, 256) float32 LSTM states at 100 Hz, T = 1 + N // 160."""

    def __init__(self, cfg: FrontendConfig | None = None):
        self.config = cfg or FrontendConfig(name="ge2e")
        if self.config.name != "ge2e":
            raise ValueError(f"GE2EFrontend needs a ge2e config, got {self.config.name!r}")
        self.dim, self.layers, self.frame_rate = HIDDEN, 1, FRAME_RATE
        path = wheel_files.checked_file(PACKAGE, WEIGHTS, WEIGHTS_SHA256, PACKAGE_PIN)
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.lstm.load_state_dict({k.removeprefix("lstm."): v for k, v in state.items()
                                   if k.startswith("lstm.")})
        self.lstm.eval().requires_grad_(False)
        self.torch_lstm = self.lstm  # ``lstm`` may run on onnxruntime (use_onnxruntime)

    def use_onnxruntime(self, threads: int = 1) -> None:
        """Run the LSTM on onnxruntime (model.onnx_cache: same outputs within 1e-4, ~0.85x
        of torch's CPU time); OnnxError, and torch stays, when it cannot."""
        from model.onnx_cache import lstm_on_onnxruntime

        self.lstm = lstm_on_onnxruntime(self.torch_lstm, f"ge2e-{WEIGHTS_SHA256[:16]}", threads)

    def fingerprint(self) -> str:
        from model.features import digest

        return digest({"name": "ge2e", "weights": WEIGHTS_SHA256, "version": 1,
                       "n_mels": N_MELS, "output": "lstm_last_layer"})

    def __call__(self, wav: np.ndarray) -> torch.Tensor:
        """(N,) -> (T, 256) float32 last-layer LSTM outputs (``lstm`` called as nn.LSTM is:
        ``lstm(x (1, T, 40)) -> (outputs (1, T, 256), states)``)."""
        from model.features import as_waveform

        mel = torch.from_numpy(ge2e_mel(as_waveform(wav).numpy()))
        with torch.inference_mode():
            states, _ = self.lstm(mel[None])
        return states[0].clone()

    def batch(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        return [self(wav) for wav in wavs]

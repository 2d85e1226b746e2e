"""A GE2E speaker encoder's hidden states as a feature frontend, from the ``pretrained.pt`` that
the ``resemblyzer==0.1.4`` wheel ships (Apache-2.0; no download). The file is found in the
installed package without importing it, checked against a pinned sha256, and read with
``torch.load(weights_only=True)`` (tensors only, nothing executed).

The encoder (Wan et al. 2018, as resemblyzer trained it): 40 mel bands of power (25 ms window,
10 ms hop, Slaney's mel scale, as resemblyzer computes them with librosa), then a 3-layer LSTM of
256 units. The frontend returns the last layer's output at every frame, (T, 256) at 100 frames
per second: a representation of voice quality and prosody learned from thousands of speakers.
The speaker-embedding head (linear + ReLU) is not used.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import MEL_HOP_LENGTH, N_FFT, SAMPLE_RATE
from ser_studio.model.features import wheel_files
from ser_studio.model.features.slaney import mel_filters

PACKAGE = "resemblyzer"
PACKAGE_PIN = "resemblyzer==0.1.4"
WEIGHTS = "pretrained.pt"
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
N_MELS = 40
HIDDEN = 256
LAYERS = 3
FRAME_RATE = SAMPLE_RATE / MEL_HOP_LENGTH  # 100 frames per second


_FILTERS = torch.from_numpy(mel_filters(N_MELS))
_WINDOW = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)


def ge2e_mel(wav: np.ndarray) -> np.ndarray:
    """(N,) float32 at 16 kHz -> (T, 40) mel power frames, T = 1 + N // 160: resemblyzer's
    ``wav_to_mel_spectrogram`` (librosa.feature.melspectrogram: a centred, zero-padded STFT
    of 400 points with a periodic Hann window every 160 samples, power, mel_filters), here
    with torch.stft: the same frames within float32 rounding, without librosa's numba and the
    memory it holds (bench/results/docstring-history.md)."""
    x = torch.from_numpy(np.asarray(wav, dtype=np.float64))
    spec = torch.stft(x, N_FFT, MEL_HOP_LENGTH, window=_WINDOW, center=True,
                      pad_mode="constant", return_complex=True)
    power = (spec.real ** 2 + spec.imag ** 2).float()            # (201, T)
    return (_FILTERS @ power).T.contiguous().numpy()


class GE2EFrontend:
    """(N,) float32 at 16 kHz -> (T, 256) float32 LSTM states at 100 Hz, T = 1 + N // 160."""

    def __init__(self, cfg: FrontendConfig | None = None):
        self.config = cfg or FrontendConfig(name="ge2e")
        if self.config.name != "ge2e":
            raise ValueError(f"GE2EFrontend needs a ge2e config, got {self.config.name!r}")
        self.dim, self.layers, self.frame_rate = HIDDEN, 1, FRAME_RATE
        # frame m's own audio: its mel frame, the 25 ms centred on sample 160 m (the LSTM state
        # also carries what came before)
        self.frame_span = (-(N_FFT // 2), N_FFT // 2)
        path = wheel_files.checked_file(PACKAGE, WEIGHTS, WEIGHTS_SHA256, PACKAGE_PIN)
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.lstm.load_state_dict({k.removeprefix("lstm."): v for k, v in state.items()
                                   if k.startswith("lstm.")})
        self.lstm.eval().requires_grad_(False)
        self.torch_lstm = self.lstm  # ``lstm`` may run on onnxruntime (use_onnxruntime)

    def use_onnxruntime(self, threads: int = 1) -> None:
        """Run the LSTM on onnxruntime (model.onnx.cache: same outputs within 1e-4, less CPU
        time than torch); OnnxError, and torch stays, when it cannot."""
        from ser_studio.model.onnx.cache import lstm_on_onnxruntime

        self.lstm = lstm_on_onnxruntime(self.torch_lstm, f"ge2e-{WEIGHTS_SHA256[:16]}", threads)

    def fingerprint(self) -> str:
        from ser_studio.model.features.base import digest

        return digest({"name": "ge2e", "weights": WEIGHTS_SHA256, "version": 1,
                       "n_mels": N_MELS, "output": "lstm_last_layer"})

    def __call__(self, wav: np.ndarray) -> torch.Tensor:
        """(N,) -> (T, 256) float32 last-layer LSTM outputs (``lstm`` called as nn.LSTM is:
        ``lstm(x (1, T, 40)) -> (outputs (1, T, 256), states)``)."""
        from ser_studio.model.features.base import as_waveform

        mel = torch.from_numpy(ge2e_mel(as_waveform(wav).numpy()))
        with torch.inference_mode():
            states, _ = self.lstm(mel[None])
        return states[0].clone()

    def batch(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        return [self(wav) for wav in wavs]

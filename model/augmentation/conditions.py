"""The robustness benchmark's recording conditions: fixed, deterministic versions of what a
user's microphone, room, phone or editor does to speech (primitives in model.augmentation.channel).

``render(name, wav, seed=..., others=...)`` gives the same samples every time for the same
inputs. ``others`` are waveforms of other speakers for the babble condition (the benchmark
takes them from the same test fold, never from training speakers). The room is one simulated
room (RT60 0.6 s, fixed seed) that is not in the training augmentation's bank. The DC offset
(+0.05 of full scale) and the mains hum (50 Hz and harmonics, 20 dB below the speech) are what
cheap microphones and ground loops add.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from ser_studio.model.augmentation import channel

ROOM_SEED = 7  # model.augmentation.channel.RIR_BANK_SEED draws training rooms from another seed
BABBLE_TALKERS = 4


@functools.lru_cache(maxsize=1)
def benchmark_room() -> np.ndarray:
    """The benchmark's room impulse response (RT60 0.6 s)."""
    return channel.room_impulse_response(np.random.default_rng(ROOM_SEED), rt60_range=(0.6, 0.6))


def _white(wav: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    return channel.mix_at_snr(wav, channel.color_noise(len(wav), "white", rng), snr_db)


def _babble(wav: np.ndarray, snr_db: float, rng: np.random.Generator,
            others: Sequence[np.ndarray]) -> np.ndarray:
    if not others:
        raise ValueError("the babble condition needs waveforms of other speakers")
    picks = rng.choice(len(others), size=min(BABBLE_TALKERS, len(others)), replace=False)
    noise = channel.babble([others[i] for i in picks], len(wav), rng)
    return channel.mix_at_snr(wav, noise, snr_db)


Render = Callable[[np.ndarray, np.random.Generator, Sequence[np.ndarray]], np.ndarray]

CONDITIONS: dict[str, Render] = {
    "as recorded": lambda w, r, o: np.asarray(w, dtype=np.float32),
    "gain -12 dB": lambda w, r, o: channel.gain(w, -12.0),
    "gain +12 dB, limiter": lambda w, r, o: channel.limit(w, 12.0),
    "peak-normalised -3 dBFS": lambda w, r, o: channel.peak_normalise(w, -3.0),
    "RMS-normalised -26 dBFS": lambda w, r, o: channel.rms_normalise(w, -26.0),
    "white noise 20 dB SNR": lambda w, r, o: _white(w, 20.0, r),
    "white noise 10 dB SNR": lambda w, r, o: _white(w, 10.0, r),
    "babble 10 dB SNR": lambda w, r, o: _babble(w, 10.0, r, o),
    "reverberation (RT60 0.6 s)": lambda w, r, o: channel.reverberate(w, benchmark_room()),
    "telephone band": lambda w, r, o: channel.telephone(w),
    "low-pass 4 kHz": lambda w, r, o: channel.lowpass(w, 4000.0),
    "mp3 32 kbit/s": lambda w, r, o: channel.mp3(w, 32),
    "hard clipping after +20 dB": lambda w, r, o: channel.hard_clip(w, 20.0),
    "DC offset +0.05": lambda w, r, o: channel.dc_offset(w, 0.05),
    "mains hum 50 Hz 20 dB SNR": lambda w, r, o: channel.mix_at_snr(
        w, channel.mains_hum(len(w)), 20.0),
}


def render(name: str, wav: np.ndarray, *, seed: int = 0,
           others: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Condition ``name`` applied to ``wav`` (N,) -> (N,) float32; deterministic in ``seed``."""
    if name not in CONDITIONS:
        raise ValueError(f"condition {name!r} not known; available = {list(CONDITIONS)}")
    rng = np.random.default_rng(seed)
    with channel.global_seed(rng):
        return CONDITIONS[name](wav, rng, others)

"""Recording chains on waveforms: what a microphone, a room, a phone line or an encoder does to
speech. The primitives are shared by the training augmentation (``ChannelAugmenter``, random
parameters) and the robustness benchmark (model.augmentation.conditions, fixed parameters), so the
two describe a condition the same way.

Every function takes and returns a mono float32 waveform (N,) at SAMPLE_RATE; the output has
the input's length. Filters, codec and limiter are audiomentations' (the codec through its
fast-mp3-augment backend); rooms are pyroomacoustics shoebox simulations. Randomness comes only
from the ``numpy.random.Generator`` passed in: audiomentations draws from numpy's global state
internally, so those calls run under ``global_seed``, which restores the state afterwards.
"""
from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable, Sequence

import numpy as np

from ser_studio.model.config.schema import ChannelConfig
from ser_studio.model.constants import SAMPLE_RATE

TELEPHONE_RATE = 8_000
TELEPHONE_BAND = (300.0, 3400.0)
NOISE_DECAY = {"white": 0.0, "pink": -3.01, "brown": -6.02}  # dB per octave
RIR_BANK_SIZE = 48  # rooms training draws from
RIR_BANK_SEED = 20_240  # not the benchmark's room (model.augmentation.conditions)
_EPS = 1e-12


@contextlib.contextmanager
def global_seed(rng: np.random.Generator):
    """Seed numpy's and Python's global RNGs from ``rng`` for the block, then restore them."""
    np_state, py_state = np.random.get_state(), random.getstate()
    seed = int(rng.integers(0, 2**32 - 1))
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def _f32(wav: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(wav, dtype=np.float32)


def rms(wav: np.ndarray) -> float:
    """Root mean square of the samples (0 for an empty signal)."""
    return float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0


def gain(wav: np.ndarray, db: float) -> np.ndarray:
    """``wav`` made ``db`` dB louder (negative: quieter); no clipping."""
    return _f32(wav * 10.0 ** (db / 20.0))


def peak_normalise(wav: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale so the largest sample magnitude is ``peak_dbfs`` dBFS (silence stays silence)."""
    peak = float(np.max(np.abs(wav)))
    return _f32(wav) if peak == 0 else gain(wav, peak_dbfs - 20 * np.log10(peak))


def rms_normalise(wav: np.ndarray, rms_dbfs: float) -> np.ndarray:
    """Scale so the RMS over the whole signal is ``rms_dbfs`` dBFS (silence stays silence)."""
    level = rms(wav)
    return _f32(wav) if level == 0 else gain(wav, rms_dbfs - 20 * np.log10(level))


def hard_clip(wav: np.ndarray, db: float) -> np.ndarray:
    """``db`` dB of gain, then every sample clipped to [-1, 1] (an overdriven input)."""
    return _f32(np.clip(gain(wav, db), -1.0, 1.0))


def limit(wav: np.ndarray, db: float, threshold_dbfs: float = -1.0) -> np.ndarray:
    """``db`` dB of gain through a peak limiter at ``threshold_dbfs`` (audiomentations),
    then clipped to [-1, 1] as a recorder would store it."""
    from audiomentations import Limiter

    limiter = Limiter(min_threshold_db=threshold_dbfs, max_threshold_db=threshold_dbfs,
                      min_attack=0.001, max_attack=0.001, min_release=0.1, max_release=0.1,
                      threshold_mode="absolute", p=1.0)
    return _f32(np.clip(limiter(gain(wav, db), sample_rate=SAMPLE_RATE), -1.0, 1.0))


def dc_offset(wav: np.ndarray, offset: float) -> np.ndarray:
    """``wav`` shifted by a constant ``offset`` (full scale 1), as a cheap converter records."""
    return _f32(np.asarray(wav, dtype=np.float64) + offset)


def mains_hum(n: int, hz: float = 50.0, harmonics: int = 7) -> np.ndarray:
    """(n,) mains hum: ``hz`` and its harmonics up to ``harmonics`` x, harmonic k at 1/k of
    the fundamental's amplitude (a ground loop's buzz), unit RMS."""
    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2.0 * np.pi * hz * k * t) / k for k in range(1, harmonics + 1))
    return _f32(hum / max(rms(hum), _EPS))


def mix_at_snr(wav: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wav`` plus ``noise`` (same length) scaled so that rms(wav) / rms(noise) is ``snr_db``."""
    scale = rms(wav) / (max(rms(noise), _EPS) * 10.0 ** (snr_db / 20.0))
    return _f32(wav + scale * noise)


def color_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """(n,) gaussian noise with a white, pink or brown spectrum, unit RMS."""
    if kind not in NOISE_DECAY:
        raise ValueError(f"noise kind {kind!r}; available = {list(NOISE_DECAY)}")
    from scipy.fft import irfft, next_fast_len, rfft, rfftfreq

    size = next_fast_len(n, real=True)
    spectrum = rfft(rng.standard_normal(size))
    octaves = np.log2(np.maximum(rfftfreq(size, 1.0 / SAMPLE_RATE), 20.0) / 20.0)
    spectrum *= 10.0 ** (NOISE_DECAY[kind] * octaves / 20.0)
    noise = irfft(spectrum, size)[:n]
    return _f32(noise / max(rms(noise), _EPS))


def babble(sources: Sequence[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) babble: each source looped to n samples from a random offset, brought to unit RMS,
    summed; the mix has unit RMS. Sources are other people's speech."""
    if not sources:
        raise ValueError("babble needs at least one source")
    mix = np.zeros(n, dtype=np.float64)
    for src in sources:
        src = np.asarray(src, dtype=np.float64)
        start = int(rng.integers(0, len(src)))
        looped = np.resize(np.roll(src, -start), n)
        mix += looped / max(rms(looped), _EPS)
    return _f32(mix / max(rms(mix), _EPS))


def room_impulse_response(rng: np.random.Generator, rt60_range=(0.2, 0.9)) -> np.ndarray:
    """A shoebox room impulse response (pyroomacoustics image method) of a random room 3-10 m
    wide with a random reverberation time, source and microphone 0.5-3 m apart; unit peak."""
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.4, 4)])
    rt60 = float(rng.uniform(*rt60_range))
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # the room is too large for that reverberation time: more absorption
        absorption, max_order = 0.9, 3
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption),
                       max_order=min(int(max_order), 12))
    mic = dims * rng.uniform(0.2, 0.8, 3)
    direction = rng.standard_normal(3)
    source = mic + direction / np.linalg.norm(direction) * rng.uniform(0.5, 3.0)
    room.add_source(np.clip(source, 0.2, dims - 0.2))
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    return _f32(rir / max(np.max(np.abs(rir)), _EPS))


@functools.lru_cache(maxsize=2)
def rir_bank(size: int = RIR_BANK_SIZE, seed: int = RIR_BANK_SEED) -> tuple[np.ndarray, ...]:
    """``size`` random rooms' impulse responses, made once per process (simulating a room costs
    far more than applying it); training draws from this bank."""
    rng = np.random.default_rng(seed)
    return tuple(room_impulse_response(rng) for _ in range(size))


def reverberate(wav: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``wav`` convolved with ``rir`` from its direct-path peak on (no added delay), truncated to
    the input length and brought back to the input's RMS."""
    from scipy.signal import fftconvolve

    rir = np.asarray(rir, dtype=np.float64)[int(np.argmax(np.abs(rir))):]
    wet = fftconvolve(np.asarray(wav, dtype=np.float64), rir)[: len(wav)]
    return _f32(wet * rms(wav) / max(rms(wet), _EPS))


def _filter(transform, wav: np.ndarray) -> np.ndarray:
    return _f32(transform(_f32(wav), sample_rate=SAMPLE_RATE))


def lowpass(wav: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """Low-pass at ``cutoff_hz`` (24 dB/octave, zero phase)."""
    from audiomentations import LowPassFilter

    return _filter(LowPassFilter(min_cutoff_freq=cutoff_hz, max_cutoff_freq=cutoff_hz,
                                 min_rolloff=24, max_rolloff=24, zero_phase=True, p=1.0), wav)


def telephone(wav: np.ndarray) -> np.ndarray:
    """A narrowband telephone line: 300-3400 Hz band-pass, sampled at 8 kHz and back."""
    import soxr
    from audiomentations import HighPassFilter

    low, high = TELEPHONE_BAND
    band = lowpass(wav, high)
    band = _filter(HighPassFilter(min_cutoff_freq=low, max_cutoff_freq=low, min_rolloff=24,
                                  max_rolloff=24, zero_phase=True, p=1.0), band)
    narrow = soxr.resample(band, SAMPLE_RATE, TELEPHONE_RATE)
    back = soxr.resample(narrow, TELEPHONE_RATE, SAMPLE_RATE)
    return _f32(np.resize(back, len(wav)) if len(back) != len(wav) else back)


def mp3(wav: np.ndarray, kbps: int) -> np.ndarray:
    """Encoded to MP3 at ``kbps`` kbit/s and decoded (audiomentations, fast-mp3-augment),
    aligned with the input."""
    from audiomentations import Mp3Compression

    codec = Mp3Compression(min_bitrate=int(kbps), max_bitrate=int(kbps),
                           backend="fast-mp3-augment", preserve_delay=False, p=1.0)
    out = _filter(codec, wav)
    return _f32(np.resize(out, len(wav)) if len(out) != len(wav) else out)


def eq_tilt(wav: np.ndarray, low_db: float, high_db: float) -> np.ndarray:
    """A microphone's colour: a low shelf at 250 Hz of ``low_db`` and a high shelf at 3 kHz of
    ``high_db`` dB (audiomentations shelving filters)."""
    from audiomentations import HighShelfFilter, LowShelfFilter

    wav = _filter(LowShelfFilter(min_center_freq=250, max_center_freq=250, min_gain_db=low_db,
                                 max_gain_db=low_db, min_q=0.7, max_q=0.7, p=1.0), wav)
    return _filter(HighShelfFilter(min_center_freq=3000, max_center_freq=3000,
                                   min_gain_db=high_db, max_gain_db=high_db, min_q=0.7,
                                   max_q=0.7, p=1.0), wav)


class ChannelAugmenter:
    """A random recording chain for training: room, then noise (coloured or babble), then the
    microphone's colour, then the level, then a band limit or a codec, then clipping. Each stage
    has its probability in ``ChannelConfig``; parameters are drawn from the generator passed to
    ``__call__``, so a (seed, file, variant) triple always gives the same audio.

    babble_sources: a function rng -> waveforms of other speakers to mix as babble (the caller,
    model.training.variants, draws them from training-side speakers only, never the utterance's
    own).
    """

    def __init__(self, cfg: ChannelConfig,
                 babble_sources: Callable[[np.random.Generator], list[np.ndarray]] | None = None):
        self.cfg = cfg
        self.babble_sources = babble_sources

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(N,) float32 -> (N,) float32 through one random chain."""
        cfg, wav = self.cfg, _f32(wav)
        if rng.random() < cfg.reverb_prob:
            bank = rir_bank()
            wav = reverberate(wav, bank[int(rng.integers(len(bank)))])
        if rng.random() < cfg.noise_prob:
            wav = mix_at_snr(wav, self._noise(len(wav), rng), rng.uniform(*cfg.snr_db))
        if rng.random() < cfg.eq_prob:
            wav = eq_tilt(wav, rng.uniform(-cfg.eq_db, cfg.eq_db),
                          rng.uniform(-cfg.eq_db, cfg.eq_db))
        wav = gain(wav, rng.uniform(*cfg.gain_db))
        if rng.random() < cfg.band_prob:
            wav = telephone(wav) if rng.random() < 0.5 else lowpass(wav, rng.uniform(2500, 6000))
        if rng.random() < cfg.codec_prob:
            with global_seed(rng):
                wav = mp3(wav, int(rng.choice([24, 32, 48, 64])))
        if rng.random() < cfg.clip_prob:
            wav = hard_clip(wav, rng.uniform(*cfg.clip_gain_db))
        return wav

    def _noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.babble_sources is not None and rng.random() < self.cfg.babble_share:
            sources = self.babble_sources(rng)
            if sources:
                return babble(sources, n, rng)
        return color_noise(n, str(rng.choice(list(NOISE_DECAY))), rng)

"""Speech for the synthetic corpus: per-emotion prosody on per-speaker voices, two engines.

- "espeak": espeak-ng speaks random words with the speaker's voice variant and the emotion's
  pitch, pitch range, rate and sentence intonation; the result is resampled to 16 kHz with soxr
  and given the emotion's voice quality (tense for angry, breathy and dark for sad).
- "tone": a harmonic voice source (jittered f0 with the emotion's level, range and contour)
  shaped by vowel formants, cut into syllables at the emotion's rate, with breath noise.

Both end with the emotion's peak level, so energy, rate, pitch and spectral tilt differ by
emotion the same way for every speaker, while f0 and formants differ by speaker.
"""
from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from ser_studio.model.constants import SAMPLE_RATE


@dataclass(frozen=True)
class Prosody:
    """How one emotion is spoken, relative to the speaker's voice.

    pitch: f0 factor; pitch_range: per-syllable f0 spread (semitones); contour: f0 change from
    start to end (semitones); rate: speaking-rate factor; level: peak amplitude (full scale 1);
    breath: breath-noise share; tilt: added to the exponent of the harmonic roll-off k**-tilt
    (+ = darker, - = brighter); drive: tanh saturation (tense voice, 0 = none); espeak_pitch:
    offset on espeak's 0-99 pitch; espeak_range: SSML prosody range; end: sentence punctuation
    (espeak's intonation: "?" rises, "!" is emphatic).
    """

    pitch: float
    pitch_range: float
    contour: float
    rate: float
    level: float
    breath: float
    tilt: float
    drive: float
    espeak_pitch: int
    espeak_range: str
    end: str


PROSODY = {
    "angry": Prosody(1.15, 3.0, -1.0, 1.30, 0.80, 0.02, -0.5, 2.5, 12, "x-high", "!"),
    "happy": Prosody(1.30, 2.0, 4.0, 1.10, 0.50, 0.04, 0.0, 0.0, 25, "high", "?"),
    "neutral": Prosody(1.00, 0.6, -1.0, 1.00, 0.32, 0.04, 0.2, 0.0, 0, "low", "."),
    "sad": Prosody(0.85, 0.3, -2.5, 0.70, 0.14, 0.30, 0.8, 0.0, -20, "x-low", "."),
}


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: f0 (Hz), formant scale (vocal tract), rate factor, level factor,
    spectral tilt exponent, espeak-ng voice variant and base pitch (0-99)."""

    gender: str
    f0: float
    formants: float
    rate: float
    gain: float
    tilt: float
    espeak_variant: str
    espeak_pitch: int


def make_voice(gender: str, index: int, rng: np.random.Generator) -> Voice:
    """A speaker voice; females have higher f0 and shorter vocal tracts (higher formants)."""
    female = gender == "F"
    return Voice(
        gender=gender,
        f0=float(rng.uniform(185, 235) if female else rng.uniform(95, 130)),
        formants=float(rng.uniform(1.10, 1.22) if female else rng.uniform(0.90, 1.02)),
        rate=float(rng.uniform(0.9, 1.1)),
        gain=float(rng.uniform(0.9, 1.1)),
        tilt=float(rng.uniform(1.0, 1.6)),
        espeak_variant=f"{'f' if female else 'm'}{index % 5 + 1}",
        espeak_pitch=int(rng.integers(35, 66)),
    )


# Vowel formants (Hz) and bandwidths for an adult male tract: /a/, /i/, /u/, /e/, /o/.
_VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240],
                    [530, 1840, 2480], [570, 840, 2410]], dtype=np.float64)
_BANDWIDTHS = np.array([90.0, 110.0, 170.0])

_WORDS = (
    "the a we they you it this that there here time day way home door book water light hand "
    "house paper river table window morning evening letter garden kitchen station doctor "
    "picture music summer winter yellow little never always often later maybe again really "
    "open close bring carry follow listen think believe remember wonder travel finish start "
    "back over under around before after between about quickly slowly today tomorrow"
).split()


def random_text(seconds: float, words_per_minute: float, rng: np.random.Generator) -> str:
    """Random words that take about ``seconds`` at ``words_per_minute``; first letter upper."""
    n = max(2, int(round(seconds * words_per_minute / 60.0)))
    text = " ".join(rng.choice(_WORDS, size=n))
    return text[0].upper() + text[1:]


def _finish(
    wav: np.ndarray, voice: Voice, prosody: Prosody, rng: np.random.Generator
) -> np.ndarray:
    """Emotion voice quality and level on a (N,) 16 kHz signal; returns float32 in [-1, 1]."""
    wav = wav.astype(np.float64)
    if prosody.drive > 0:
        wav = np.tanh(prosody.drive * wav / (np.max(np.abs(wav)) + 1e-9))
    peak = np.max(np.abs(wav)) + 1e-9
    level = prosody.level * voice.gain * rng.uniform(0.92, 1.08)
    wav = wav * (level / peak) + rng.normal(0.0, 1e-4, wav.shape)  # faint room noise floor
    return np.clip(wav, -1.0, 1.0).astype(np.float32)


def _breathy(wav: np.ndarray, amount: float, darken: float, rng: np.random.Generator) -> np.ndarray:
    """Add envelope-following breath noise and low-pass (one-pole, ``darken`` in 0..1)."""
    envelope = np.convolve(np.abs(wav), np.ones(160) / 160, mode="same")  # 10 ms mean |x|
    # Mean |x| of a sinusoid is ~0.64 of its peak; x4 puts ``amount`` near a noise-to-voice ratio.
    noise = rng.normal(0.0, 1.0, wav.shape) * envelope * amount * 4.0
    out = wav + noise
    if darken > 0:
        alpha = float(np.clip(darken, 0.0, 0.95))
        out = _one_pole(out, alpha)
    return out


def _one_pole(x: np.ndarray, alpha: float) -> np.ndarray:
    """y[n] = (1 - alpha) x[n] + alpha y[n-1], vectorised through an exponential kernel."""
    length = int(np.ceil(np.log(1e-4) / np.log(alpha))) if alpha > 0 else 1
    kernel = (1 - alpha) * alpha ** np.arange(length)
    return np.convolve(x, kernel)[: len(x)]


def espeak_available() -> bool:
    """Whether the espeak-ng program is on PATH."""
    return shutil.which("espeak-ng") is not None


def espeak_utterance(
    voice: Voice, prosody: Prosody, seconds: float, rng: np.random.Generator
) -> np.ndarray:
    """Speech from espeak-ng with this voice and emotion: (N,) float32 at 16 kHz.

    Raises RuntimeError when espeak-ng fails.
    """
    wpm = 160.0 * voice.rate * prosody.rate
    text = random_text(seconds, wpm, rng) + prosody.end
    pitch = int(np.clip(voice.espeak_pitch + prosody.espeak_pitch, 0, 99))
    ssml = f'<speak><prosody range="{prosody.espeak_range}">{text}</prosody></speak>'
    cmd = ["espeak-ng", "--stdout", "-m", "-z", "-v", f"en-us+{voice.espeak_variant}",
           "-p", str(pitch), "-s", str(int(max(80, wpm))), ssml]
    done = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    if done.returncode != 0 or len(done.stdout) <= 44:
        raise RuntimeError(f"espeak-ng failed ({done.returncode}): {done.stderr.decode()[:200]}")
    audio, rate = sf.read(io.BytesIO(done.stdout), dtype="float32")
    audio = audio if audio.ndim == 1 else audio.mean(axis=1)
    voiced = np.flatnonzero(np.abs(audio) > 0.01 * (np.max(np.abs(audio)) + 1e-9))
    if len(voiced):
        audio = audio[voiced[0]: voiced[-1] + 1]
    wav = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float64)
    lead = np.zeros(int(0.1 * SAMPLE_RATE))
    wav = np.concatenate([lead, wav, lead])
    if prosody.breath > 0.1:
        wav = _breathy(wav, prosody.breath, 0.6, rng)
    return _finish(wav, voice, prosody, rng)


def _syllables(seconds: float, rate: float, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(start, end) sample spans of voiced syllables filling ``seconds`` at ``rate`` per second."""
    spans, t, end = [], 0.12, seconds - 0.12
    while t < end:
        length = rng.uniform(0.7, 1.3) / rate
        voiced = min(length * rng.uniform(0.6, 0.8), end - t)
        if voiced > 0.04:
            spans.append((int(t * SAMPLE_RATE), int((t + voiced) * SAMPLE_RATE)))
        t += length
    return spans


def _f0_track(n: int, spans, voice: Voice, prosody: Prosody, rng) -> np.ndarray:
    """(n,) f0 in Hz: speaker level x emotion factor, contour, per-syllable offsets, jitter."""
    semis = np.linspace(0.0, prosody.contour, n)
    for start, end in spans:
        offset = rng.normal(0.0, prosody.pitch_range)
        slope = rng.normal(0.0, prosody.pitch_range / 2)
        semis[start:end] += offset + np.linspace(0.0, slope, end - start)
    steps = max(2, n // 80)  # jitter varies every 5 ms
    jitter = np.interp(np.arange(n), np.linspace(0, n - 1, steps), rng.normal(0, 0.15, steps))
    return voice.f0 * prosody.pitch * 2.0 ** ((semis + jitter) / 12.0)


def _syllable_source(phase, f0_mean, voice: Voice, prosody: Prosody, vowel) -> np.ndarray:
    """Harmonics of one syllable weighted by spectral tilt and the vowel's formant peaks."""
    k = np.arange(1, int(7000 // f0_mean) + 1, dtype=np.float64)
    freqs = k * f0_mean
    formants = _VOWELS[vowel] * voice.formants
    peaks = 1.0 / (1.0 + ((freqs[:, None] - formants[None, :]) / _BANDWIDTHS) ** 2)
    amps = k ** -(voice.tilt + prosody.tilt) * (0.05 + peaks @ np.array([1.0, 0.6, 0.3]))
    return amps @ np.sin(np.outer(k, phase))


def tone_utterance(
    voice: Voice, prosody: Prosody, seconds: float, rng: np.random.Generator
) -> np.ndarray:
    """Synthetic voiced speech with this voice and emotion: (N,) float32 at 16 kHz."""
    n = int(seconds * SAMPLE_RATE)
    spans = _syllables(seconds, 4.0 * voice.rate * prosody.rate, rng)
    f0 = _f0_track(n, spans, voice, prosody, rng)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    wav = np.zeros(n)
    for start, end in spans:
        length = end - start
        ramp = max(1, min(int(0.02 * SAMPLE_RATE), length // 3))
        env = np.ones(length)
        env[:ramp] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
        env[-ramp:] = env[:ramp][::-1]
        vowel = int(rng.integers(len(_VOWELS)))
        f0_mean = float(f0[start:end].mean())
        source = _syllable_source(phase[start:end], f0_mean, voice, prosody, vowel)
        source /= np.max(np.abs(source)) + 1e-9
        noise = rng.normal(0.0, 1.0, length) * prosody.breath
        wav[start:end] = (source + noise) * env
        burst = min(int(0.03 * SAMPLE_RATE), start)  # consonant-like noise before the vowel
        wav[start - burst:start] += rng.normal(0.0, 0.15, burst) * np.hanning(burst)
    return _finish(wav, voice, prosody, rng)

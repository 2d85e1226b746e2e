"""Recording-chain primitives, the random training chain and the benchmark's conditions."""
from __future__ import annotations

import numpy as np
import pytest

from ser_studio.model.augmentation import channel
from ser_studio.model.augmentation.conditions import CONDITIONS, render
from ser_studio.model.config.schema import ChannelConfig
from ser_studio.model.constants import SAMPLE_RATE


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    """1.5 s of a harmonic-rich 200 Hz tone with a slow envelope, peak 0.2."""
    t = np.arange(int(1.5 * SAMPLE_RATE)) / SAMPLE_RATE
    wav = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 30))
    wav = wav * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return (0.2 * wav / np.max(np.abs(wav))).astype(np.float32)


def band_energy(wav: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(wav)) ** 2
    freqs = np.fft.rfftfreq(len(wav), 1 / SAMPLE_RATE)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def test_mix_at_snr_gives_the_asked_snr(tone):
    noise = channel.color_noise(len(tone), "white", np.random.default_rng(0))
    mixed = channel.mix_at_snr(tone, noise, 10.0)
    added = mixed - tone
    assert 20 * np.log10(channel.rms(tone) / channel.rms(added)) == pytest.approx(10.0, abs=1e-3)


def test_coloured_noise_slopes():
    rng = np.random.default_rng(1)
    ratios = {}
    for kind in ("white", "pink", "brown"):
        noise = channel.color_noise(4 * SAMPLE_RATE, kind, rng)
        assert channel.rms(noise) == pytest.approx(1.0, rel=1e-3)
        ratios[kind] = band_energy(noise, 4000, 8000) / band_energy(noise, 250, 500)
    assert ratios["white"] > ratios["pink"] > ratios["brown"]


def test_band_limits_remove_what_they_should(tone):
    rich = channel.mix_at_snr(tone, channel.color_noise(len(tone), "white",
                                                        np.random.default_rng(2)), 0.0)
    phone = channel.telephone(rich)
    low = channel.lowpass(rich, 4000.0)
    for out in (phone, low):
        assert out.shape == rich.shape and out.dtype == np.float32
    assert band_energy(phone, 4000, 8000) < 1e-3 * band_energy(rich, 4000, 8000)
    assert band_energy(phone, 0, 150) < 0.05 * band_energy(rich, 0, 150)
    assert band_energy(low, 5000, 8000) < 1e-2 * band_energy(rich, 5000, 8000)


def test_codec_clipping_limiter_and_room_keep_length_and_stay_close(tone):
    coded = channel.mp3(tone, 32)
    assert coded.shape == tone.shape
    assert np.corrcoef(coded, tone)[0, 1] > 0.9  # aligned with the input, not delayed
    clipped = channel.hard_clip(tone, 20.0)
    assert np.max(np.abs(clipped)) == pytest.approx(1.0) and clipped.shape == tone.shape
    limited = channel.limit(tone, 12.0)
    assert np.max(np.abs(limited)) <= 1.0 and np.corrcoef(limited, tone)[0, 1] > 0.9
    wet = channel.reverberate(tone, channel.rir_bank(size=2)[0])
    assert wet.shape == tone.shape and channel.rms(wet) == pytest.approx(channel.rms(tone))


def test_level_primitives(tone):
    assert np.max(np.abs(channel.peak_normalise(tone, -3.0))) == pytest.approx(10 ** (-3 / 20))
    assert channel.rms(channel.rms_normalise(tone, -26.0)) == pytest.approx(10 ** (-26 / 20))
    silence = np.zeros(100, np.float32)
    assert not channel.peak_normalise(silence, -3).any()


def test_training_chain_is_reproducible_and_varied(tone):
    sources = [np.roll(tone, 1234), np.roll(tone, 555) * 0.5]
    aug = channel.ChannelAugmenter(ChannelConfig(variants=2, reverb_prob=0.5, codec_prob=0.5,
                                                 band_prob=0.5, clip_prob=0.5),
                                   lambda rng: sources)
    first = aug(tone, np.random.default_rng(7))
    again = aug(tone, np.random.default_rng(7))
    other = aug(tone, np.random.default_rng(8))
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)
    outs = [aug(tone, np.random.default_rng(s)) for s in range(12)]
    assert all(o.shape == tone.shape and np.isfinite(o).all() for o in outs)
    assert len({round(float(channel.rms(o)), 6) for o in outs}) == 12
    state = np.random.get_state()[1].copy()
    aug(tone, np.random.default_rng(9))
    assert np.array_equal(state, np.random.get_state()[1])  # global RNG untouched


def test_conditions_are_deterministic_and_complete(tone):
    assert len(CONDITIONS) == 15
    others = [np.roll(tone, 999)]
    for name in CONDITIONS:
        a = render(name, tone, seed=3, others=others)
        b = render(name, tone, seed=3, others=others)
        assert a.shape == tone.shape and np.array_equal(a, b), name
    assert np.array_equal(render("as recorded", tone), tone)
    assert not np.array_equal(render("white noise 10 dB SNR", tone, seed=1),
                              render("white noise 10 dB SNR", tone, seed=2))
    with pytest.raises(ValueError, match="other speakers"):
        render("babble 10 dB SNR", tone)
    with pytest.raises(ValueError, match="available"):
        render("underwater", tone)


def test_dc_offset_and_mains_hum_are_what_a_microphone_adds(tone):
    """The offset shifts every sample by exactly its value; the hum has its energy at 50 Hz
    and the harmonics in 1/k amplitudes (a 1 s signal: 1 Hz bins), unit RMS, and the
    condition mixes it 20 dB below the speech."""
    shifted = render("DC offset +0.05", tone)
    np.testing.assert_allclose(shifted - tone, 0.05, atol=1e-7)
    hum = channel.mains_hum(SAMPLE_RATE, hz=50.0, harmonics=3)
    amplitude = np.abs(np.fft.rfft(hum)) * 2 / SAMPLE_RATE
    np.testing.assert_allclose(amplitude[[50, 100, 150]] / amplitude[50], [1, 1 / 2, 1 / 3],
                               atol=1e-6)
    assert amplitude[[25, 75, 200]].max() < 1e-6 and abs(channel.rms(hum) - 1) < 1e-6
    hummed = render("mains hum 50 Hz 20 dB SNR", tone)
    snr = 20 * np.log10(channel.rms(tone) / channel.rms(hummed - tone))
    assert abs(snr - 20.0) < 1e-3


def test_channel_config_ranges():
    with pytest.raises(ValueError, match="noise_prob"):
        ChannelConfig(noise_prob=7.0)
    with pytest.raises(ValueError, match="snr_db"):
        ChannelConfig(snr_db=(30.0, 5.0))
    with pytest.raises(ValueError, match="variants"):
        ChannelConfig(variants=-1)


def _sine(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _gain_db(process, hz: float) -> float:
    """Level change (dB) of a sine at ``hz`` through ``process``, away from the edges."""
    x = _sine(hz)
    middle = slice(SAMPLE_RATE // 4, -SAMPLE_RATE // 4)
    return 20 * np.log10(channel.rms(process(x)[middle]) / channel.rms(x[middle]))


def _lag(out: np.ndarray, ref: np.ndarray, max_lag: int = 200) -> int:
    """Samples by which ``out`` lags ``ref`` (peak of their cross-correlation)."""
    from scipy.signal import correlate

    corr = correlate(out.astype(np.float64), ref.astype(np.float64), mode="full")
    centre = len(ref) - 1
    return int(np.argmax(corr[centre - max_lag:centre + max_lag + 1])) - max_lag


@pytest.fixture(scope="module")
def noise_burst() -> np.ndarray:
    """1 s of seeded white noise with an uneven envelope (no periodicity to alias a lag)."""
    rng = np.random.default_rng(11)
    env = np.linspace(0.2, 1.0, SAMPLE_RATE) ** 2
    return (0.1 * env * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)


def test_reverberation_with_known_impulse_responses(noise_burst):
    """A unit impulse after 37 samples of pre-delay leaves the signal as it is (the response
    starts at its direct-path peak); two taps 1 and 0.5 N = 250 samples apart add a copy
    delayed by exactly N, half as loud, and the sum is brought back to the input's RMS; a
    negative direct path flips the polarity."""
    x = noise_burst.astype(np.float64)
    rir = np.zeros(400, np.float32)
    rir[37] = 1.0
    np.testing.assert_allclose(channel.reverberate(noise_burst, rir), x, atol=1e-6)
    rir[37 + 250] = 0.5
    echo = x.copy()
    echo[250:] += 0.5 * x[:-250]
    want = echo * channel.rms(x) / channel.rms(echo)
    np.testing.assert_allclose(channel.reverberate(noise_burst, rir), want, atol=1e-6)
    flipped = np.zeros(100, np.float32)
    flipped[5], flipped[25] = -1.0, 0.3
    echo = -x.copy()
    echo[20:] += 0.3 * x[:-20]
    want = echo * channel.rms(x) / channel.rms(echo)
    np.testing.assert_allclose(channel.reverberate(noise_burst, flipped), want, atol=1e-6)


def test_filters_gains_at_chosen_frequencies():
    """Zero-phase filters are applied forward and backward, so a -3 dB design edge is -6 dB:
    the low-pass at 2 kHz passes 500 Hz, is -6 dB at 2 kHz and ~ -31 dB an octave above
    (24 dB/octave); the telephone band is flat at 1 kHz, -6 dB at its 300 and 3400 Hz edges,
    and nothing above 4 kHz (8 kHz sampling); the microphone tilt (+6 dB low shelf at 250 Hz,
    -9 dB high shelf at 3 kHz) gives its full gains far from the shelves, half at their
    centres and none at 1 kHz."""
    low = lambda w: channel.lowpass(w, 2000.0)  # noqa: E731
    assert abs(_gain_db(low, 500)) < 0.1
    assert _gain_db(low, 2000) == pytest.approx(-6.02, abs=0.3)
    assert -36 < _gain_db(low, 4000) < -26
    assert abs(_gain_db(channel.telephone, 1000)) < 0.5
    for edge in (300, 3400):
        assert _gain_db(channel.telephone, edge) == pytest.approx(-6.0, abs=1.0), edge
    assert _gain_db(channel.telephone, 100) < -30 and _gain_db(channel.telephone, 4500) < -60
    tilt = lambda w: channel.eq_tilt(w, 6.0, -9.0)  # noqa: E731
    expected = {40: 6.0, 250: 3.0, 1000: 0.0, 3000: -4.5, 7500: -9.0}
    for hz, db in expected.items():
        assert _gain_db(tilt, hz) == pytest.approx(db, abs=0.3), hz
    assert _gain_db(lambda w: channel.gain(w, -7.5), 1000) == pytest.approx(-7.5, abs=1e-4)


def test_filters_codec_and_limiter_add_no_delay(noise_burst):
    """Each stage's output lines up with its input sample for sample (cross-correlation peak
    at lag 0), so a variant's features are not shifted against the clean ones; the shelving
    filters are causal (minimum phase), so the tilt may lag by a sample or two, no more."""
    speechlike = channel.lowpass(noise_burst, 3000.0)
    stages = {"low-pass": lambda w: channel.lowpass(w, 3000.0), "telephone": channel.telephone,
              "mp3": lambda w: channel.mp3(w, 64), "limiter": lambda w: channel.limit(w, 12.0)}
    for name, stage in stages.items():
        assert _lag(stage(speechlike), speechlike) == 0, name
    assert 0 <= _lag(channel.eq_tilt(speechlike, 6.0, -6.0), speechlike) <= 2


def test_babble_is_the_sum_of_looped_unit_rms_sources():
    """Two sources of 7 and 5 samples with RMS far apart: the 23-sample mix is, for one pair of
    start offsets, each source continued cyclically from its offset, brought to unit RMS,
    summed, and the sum brought to unit RMS."""
    first = np.array([1.0, 4.0, -2.0, 0.5, 3.0, -1.0, 2.5])
    second = 100.0 * np.array([-1.0, 2.0, 0.0, 3.0, -0.5])
    n = 23
    mix = channel.babble([first, second], n, np.random.default_rng(4)).astype(np.float64)

    def looped(src, start):
        out = src[(start + np.arange(n)) % len(src)]
        return out / channel.rms(out)

    matches = []
    for a in range(len(first)):
        for b in range(len(second)):
            total = looped(first, a) + looped(second, b)
            if np.allclose(mix, total / channel.rms(total), atol=1e-5):
                matches.append((a, b))
    assert len(matches) == 1
    assert channel.rms(mix) == pytest.approx(1.0, abs=1e-5)

"""Audio loading: formats, rates, channels, and every kind of unusable file."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ser_studio.model.audio.io import (AudioError, crop_or_pad, frame_windows, load_audio,
                                       to_mono_16k)
from ser_studio.model.constants import SAMPLE_RATE


def _tone(rate: int, seconds: float = 1.0, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize(
    "name, subtype, fmt",
    [("a.wav", "PCM_16", "WAV"), ("b.wav", "PCM_24", "WAV"), ("c.wav", "PCM_32", "WAV"),
     ("d.wav", "FLOAT", "WAV"), ("e.flac", "PCM_16", "FLAC"), ("f.ogg", "VORBIS", "OGG"),
     ("g.mp3", "MPEG_LAYER_III", "MP3")],
)
def test_formats_load_as_mono_16k(tmp_path, name, subtype, fmt):
    path = tmp_path / name
    sf.write(path, _tone(44100), 44100, subtype=subtype, format=fmt)
    wav = load_audio(path)
    assert wav.dtype == np.float32 and wav.ndim == 1
    # mp3/ogg encoders add priming samples; lossless ones are exact
    assert abs(wav.shape[0] - SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    # the 440 Hz tone survives decoding and resampling
    spectrum = np.abs(np.fft.rfft(wav[2000:14000]))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / 12000
    assert abs(peak_hz - 440) < 5


def test_stereo_is_downmixed_and_rate_converted(tmp_path):
    left = _tone(48000, freq=300.0)
    right = np.zeros_like(left)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 48000, subtype="FLOAT")
    wav = load_audio(path)
    assert wav.shape == (SAMPLE_RATE,)
    assert np.max(np.abs(wav[1000:-1000])) == pytest.approx(0.25, abs=0.01)


def test_to_mono_16k_keeps_16k_untouched():
    x = np.random.default_rng(0).standard_normal((1600, 2)).astype(np.float32)
    np.testing.assert_allclose(to_mono_16k(x, SAMPLE_RATE), x.mean(axis=1))


def _write_bad(tmp_path, kind: str):
    path = tmp_path / f"{kind}.wav"
    good = tmp_path / "good.wav"
    sf.write(good, _tone(16000), 16000, subtype="PCM_16")
    data = good.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "header_only":
        path.write_bytes(data[:44])
    elif kind == "truncated_header":
        path.write_bytes(data[:20])
    elif kind == "not_audio":
        path.write_text("this is a text file, not audio\n" * 20)
    elif kind == "nan":
        x = _tone(16000)
        x[100] = np.nan
        sf.write(path, x, 16000, subtype="FLOAT")
    elif kind == "inf":
        x = _tone(16000)
        x[5] = np.inf
        sf.write(path, x, 16000, subtype="FLOAT")
    return path


@pytest.mark.parametrize(
    "kind, words",
    [("empty", "empty"), ("header_only", "zero length"), ("truncated_header", "truncated"),
     ("not_audio", "not audio"), ("nan", "NaN"), ("inf", "infinite")],
)
def test_bad_files_raise_audio_error_naming_file(tmp_path, kind, words):
    path = _write_bad(tmp_path, kind)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(path) in str(info.value)
    assert words in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="not a file"):
        load_audio(tmp_path)


def test_crop_or_pad():
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(crop_or_pad(x, 4), [3, 4, 5, 6])
    padded = crop_or_pad(x, 13)
    assert padded.shape == (13,) and padded[10:].sum() == 0 and padded[9] == 9
    rng = np.random.default_rng(0)
    starts = {int(crop_or_pad(x, 4, random=rng)[0]) for _ in range(200)}
    assert starts == set(range(7))


def test_frame_windows_cover_signal():
    x = np.zeros(10)
    assert frame_windows(x, 4, 3) == [(0, 4), (3, 7), (6, 10)]
    assert frame_windows(np.zeros(11), 4, 3) == [(0, 4), (3, 7), (6, 10), (7, 11)]
    assert frame_windows(np.zeros(3), 4, 3) == [(0, 3)]
    with pytest.raises(ValueError):
        frame_windows(x, 0, 1)


def test_m4a_says_it_is_unsupported_and_how_to_convert(tmp_path):
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    path = tmp_path / "voice memo.m4a"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=300:duration=1", "-c:a", "aac", str(path)], check=True)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    message = str(err.value)
    assert "voice memo.m4a" in message and "m4a/AAC" in message and "not supported" in message
    assert "convert it to WAV or FLAC" in message and "ffmpeg -i" in message


def test_a_symbolic_link_loop_says_so(tmp_path):
    loop = tmp_path / "loop.wav"
    loop.symlink_to(tmp_path / "loop.wav")
    with pytest.raises(AudioError, match="loop.wav: a symbolic link loop"):
        load_audio(loop)


def test_a_truncated_wav_is_decoded_with_a_warning(tmp_path, caplog):
    from ser_studio.model.audio.io import iter_audio

    path = tmp_path / "cut short.wav"
    sf.write(path, _tone(16000, seconds=2.0), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:44 + 16000])        # 0.5 s of the promised 2 s
    with caplog.at_level("WARNING", logger="ser_studio.model.audio.io"):
        wav = load_audio(path)
    assert wav.shape == (8000,)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "cut short.wav" in warnings[0] and "1.50 s" in warnings[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="ser_studio.model.audio.io"):
        assert sum(b.size for b in iter_audio(path)) == 8000
    assert any("1.50 s" in r.getMessage() for r in caplog.records)
    caplog.clear()
    sf.write(path, _tone(16000), 16000, subtype="PCM_16")   # a whole file: no warning
    with caplog.at_level("WARNING", logger="ser_studio.model.audio.io"):
        load_audio(path)
    assert not caplog.records

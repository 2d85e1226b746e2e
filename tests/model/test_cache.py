"""Feature cache: hits, misses, content keys, corrupt and stale entries, atomic writes, fill,
and the ``extract`` command that drives it."""
from __future__ import annotations

import argparse
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

import ser_studio.model.features.cache as cache_module
from ser_studio.model.audio.io import AudioError, load_audio
from ser_studio.model.cli import extract
from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.features.cache import FeatureCache, FillError, default_cache_dir, tensor_sha1
from ser_studio.model.features.logmel import LogMelFrontend
from ser_studio.model.features.registry import build_frontend, parse_frontend_spec
from ser_studio.model.files import file_sha1


def write_wav(path, seconds=0.5, seed=0):
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32),
             SAMPLE_RATE, subtype="PCM_16")
    return path


@pytest.fixture
def wavs(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    return [write_wav(folder / f"u{i}.wav", 0.3 + 0.1 * i, seed=i) for i in range(3)]


@pytest.fixture
def cache(tmp_path):
    return FeatureCache(LogMelFrontend(), tmp_path / "cache")


def counts(c: FeatureCache) -> tuple[int, int, int, int]:
    return c.stats.hits, c.stats.misses, c.stats.recomputed, c.stats.encoder_calls


def test_miss_then_hit_and_persisted(cache, wavs, tmp_path):
    first = cache.get(wavs[0])
    assert torch.equal(first, LogMelFrontend()(load_audio(wavs[0])))
    assert counts(cache) == (0, 1, 0, 1)
    second = cache.get(wavs[0])
    assert torch.equal(first, second) and counts(cache) == (1, 1, 0, 1)
    entry = cache.entry_path(wavs[0])
    assert entry.is_file() and entry.parent.parent == tmp_path / "cache" / cache.fingerprint
    fresh = FeatureCache(LogMelFrontend(), tmp_path / "cache")  # another process, same disk
    assert torch.equal(fresh.get(wavs[0]), first) and counts(fresh) == (1, 0, 0, 0)
    assert (fresh.hits, fresh.misses, fresh.recomputed, fresh.encoder_calls) == (1, 0, 0, 0)


def test_keyed_by_content_not_name(cache, wavs, tmp_path):
    cache.get(wavs[0])
    copy = tmp_path / "renamed.wav"
    shutil.copy(wavs[0], copy)
    cache.get(copy)
    assert counts(cache) == (1, 1, 0, 1)
    write_wav(copy, 0.5, seed=99)  # same name, new content
    os.utime(copy, ns=(1, 1))
    assert torch.equal(cache.get(copy), LogMelFrontend()(load_audio(copy)))
    assert counts(cache) == (1, 2, 0, 2)


def test_another_frontend_does_not_share_entries(cache, wavs, tmp_path):
    cache.get(wavs[0])
    other = FeatureCache(LogMelFrontend(FrontendConfig(name="logmel", n_mels=40)),
                         tmp_path / "cache")
    assert other.get(wavs[0]).shape[1] == 40 and counts(other) == (0, 1, 0, 1)


def rewrite(entry, tensor, **meta_changes):
    """Replace an entry with ``tensor`` and metadata that is right except for meta_changes."""
    from safetensors import safe_open

    with safe_open(str(entry), framework="pt") as f:
        meta = dict(f.metadata())
    meta.update(shape=",".join(map(str, tensor.shape)), tensor_sha1=tensor_sha1(tensor))
    meta.update(meta_changes)
    save_file({"features": tensor.contiguous()}, str(entry), metadata=meta)


def truncate(entry, good):
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])


def garbage(entry, good):
    entry.write_bytes(b"\x00garbage" * 100)


def flip_last_byte(entry, good):
    data = bytearray(entry.read_bytes())
    data[-1] ^= 0xFF
    entry.write_bytes(bytes(data))


def wrong_width(entry, good):
    rewrite(entry, good[:, :-1])


def wrong_dtype(entry, good):
    rewrite(entry, good.double())


def wrong_rank(entry, good):
    rewrite(entry, good[None])


def stale_fingerprint(entry, good):
    rewrite(entry, good, fingerprint="0" * 40)


def lying_checksum(entry, good):
    rewrite(entry, good + 1.0, tensor_sha1=tensor_sha1(good))


@pytest.mark.parametrize("damage", [truncate, garbage, flip_last_byte, wrong_width, wrong_dtype,
                                    wrong_rank, stale_fingerprint, lying_checksum])
def test_corrupt_or_stale_entry_is_recomputed(cache, wavs, damage):
    good = cache.get(wavs[1])
    entry = cache.entry_path(wavs[1])
    damage(entry, good)
    assert torch.equal(cache.get(wavs[1]), good)
    assert counts(cache) == (0, 1, 1, 2)
    assert torch.equal(cache.get(wavs[1]), good) and counts(cache) == (1, 1, 1, 2), \
        "the repaired entry is trusted again"


def test_a_write_killed_halfway_leaves_no_entry(cache, wavs, monkeypatch):
    def dies_halfway(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module, "save_file", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        cache.get(wavs[0])
    entry = cache.entry_path(wavs[0])
    assert not entry.exists() and list(entry.parent.iterdir()) == []
    # A temporary file left by a process killed outright is never read as an entry.
    (entry.parent / f".{entry.name}.123.abc.tmp").write_bytes(b"half")
    monkeypatch.undo()
    cache.get(wavs[0])
    assert counts(cache) == (0, 2, 0, 2) and entry.is_file()


def test_fill_caches_everything_it_can_and_lists_bad_files(cache, wavs, tmp_path):
    bad = tmp_path / "audio" / "not_audio.wav"
    bad.write_bytes(b"this is not audio at all" * 10)
    missing = tmp_path / "audio" / "missing.wav"
    with pytest.raises(FillError) as err:
        cache.fill([wavs[0], bad, wavs[1], missing, wavs[2]], progress=True)
    assert isinstance(err.value, AudioError)
    assert {e.path for e in err.value.failures} == {bad, missing}
    assert str(bad) in str(err.value) and str(missing) in str(err.value)
    assert "2 of 5" in str(err.value)
    assert counts(cache) == (0, 4, 0, 3), "the unreadable file is a miss that computes nothing"
    cache.fill(wavs)
    assert counts(cache)[:2] == (3, 4), "every good file was cached despite the bad ones"


def test_weighted_encoder_features_are_cached(tiny_hubert_dir, wavs, tmp_path):
    frontend = build_frontend(parse_frontend_spec(f"hubert:{tiny_hubert_dir}@weighted"))
    cache = FeatureCache(frontend, tmp_path / "cache")
    first = cache.get(wavs[2])
    assert first.shape == (3, (len(load_audio(wavs[2])) - 400) // 320 + 1, 32)
    assert torch.equal(cache.get(wavs[2]), first) and counts(cache) == (1, 1, 0, 1)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    assert FeatureCache(LogMelFrontend()).root == tmp_path / "here"
    monkeypatch.delenv("SER_CACHE_DIR")
    assert default_cache_dir().name == "features" and "ser-studio" in str(default_cache_dir())


def test_file_sha1_follows_content(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert file_sha1(path) == "a9993e364706816aba3e25717850c26c9cd0d89d"
    path.write_bytes(b"abd")
    os.utime(path, ns=(5, 5))
    assert file_sha1(path) != "a9993e364706816aba3e25717850c26c9cd0d89d"


@pytest.fixture
def run_extract(monkeypatch):
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # keep the test process as is
    parser = argparse.ArgumentParser()
    extract.add_parser(parser.add_subparsers())

    def run(*argv):
        args = parser.parse_args(["extract", *argv])
        return args.func(args)
    return run


def test_extract_command_fills_the_cache(run_extract, wavs, tmp_path, capsys):
    manifest = tmp_path / "audio" / "manifest.csv"
    manifest.write_text("path,label,speaker\n" + "".join(
        f"{p.name},{label},s{i}\n" for i, (p, label) in enumerate(zip(wavs, "abb"))))
    argv = ("--corpus", str(manifest), "--frontend", "logmel", "--cache", str(tmp_path / "c"),
            "--no-progress")
    assert run_extract(*argv) == 0
    assert "files 3, hits 0, misses 3" in capsys.readouterr().out
    assert run_extract(*argv, "--classes", "b") == 0
    assert "files 2, hits 2, misses 0" in capsys.readouterr().out
    write_wav(wavs[0], 0.1, seed=7)
    wavs[0].write_bytes(b"garbage")
    assert run_extract(*argv) == 2
    out = capsys.readouterr()
    assert "failed 1" in out.out and str(wavs[0]) in out.err


def test_extract_command_errors_exit_2(run_extract, tmp_path, capsys):
    assert run_extract("--corpus", str(tmp_path / "nowhere"), "--cache", str(tmp_path)) == 2
    assert "nowhere" in capsys.readouterr().err
    assert run_extract("--corpus", str(tmp_path), "--frontend", "mfcc") == 2
    assert "error:" in capsys.readouterr().err


def test_a_file_given_as_the_cache_folder_is_refused_by_name(tmp_path):
    from ser_studio.model.features.cache import CacheFolderError

    not_a_folder = tmp_path / "cache.txt"
    not_a_folder.write_text("x")
    for root in (not_a_folder, not_a_folder / "features"):
        with pytest.raises(CacheFolderError, match="cache.txt.*a file, not a folder"):
            FeatureCache(LogMelFrontend(), root)

"""Shared fixtures: offscreen Qt, seeded RNGs, and small data the tests make themselves."""
from __future__ import annotations

import os
import random
import shutil
import subprocess

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import torch

# Small networks run faster on one thread, and a shared CI machine is not oversubscribed.
torch.set_num_threads(1)
# The tests load many small checkpoints: their graphs are exported in the test's own process,
# not by a child each (tests/model/test_onnx_cache.py tests the child with this unset).
os.environ.setdefault("SER_EXPORT_IN_PROCESS", "1")


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    """Feature caches and the graphs model.onnx.cache exports go to this session's folder,
    not the user's cache (unless SER_CACHE_DIR says where)."""
    if "SER_CACHE_DIR" not in os.environ:
        os.environ["SER_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same random state."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory):
    """A small synthetic corpus in the IEMOCAP layout (5 sessions, 10 speakers).

    Returns the corpus root (the folder holding Session1..Session5).
    """
    from ser_studio.model.corpora.synth import SynthSpec, write_synthetic_iemocap

    root = tmp_path_factory.mktemp("synth_iemocap")
    write_synthetic_iemocap(root, SynthSpec(per_speaker_per_emotion=4, seed=0))
    return root


@pytest.fixture(scope="session")
def tiny_hubert_dir(tmp_path_factory):
    """A randomly initialised HubertModel of the real architecture, tiny, saved with
    ``save_pretrained`` into a folder: loaded through the same code as a user's local folder."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32, 32, 32, 32, 32, 32, 32), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )
    folder = tmp_path_factory.mktemp("tiny_hubert")
    HubertModel(config).save_pretrained(folder)
    return folder


SENTENCES = ("I can't believe you did that again. This is wonderful news, thank you so much! "
             "Well, I suppose we could try it tomorrow.")


def espeak_wav(path, text: str = SENTENCES) -> bool:
    """Write espeak-ng speech to ``path``; False when espeak-ng is not installed."""
    if shutil.which("espeak-ng") is None:
        return False
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return True


@pytest.fixture(scope="session")
def speech_path(tmp_path_factory):
    """A wav of espeak-ng speech (its own rate, 22.05 kHz); skips without espeak-ng."""
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    if not espeak_wav(path):
        pytest.skip("espeak-ng is not installed")
    return path

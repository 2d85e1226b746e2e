"""ONNX export of a HuBERT-frontend model: the encoder becomes OUT.encoder.onnx and the
exported Predictor needs neither the torch weights nor the hub. A tiny, randomly initialised
HubertModel of the real architecture (tests/conftest.py tiny_hubert_dir) stands in for HuBERT."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.exported.runtime import OnnxModelError
from ser_studio.model.exported.write import export_model
from ser_studio.model.inference.predictor import Predictor
from ser_studio.model.networks.checkpoint import Checkpoint, save_checkpoint
from ser_studio.model.networks.registry import build_network

LABELS = ["angry", "happy", "neutral", "sad"]
HIDDEN, LAYERS = 32, 3   # the tiny encoder's width and hidden states (2 layers + embeddings)
MEL = 24


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wav = 0.3 * np.sin(2 * np.pi * (180 + 50 * np.sin(2 * t)) * t)
    return (wav + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)


def hubert_checkpoint(folder, encoder_dir, *, name="hubert", layer_mode="last"):
    """A seeded enhanced network on the tiny encoder's features, saved as a checkpoint."""
    dim = HIDDEN + (MEL if "logmel" in name else 0)
    frontend = FrontendConfig(name=name, encoder=str(encoder_dir), layer_mode=layer_mode,
                              n_mels=MEL)
    cfg = ModelConfig(arch="enhanced", input_dim=dim, n_classes=4, hidden=16, gru_layers=1,
                      attn_heads=2, frame_pool=2, stats_branch=True,
                      input_layers=LAYERS if layer_mode == "weighted" else 1)
    torch.manual_seed(0)
    ckpt = Checkpoint(frontend=frontend, model=cfg, train=TrainConfig(eval_max_seconds=3.0),
                      labels=LABELS, norm_mean=[0.1] * dim, norm_std=[0.5] * dim,
                      state_dict=build_network(cfg).state_dict())
    return save_checkpoint(ckpt, folder / "model.safetensors")


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


@pytest.mark.parametrize("name, layer_mode", [("hubert", "last"), ("hubert", "weighted"),
                                              ("logmel+hubert", "last")])
def test_fp32_export_matches_torch(name, layer_mode, tiny_hubert_dir, tmp_path):
    ckpt = hubert_checkpoint(tmp_path, tiny_hubert_dir, name=name, layer_mode=layer_mode)
    result = export_model(ckpt, tmp_path / "m.onnx")
    assert result.encoder == tmp_path / "m.encoder.onnx" and result.encoder.is_file()
    entry = json.loads(result.sidecar.read_text())["encoder"]
    assert entry["output"] == ("hidden_states" if layer_mode == "weighted"
                               else "last_hidden_state") and entry["stride"] == 320
    ref, got = Predictor.load(ckpt), Predictor.load(result.network)
    assert ref.frontend.fingerprint() == got.frontend.fingerprint()  # cache shared with torch
    for seconds in (0.3, 2.3, 4.1):                                   # 4.1 s is cropped
        wav = speechlike(seconds, seed=int(10 * seconds))
        assert relative_error(got.frontend(wav), ref.frontend(wav)) <= 1e-4
        a, b = got.predict(wav, vad=False), ref.predict(wav, vad=False)
        assert np.abs(a.probs - b.probs).max() <= 1e-4
        assert np.abs(a.attention - b.attention).max() <= 1e-4


def test_the_exported_model_needs_neither_torch_weights_nor_the_hub(tiny_hubert_dir, tmp_path,
                                                                     monkeypatch):
    encoder_dir = tmp_path / "encoder"
    shutil.copytree(tiny_hubert_dir, encoder_dir)
    ckpt = hubert_checkpoint(tmp_path, encoder_dir)
    expected = Predictor.load(ckpt).predict(speechlike(1.5), vad=False)
    result = export_model(ckpt, tmp_path / "m.onnx")
    shutil.rmtree(encoder_dir)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    predictor = Predictor.load(result.network)
    assert np.abs(predictor.predict(speechlike(1.5), vad=False).probs
                  - expected.probs).max() <= 1e-4


def test_int8_encoder_stays_close_and_has_its_own_cache_key(tiny_hubert_dir, tmp_path):
    ckpt = hubert_checkpoint(tmp_path, tiny_hubert_dir)
    result = export_model(ckpt, tmp_path / "m8.onnx", int8=True)
    ref, got = Predictor.load(ckpt), Predictor.load(result.network)
    assert "onnx int8" in got.name
    ops = {node.op_type for node in onnx.load(str(result.encoder)).graph.node}
    assert "MatMulInteger" in ops and "ConvInteger" not in ops     # convolutions stay fp32
    assert got.frontend.fingerprint() != ref.frontend.fingerprint()
    wav = speechlike(2.0)
    assert cosine(got.frontend(wav), ref.frontend(wav)) >= 0.99
    assert np.abs(got.predict(wav, vad=False).probs
                  - ref.predict(wav, vad=False).probs).max() <= 0.02


def test_a_missing_encoder_graph_is_an_error_naming_it(tiny_hubert_dir, tmp_path):
    result = export_model(hubert_checkpoint(tmp_path, tiny_hubert_dir), tmp_path / "m.onnx")
    result.encoder.unlink()
    with pytest.raises(OnnxModelError, match="m.encoder.onnx: file not found"):
        Predictor.load(result.network)

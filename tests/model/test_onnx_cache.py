"""A torch checkpoint run on onnxruntime with no explicit export (model.onnx.cache): the same
probabilities as torch, the graph exported once and reused, a broken or unexportable graph
falling back to torch, and the GE2E LSTM from the real wheel file on onnxruntime."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.exported.runtime import OnnxNetwork
from ser_studio.model.features.ge2e import GE2EFrontend
from ser_studio.model.files import file_sha1
from ser_studio.model.inference.predictor import Predictor
from ser_studio.model.onnx import cache as onnx_cache

from tests.model.test_onnx_export import model_config, save, seeded_network, tone


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder for this test: the graphs land in ``cache / "onnx"``."""
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


@pytest.fixture
def checkpoint(tmp_path):
    cfg = model_config("baseline_x2_stats")
    return save(tmp_path / "model.safetensors", seeded_network(cfg), cfg)


def test_auto_runs_the_network_on_onnxruntime_with_torchs_probabilities(cache, checkpoint):
    fast, slow = Predictor.load(checkpoint), Predictor.load(checkpoint, runtime="torch")
    assert isinstance(fast.network, OnnxNetwork) and isinstance(slow.network, torch.nn.Module)
    assert fast.name == slow.name  # the same model, whatever runs it
    assert fast.checkpoint.state_dict == {} and slow.checkpoint.state_dict  # the graph has them
    for seconds in (0.9, 3.5):
        a, b = fast.predict(tone(seconds), vad=False), slow.predict(tone(seconds), vad=False)
        assert a.label == b.label and np.abs(a.probs - b.probs).max() <= 1e-5
        assert np.abs(a.attention - b.attention).max() <= 1e-5
    feats = [slow.frontend(tone(s, seed=i)) for i, s in enumerate((0.4, 1.7, 3.0))]
    assert np.abs(fast.probs_of_features(feats) - slow.probs_of_features(feats)).max() <= 1e-5


def test_the_graph_is_exported_once_and_reused_without_a_torch_network(cache, checkpoint,
                                                                        monkeypatch):
    Predictor.load(checkpoint)
    (graph,) = cache.glob("network-*.onnx")
    assert file_sha1(checkpoint) in graph.name and torch.__version__.split("+")[0] in graph.name
    assert (cache / f"{graph.name}.sha1").read_text().strip() == file_sha1(graph)
    written = graph.stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("exported or built again")

    monkeypatch.setattr("ser_studio.model.exported.write.export_network", refuse)
    # no torch network needed
    monkeypatch.setattr("ser_studio.model.inference.predictor.build_network", refuse)
    again = Predictor.load(checkpoint)
    assert isinstance(again.network, OnnxNetwork) and graph.stat().st_mtime_ns == written
    assert again.checkpoint.state_dict == {}


def test_the_same_weights_under_another_config_get_their_own_graph(cache, tmp_path):
    """frame_pool is no weight: a checkpoint with another's weights file, byte for byte, and
    another frame_pool must not run the other's graph (its attention would have the other's
    length)."""
    cfg = model_config("baseline_x2_stats")
    first = save(tmp_path / "a" / "model.safetensors", seeded_network(cfg), cfg)
    second = tmp_path / "b" / "model.safetensors"
    shutil.copytree(first.parent, second.parent)
    sidecar = json.loads(second.with_suffix(".json").read_text())
    sidecar["model"]["frame_pool"] = cfg.frame_pool * 2
    second.with_suffix(".json").write_text(json.dumps(sidecar))
    for path in (first, second):
        fast, slow = Predictor.load(path), Predictor.load(path, runtime="torch")
        assert slow.checkpoint.model.frame_pool == json.loads(
            path.with_suffix(".json").read_text())["model"]["frame_pool"]
        a, b = fast.predict(tone(2.0), vad=False), slow.predict(tone(2.0), vad=False)
        assert a.attention.shape == b.attention.shape
        assert np.abs(a.probs - b.probs).max() <= 1e-5
    assert len(list(cache.glob("network-*.onnx"))) == 2


def test_a_missing_graph_is_exported_by_a_child_process(cache, checkpoint, monkeypatch,
                                                        caplog):
    slow = Predictor.load(checkpoint, runtime="torch")
    monkeypatch.delenv(onnx_cache.IN_PROCESS_ENV, raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError("built or exported in the loading process")

    monkeypatch.setattr("ser_studio.model.exported.write.export_network", refuse)
    monkeypatch.setattr("ser_studio.model.inference.predictor.build_network", refuse)
    with caplog.at_level(logging.INFO, logger="ser_studio.model.inference.predictor"):
        fast = Predictor.load(checkpoint)
    assert isinstance(fast.network, OnnxNetwork) and "in a child process" in caplog.text
    (graph,) = cache.glob("network-*.onnx")
    assert (cache / f"{graph.name}.sha1").read_text().strip() == file_sha1(graph)
    a, b = fast.predict(tone(2.0), vad=False), slow.predict(tone(2.0), vad=False)
    assert a.label == b.label and np.abs(a.probs - b.probs).max() <= 1e-5


def test_a_failing_child_leaves_the_export_to_the_loading_process(cache, checkpoint,
                                                                  monkeypatch, caplog):
    monkeypatch.delenv(onnx_cache.IN_PROCESS_ENV, raising=False)
    calls = []

    def failing(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 3, "", "first\nsecond\nout of memory\n")

    monkeypatch.setattr("ser_studio.model.inference.export_child.subprocess.run", failing)
    predictor = Predictor.load(checkpoint)
    assert calls and calls[0][1:] == ["-m", "ser_studio.model.inference.export_main",
                                 str(checkpoint)]
    assert "exit 3" in caplog.text and "out of memory" in caplog.text
    assert isinstance(predictor.network, OnnxNetwork)          # exported here instead
    assert len(list(cache.glob("network-*.onnx"))) == 1


def test_the_child_entry_point_refuses_a_bad_checkpoint(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not weights")
    done = subprocess.run([sys.executable, "-m", "ser_studio.model.inference.export_main", str(bad)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and str(tmp_path) in done.stderr


@pytest.mark.parametrize("damage", ["bytes", "stamp", "no stamp"])
def test_a_changed_or_unstamped_graph_is_exported_again(cache, checkpoint, damage):
    Predictor.load(checkpoint)
    (graph,) = cache.glob("network-*.onnx")
    stamp = cache / f"{graph.name}.sha1"
    if damage == "bytes":
        graph.write_bytes(b"not a graph")
    elif damage == "stamp":
        stamp.write_text("0" * 40)
    else:
        stamp.unlink()
    predictor = Predictor.load(checkpoint)
    assert isinstance(predictor.network, OnnxNetwork)
    assert stamp.read_text().strip() == file_sha1(graph) and graph.read_bytes() != b"not a graph"
    slow = Predictor.load(checkpoint, runtime="torch")
    a, b = predictor.predict(tone(1.5), vad=False), slow.predict(tone(1.5), vad=False)
    assert np.abs(a.probs - b.probs).max() <= 1e-5


def test_a_graph_onnxruntime_cannot_load_leaves_torch_running(cache, checkpoint, monkeypatch,
                                                              caplog):
    from ser_studio.model.exported import runtime as onnx_runtime

    def broken(path, threads=1):
        raise onnx_runtime.OnnxModelError(f"{path}: onnxruntime cannot load it (test)")

    monkeypatch.setattr(onnx_runtime, "session", broken)
    with caplog.at_level(logging.WARNING, logger="ser_studio.model.inference.predictor"):
        predictor = Predictor.load(checkpoint)
    assert isinstance(predictor.network, torch.nn.Module) and "torch runs it" in caplog.text
    assert not list(cache.glob("network-*"))  # neither the graph nor its stamp is kept


def test_a_graph_that_does_not_match_torch_is_not_used(cache, checkpoint, monkeypatch, caplog):
    from ser_studio.model.exported import write as onnx_export

    monkeypatch.setattr(onnx_export, "PROB_TOLERANCE", -1.0)  # no graph can pass the check
    with caplog.at_level(logging.WARNING, logger="ser_studio.model.inference.predictor"):
        predictor = Predictor.load(checkpoint)
    assert isinstance(predictor.network, torch.nn.Module)
    assert "does not reproduce the network" in caplog.text
    assert not list(cache.glob("network-*.onnx"))


def test_unknown_runtime_is_refused(checkpoint):
    with pytest.raises(ValueError, match="runtime 'tensorrt' not known"):
        Predictor.load(checkpoint, runtime="tensorrt")


def voiced(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wav = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 15))
    return (0.1 * wav * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_the_ge2e_lstm_on_onnxruntime_gives_torchs_states(cache):
    reference, fast = GE2EFrontend(FrontendConfig(name="ge2e")), \
        GE2EFrontend(FrontendConfig(name="ge2e"))
    fast.use_onnxruntime()
    assert isinstance(fast.lstm, onnx_cache.OnnxLstm)
    assert len(list(cache.glob("lstm-*.onnx"))) == len(list(cache.glob("lstm-*.sha1"))) == 1
    for seconds in (0.3, 2.2):
        want, got = reference(voiced(seconds)), fast(voiced(seconds))
        assert got.shape == want.shape and float((got - want).abs().max()) <= 1e-4


def test_a_batch_of_sequences_gets_the_lstm_states_each_gets_alone(cache):
    """A file's windows run the GE2E LSTM together (model.features.live): each must get, bit
    for bit, the states it gets alone, as a live window does."""
    frontend = GE2EFrontend(FrontendConfig(name="ge2e"))
    frontend.use_onnxruntime()
    x = torch.rand(3, 77, 40, generator=torch.Generator().manual_seed(2)) * 4.0
    together = frontend.lstm(x)[0]
    for i in range(3):
        torch.testing.assert_close(together[i:i + 1], frontend.lstm(x[i:i + 1])[0],
                                   rtol=0, atol=0)


def test_an_lstm_export_that_does_not_match_torch_is_not_kept(cache, monkeypatch):
    monkeypatch.setattr(onnx_cache, "LSTM_TOLERANCE", -1.0)  # no graph can pass the check
    frontend = GE2EFrontend(FrontendConfig(name="ge2e"))
    with pytest.raises(onnx_cache.OnnxError, match="does not reproduce torch's"):
        frontend.use_onnxruntime()
    assert frontend.lstm is frontend.torch_lstm and not list(cache.glob("lstm-*"))


def test_the_exporters_native_noise_is_dropped_and_other_stderr_kept(cache, checkpoint, capfd):
    from ser_studio.model.exported.write import NATIVE_NOISE, _native_noise_dropped

    Predictor.load(checkpoint)  # exports the recurrent network: the C++ exporter warns
    assert "shape inference" not in capfd.readouterr().err
    with _native_noise_dropped():
        os.write(2, f"[W] {NATIVE_NOISE}ckPadded type is missing\nanother thread's line\n"
                 .encode())
    assert capfd.readouterr().err == "another thread's line\n"


def test_an_unwritable_cache_leaves_torch_running(tmp_path, monkeypatch, checkpoint, caplog):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SER_CACHE_DIR", str(blocker))
    with caplog.at_level(logging.WARNING, logger="ser_studio.model.inference.predictor"):
        predictor = Predictor.load(checkpoint)
    assert isinstance(predictor.network, torch.nn.Module) and "torch runs it" in caplog.text
    assert predictor.predict(tone(1.0), vad=False).label in predictor.labels

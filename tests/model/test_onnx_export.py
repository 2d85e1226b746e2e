"""ONNX export and onnxruntime inference of the networks: parity with torch on padded batches,
int8 accuracy, the sidecar's checks, and the Predictor, CLI and app loader on an exported model.

Networks are small, seeded, of the real architectures, saved as the trainer saves them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
import torch

from ser_studio.model.cli.main import main as cli_main
from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.exported.runtime import OnnxModelError, OnnxNetwork, load_onnx_model
from ser_studio.model.exported.write import ExportError, example_inputs, export_model
from ser_studio.model.inference.predictor import Predictor
from ser_studio.model.networks.checkpoint import Checkpoint, CheckpointError, save_checkpoint
from ser_studio.model.networks.registry import build_network

from tests.fresh_python import MAIN, imported_by_main

LABELS = ["angry", "happy", "neutral", "sad"]
DIM = 24  # log-mel bands of the test frontend (FrontendConfig n_mels)
ARCHS = {
    "baseline": dict(arch="baseline", gru_layers=2, frame_pool=2),
    "enhanced": dict(arch="enhanced", gru_layers=2, frame_pool=3, n_speakers=3),
    "stats_linear": dict(arch="stats_linear"),
    "baseline_x2_stats": dict(arch="baseline", ensemble=2, stats_branch=True, frame_pool=4),
    "enhanced_x2_stats_layers": dict(arch="enhanced", ensemble=2, stats_branch=True,
                                     input_layers=3, frame_pool=2),
}


def model_config(name: str) -> ModelConfig:
    return ModelConfig(input_dim=DIM, n_classes=len(LABELS), hidden=16, attn_heads=2,
                       **{"gru_layers": 1, **ARCHS[name]})


def save(path: Path, network: torch.nn.Module, cfg: ModelConfig,
         eval_max_seconds: float = 2.0) -> Path:
    """``network``'s weights as a checkpoint, as the trainer writes one; the weights path."""
    ckpt = Checkpoint(frontend=FrontendConfig(name="logmel", n_mels=DIM), model=cfg,
                      train=TrainConfig(eval_max_seconds=eval_max_seconds), labels=list(LABELS),
                      speakers=["s1", "s2", "s3"], norm_mean=[-6.0] * DIM, norm_std=[3.0] * DIM,
                      metrics={"ua": 0.5}, state_dict=network.state_dict())
    return save_checkpoint(ckpt, path)


def seeded_network(cfg: ModelConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(cfg).eval()


def with_garbage_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x with large random values on every padded frame (the networks must ignore them)."""
    x = x.clone()
    for row, length in enumerate(lengths.tolist()):
        x[row, ..., length:, :] = 1e3 * torch.randn_like(x[row, ..., length:, :])
    return x


def probs(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.float(), dim=-1).numpy()


@pytest.mark.parametrize("name", list(ARCHS))
def test_fp32_graph_matches_torch_on_padded_batches(name, tmp_path):
    cfg = model_config(name)
    network = seeded_network(cfg)
    result = export_model(save(tmp_path / "model.safetensors", network, cfg), tmp_path / "m.onnx")
    runner = OnnxNetwork(result.network, cfg)
    for steps, lengths in ((37, [37, 1, 20, 36, 5]), (9, [9, 4]), (61, [61])):
        x, lens = example_inputs(cfg, steps, lengths, seed=steps)
        x = with_garbage_padding(x, lens)
        with torch.no_grad():
            ref = network(x, lens)
        got = runner(x, lens)
        assert isinstance(got.logits, torch.Tensor) and got.speaker_logits is None
        assert np.abs(probs(got.logits) - probs(ref.logits)).max() <= 1e-4
        assert got.attention.shape == ref.attention.shape
        assert (got.attention - ref.attention).abs().max() <= 1e-4
        assert torch.equal(got.frame_lengths, ref.frame_lengths)
        for row, frames in enumerate(got.frame_lengths.tolist()):
            assert float(got.attention[row, frames:].abs().sum()) == 0.0   # padding masked
            alone = runner(x[row:row + 1, ..., :lengths[row], :], lens[row:row + 1])
            assert np.abs(probs(alone.logits)[0] - probs(got.logits)[row]).max() <= 1e-4


def test_the_runner_checks_its_input_as_the_network_does(tmp_path):
    cfg = model_config("baseline")
    result = export_model(save(tmp_path / "model.safetensors", seeded_network(cfg), cfg),
                          tmp_path / "m.onnx")
    runner = OnnxNetwork(result.network, cfg)
    x, lengths = example_inputs(cfg, 10, [10, 5])
    with pytest.raises(ValueError, match="expected features of shape"):
        runner(x[..., :5], lengths)
    with pytest.raises(ValueError, match="every length must be in 1..10"):
        runner(x, torch.tensor([11, 5]))
    with pytest.raises(ValueError, match="lengths must have shape"):
        runner(x, torch.tensor([10]))


# ---- int8 ----------------------------------------------------------------------------------

def labelled_set(cfg: ModelConfig, n: int, seed: int) -> list[tuple[torch.Tensor, int]]:
    """n utterances (T, D) of 20..60 frames whose class shifts four of the dimensions and
    makes them oscillate (a shift alone vanishes in the enhanced network's instance norm)."""
    gen = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        label, steps = i % len(LABELS), int(torch.randint(20, 61, (1,), generator=gen))
        x = torch.randn(steps, DIM, generator=gen)
        wave = torch.sin(torch.arange(steps) * (2 * torch.pi / 8)).unsqueeze(1)
        x[:, 4 * label:4 * label + 4] += 1.5 + 2.0 * wave
        items.append((x, label))
    return items


def batch_of(items: list[tuple[torch.Tensor, int]], layers: int):
    lengths = torch.tensor([x.shape[0] for x, _ in items])
    x = torch.zeros(len(items), int(lengths.max()), DIM)
    for row, (feats, _) in enumerate(items):
        x[row, :feats.shape[0]] = feats
    if layers > 1:
        x = x.unsqueeze(1).expand(-1, layers, -1, -1).contiguous()
    return x, lengths, torch.tensor([label for _, label in items])


def trained_network(cfg: ModelConfig, steps: int = 100) -> torch.nn.Module:
    """A network trained briefly on ``labelled_set``: confident, as a real model is."""
    network = seeded_network(cfg).train()
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-2)
    data = labelled_set(cfg, 64, seed=1)
    for step in range(steps):
        x, lengths, labels = batch_of(data[(step * 16) % 64:][:16], cfg.input_layers)
        loss = torch.nn.functional.cross_entropy(network(x, lengths).logits, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return network.eval()


@pytest.mark.parametrize("name", ["baseline_x2_stats", "enhanced"])
def test_int8_keeps_probabilities_within_002_and_the_labels(name, tmp_path):
    cfg = model_config(name)
    network = trained_network(cfg)
    ckpt = save(tmp_path / "model.safetensors", network, cfg)
    int8 = export_model(ckpt, tmp_path / "m8.onnx", int8=True)
    fp32 = export_model(ckpt, tmp_path / "m.onnx")
    ops = {node.op_type for node in onnx.load(str(int8.network)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops and "QLinearConv" not in ops
    assert "MatMulInteger" not in {n.op_type for n in onnx.load(str(fp32.network)).graph.node}
    x, lengths, labels = batch_of(labelled_set(cfg, 48, seed=7), cfg.input_layers)
    with torch.no_grad():
        ref = probs(network(x, lengths).logits)
    got = probs(OnnxNetwork(int8.network, cfg, int8=True)(x, lengths).logits)
    assert (ref.argmax(1) == labels.numpy()).mean() >= 0.9       # a confident model
    assert np.abs(got - ref).max() <= 0.02
    assert (got.argmax(1) == ref.argmax(1)).all()
    assert json.loads(int8.sidecar.read_text())["quantized_ops"] == ["MatMul", "Gemm"]


# ---- the sidecar ---------------------------------------------------------------------------

@pytest.fixture()
def exported(tmp_path):
    cfg = model_config("baseline")
    return export_model(save(tmp_path / "model.safetensors", seeded_network(cfg), cfg),
                        tmp_path / "m.onnx")


def edit_sidecar(result, **changes) -> None:
    doc = json.loads(result.sidecar.read_text())
    doc.update(changes)
    result.sidecar.write_text(json.dumps(doc))


def test_the_sidecar_holds_what_the_predictor_needs(exported, tmp_path):
    doc = json.loads(exported.sidecar.read_text())
    assert exported.sidecar == tmp_path / "m.json" and exported.encoder is None
    assert doc["labels"] == LABELS and doc["norm_mean"] == [-6.0] * DIM
    assert doc["train"]["eval_max_seconds"] == 2.0 and doc["frontend"]["n_mels"] == DIM
    assert doc["model"]["arch"] == "baseline" and doc["int8"] is False
    source = json.loads((tmp_path / "model.json").read_text())
    assert doc["source"]["weights_sha1"] == source["weights_sha1"]


def test_a_missing_sidecar_is_an_error_naming_it(exported):
    exported.sidecar.unlink()
    with pytest.raises(CheckpointError, match=str(exported.sidecar)):
        Predictor.load(exported.network)


@pytest.mark.parametrize("changes, problem", [
    (dict(labels=["angry", "happy", "sad"]), "labels"),
    (dict(format="ser-studio-checkpoint"), "not an exported-model description"),
    (dict(version=2), "version 2"),
    (dict(extra=1), "unknown keys"),
    (dict(norm_std=[0.0] * DIM), "norm_std"),
    (dict(network={"sha1": "0" * 40}), "checksum differs"),
    (dict(network={"file": "m.onnx"}), "malformed 'network'"),
])
def test_an_altered_sidecar_is_an_error_naming_the_file(exported, changes, problem):
    edit_sidecar(exported, **changes)
    with pytest.raises(OnnxModelError, match=problem) as err:
        load_onnx_model(exported.network)
    assert str(exported.sidecar.name) in str(err.value)


def test_the_files_can_be_renamed_together(exported, tmp_path):
    moved = tmp_path / "moved"
    moved.mkdir()
    exported.network.rename(moved / "renamed.onnx")
    exported.sidecar.rename(moved / "renamed.json")
    assert Predictor.load(moved / "renamed.onnx").labels == LABELS


def test_a_modified_graph_is_refused(exported):
    with open(exported.network, "ab") as f:
        f.write(b"\0")
    with pytest.raises(OnnxModelError, match="checksum differs") as err:
        Predictor.load(exported.network)
    assert str(exported.network) in str(err.value)


def test_export_never_overwrites_a_checkpoint_description(tmp_path):
    cfg = model_config("baseline")
    ckpt = save(tmp_path / "model.safetensors", seeded_network(cfg), cfg)
    before = (tmp_path / "model.json").read_bytes()
    with pytest.raises(ExportError, match="model.json"):
        export_model(ckpt, tmp_path / "model.onnx")
    assert (tmp_path / "model.json").read_bytes() == before
    assert not (tmp_path / "model.onnx").exists()


# ---- the Predictor, the command line and the app on an exported model -----------------------

def tone(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wav = 0.3 * np.sin(2 * np.pi * (150 + 60 * np.sin(3 * t)) * t)
    return (wav + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(torch Predictor, onnx Predictor, folder) of the shipped model's architecture."""
    folder = tmp_path_factory.mktemp("pair")
    cfg = model_config("baseline_x2_stats")
    ckpt = save(folder / "model.safetensors", seeded_network(cfg), cfg)
    result = export_model(ckpt, folder / "exported.onnx")
    return Predictor.load(ckpt, runtime="torch"), Predictor.load(result.network), folder


def test_predictor_on_onnx_predicts_as_torch(pair):
    torch_pred, onnx_pred, _ = pair
    assert isinstance(onnx_pred.network, OnnxNetwork) and "onnx" in onnx_pred.name
    assert onnx_pred.labels == LABELS and onnx_pred.max_seconds == 2.0
    for seconds in (1.3, 3.5):                                   # 3.5 s is centre-cropped
        ref, got = torch_pred.predict(tone(seconds), vad=False), onnx_pred.predict(tone(seconds),
                                                                                  vad=False)
        assert got.label == ref.label and np.abs(got.probs - ref.probs).max() <= 1e-4
        assert np.abs(got.attention - ref.attention).max() <= 1e-4
        assert got.attention_offset_s == ref.attention_offset_s


def test_predict_file_and_probs_of_features_match_torch(pair):
    torch_pred, onnx_pred, folder = pair
    path = folder / "long.wav"
    sf.write(path, tone(4.5, seed=3), SAMPLE_RATE)
    ref, got = torch_pred.predict_file(path, vad=False), onnx_pred.predict_file(path, vad=False)
    assert np.abs(got.overall.probs - ref.overall.probs).max() <= 1e-4
    assert len(got.windows) == len(ref.windows) > 1
    for (_, _, a), (_, _, b) in zip(got.windows, ref.windows):
        assert np.abs(a.probs - b.probs).max() <= 1e-4
    feats = [torch_pred.frontend(tone(s, seed=i)) for i, s in enumerate((0.4, 1.7, 1.1, 3.0))]
    assert np.abs(onnx_pred.probs_of_features(feats, batch_size=3)
                  - torch_pred.probs_of_features(feats, batch_size=3)).max() <= 1e-4


def test_onnx_threads_default_to_one_and_can_be_set(pair):
    _, onnx_pred, _ = pair
    assert onnx_pred.network.session.get_session_options().intra_op_num_threads == 1
    runner = OnnxNetwork(onnx_pred.network.path, onnx_pred.checkpoint.model)
    assert runner.session.get_session_options().intra_op_num_threads == 1
    two = Predictor.load(onnx_pred.checkpoint_path, onnx_threads=2)
    assert two.network.session.get_session_options().intra_op_num_threads == 2


def test_cli_export_then_predict(pair, tmp_path, capsys):
    torch_pred, _, folder = pair
    out = tmp_path / "cli.onnx"
    assert cli_main(["export", "--model", str(folder / "model.safetensors"),
                     "--onnx", str(out)]) == 0
    assert capsys.readouterr().out.split() == [str(out), str(tmp_path / "cli.json")]
    wav = tmp_path / "clip.wav"
    sf.write(wav, tone(1.5), SAMPLE_RATE)
    assert cli_main(["predict", str(wav), "--model", str(out), "--json", "--no-vad"]) == 0
    line = json.loads(capsys.readouterr().out)
    ref = torch_pred.predict(tone(1.5), vad=False)
    assert np.abs(np.array([line["probs"][k] for k in LABELS]) - ref.probs).max() <= 1e-4


def test_an_int8_export_prints_no_quantiser_chatter(pair, tmp_path):
    """onnxruntime's quantiser logs ~30 INFO lines on the root logger; a fresh ``main.py
    export --int8`` prints the files written and its own log lines only."""
    _, _, folder = pair
    out = tmp_path / "small.onnx"
    done = subprocess.run([sys.executable, str(MAIN), "export", "--model", str(folder),
                           "--onnx", str(out), "--int8"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out), str(tmp_path / "small.json")]
    lines = done.stderr.splitlines()
    prefix = "INFO ser_studio.model.exported.write: "
    assert lines and all(line.startswith(prefix) for line in lines), lines
    assert "(int8)" in lines[-1]


def test_the_quantiser_filter_keeps_its_warnings_and_errors_and_other_logs():
    import logging

    from ser_studio.model.onnx.quantize import _not_quantiser_noise

    inside = str(Path("site-packages") / "onnxruntime" / "quantization" / "quantize.py")

    def record(level, path, text):
        return logging.LogRecord("root", level, path, 1, text, None, None)

    assert not _not_quantiser_noise(record(logging.INFO, inside, "Quantization parameters"))
    assert not _not_quantiser_noise(record(logging.WARNING, inside, "Please consider to run "
                                           "pre-processing before quantization."))
    assert _not_quantiser_noise(record(logging.WARNING, inside, "Failed to infer data type"))
    assert _not_quantiser_noise(record(logging.ERROR, inside, "cannot quantise"))
    assert _not_quantiser_noise(record(logging.INFO, "/work/model/x.py", "Quantization"))


def test_cli_export_errors_name_the_file(tmp_path, capsys):
    missing = tmp_path / "none.safetensors"
    assert cli_main(["export", "--model", str(missing), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert str(tmp_path / "none.json") in capsys.readouterr().err


def test_the_app_loader_opens_an_exported_model(pair):
    from ser_studio.app.live.inference_worker import _default_loader
    from ser_studio.app.shell.model_info import _read_facts

    path = pair[1].checkpoint_path
    predictor = _default_loader(str(path))
    assert isinstance(predictor.network, OnnxNetwork)
    assert _read_facts(path)["labels"] == LABELS


def test_export_help_imports_nothing_heavy():
    assert imported_by_main(["export", "--help"],
                            ("torch", "onnx", "onnxruntime", "transformers")) == []

"""Fixtures for the app tests: a random-weights checkpoint, real audio files, an injectable
input stream that replays a file through the recorder's callback path, and an ini-backed
settings store."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from ser_studio.app.live.replay import ReplayStream
from ser_studio.model.constants import SAMPLE_RATE

LABELS = ["angry", "happy", "neutral", "sad"]


def make_checkpoint(path, *, arch: str = "enhanced", hidden: int = 64, seed: int = 0,
                    train=None):
    """A randomly initialised network with a log-mel frontend, saved as a checkpoint
    (``train``: its TrainConfig, default none)."""
    from ser_studio.model.config.schema import FrontendConfig, ModelConfig
    from ser_studio.model.networks.checkpoint import Checkpoint, save_checkpoint
    from ser_studio.model.networks.registry import build_network

    torch.manual_seed(seed)
    cfg = ModelConfig(arch=arch, input_dim=80, n_classes=len(LABELS), hidden=hidden,
                      attn_heads=4, frame_pool=3)
    net = build_network(cfg)
    ckpt = Checkpoint(frontend=FrontendConfig(name="logmel"), model=cfg, train=train,
                      labels=list(LABELS), norm_mean=[-6.0] * 80, norm_std=[3.0] * 80,
                      metrics={"ua": {"mean": 0.25, "std": 0.0}, "note": "random weights"},
                      state_dict=net.state_dict())
    return save_checkpoint(ckpt, path)


@pytest.fixture(scope="session")
def checkpoint_factory():
    """``make_checkpoint`` as a fixture: checkpoint_factory(path, seed=1) -> weights path."""
    return make_checkpoint


@pytest.fixture(scope="session")
def checkpoint_path(tmp_path_factory):
    """Path of a random-weights enhanced log-mel checkpoint (X.safetensors + X.json)."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "random_model.safetensors")


@pytest.fixture(scope="session")
def tone_path_16k(tmp_path_factory):
    """A 3 s 16 kHz wav of a gliding tone with a little noise (distinct samples everywhere)."""
    rng = np.random.default_rng(0)
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    wav = 0.4 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.01 * rng.standard_normal(t.size)
    path = tmp_path_factory.mktemp("tone") / "tone.wav"
    sf.write(path, wav.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    return path


class _Flags:
    """Stands in for sounddevice.CallbackFlags."""

    def __init__(self, overflow: bool = False):
        self.input_overflow = overflow

    def __bool__(self) -> bool:
        return self.input_overflow


class FileStream(ReplayStream):
    """app.live.replay.ReplayStream (a file replayed through the recorder's callback from its own
    thread, as PortAudio would) with failures to simulate: overflow_every: every k-th block
    is flagged as an input overflow; vanish_after: after this many blocks the stream goes
    inactive, as a device that was unplugged; pause: (after_blocks, seconds) the stream stays
    active but delivers nothing for a while, as an idle PulseAudio monitor."""

    def __init__(self, path, callback, *, overflow_every: int = 0,
                 vanish_after: int | None = None, pause: tuple[int, float] | None = None,
                 **options):
        super().__init__(path, callback, **options)
        self.overflow_every, self.vanish_after, self.pause = overflow_every, vanish_after, pause

    def status(self):
        return _Flags(bool(self.overflow_every) and (self.blocks % self.overflow_every == 0))

    def after_block(self) -> bool:
        if self.vanish_after is not None and self.blocks >= self.vanish_after:
            self.active = False
            return False
        if self.pause is not None and self.blocks == self.pause[0]:
            self._stop.wait(self.pause[1])
        return True


def make_file_stream_factory(path, **options):
    """A Recorder stream_factory replaying ``path`` (options as FileStream's); the streams it
    made are listed in its ``streams`` attribute."""
    streams = []

    def factory(device, callback):
        stream = FileStream(path, callback, **options)
        streams.append(stream)
        return stream

    factory.streams = streams
    return factory


@pytest.fixture
def file_stream_factory():
    """``make_file_stream_factory`` (a fixture, so tests need not import conftest)."""
    return make_file_stream_factory


@pytest.fixture
def settings(tmp_path):
    """AppSettings on an ini file in the test's temporary folder."""
    from ser_studio.app.shell.settings import AppSettings, ini_qsettings

    return AppSettings(ini_qsettings(tmp_path / "settings.ini"))


@pytest.fixture
def history(tmp_path):
    from ser_studio.app.history.history_store import HistoryStore

    return HistoryStore(tmp_path / "history.sqlite3")


@pytest.fixture(scope="session")
def predictor(checkpoint_path):
    """The random-weights checkpoint loaded through the one inference entry point."""
    from ser_studio.model.inference.predictor import Predictor

    return Predictor.load(checkpoint_path)


def live_result_of(predictor, wav: np.ndarray, end: int | None = None):
    """A LiveResult of a real prediction of ``wav``, as the worker would emit it."""
    from ser_studio.app.live.inference_worker import LiveResult

    pred = predictor.predict(wav, vad=True)
    return LiveResult(
        labels=list(predictor.labels), prediction=pred, probs=pred.probs, label=pred.label,
        wav=wav, end=wav.size if end is None else end, latency_s=pred.latency_s,
        age_s=pred.latency_s, stale_dropped=0, attention_centre_s=predictor.attention_centre_s)


@pytest.fixture
def make_live_result(predictor):
    """``live_result_of`` bound to the session predictor: make_live_result(wav, end=None)."""
    return lambda wav, end=None: live_result_of(predictor, wav, end)


@pytest.fixture
def make_window(qtbot, checkpoint_path, history, settings, tmp_path):
    """make_window(**overrides) -> a shown MainWindow whose model has loaded (speaker
    profiles under tmp_path/profiles, never the user's)."""
    from ser_studio.app.shell.main_window import MainWindow

    made = []

    def make(**kwargs):
        kwargs.setdefault("model_path", str(checkpoint_path))
        kwargs.setdefault("history", history)
        kwargs.setdefault("settings", settings)
        kwargs.setdefault("profiles_dir", tmp_path / "profiles")
        window = MainWindow(**kwargs)
        qtbot.addWidget(window)
        made.append(window)
        window.show()
        qtbot.waitUntil(lambda: window.model_info is not None, timeout=20_000)
        return window

    yield make
    for window in made:
        window.close()

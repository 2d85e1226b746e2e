"""The package builds into a wheel that installs one import name, ``ser_studio`` (the repository's
model/, app/, assets/, resources/ and main.py beneath it), carries every module, the default
model, its card and recipe, the stylesheet and the icons, and predicts from any folder
(importlib.resources)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["assets/default_model.safetensors", "assets/default_model.json",
           "assets/MODEL_CARD.md", "assets/recipe_shipped.json", "resources/style.qss",
           "main.py", "model/cli/predict.py", "app/shell/main_window.py"]
PACKAGE = "ser_studio"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources: an in-tree build would reuse build/lib, where
    a module moved or removed since an earlier build still lies."""
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "runs", "*.egg-info", "__pycache__", ".pytest_cache"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(out), str(source)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = out.glob("ser_studio-*.whl")
    return path


def test_the_wheel_carries_the_model_card_recipe_and_resources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in SHIPPED if f"{PACKAGE}/{n}" not in names]
    assert not missing, f"{wheel.name} lacks {missing}"
    icons = [n for n in names if n.startswith(f"{PACKAGE}/resources/icons/") and n.endswith(".svg")]
    assert len(icons) == len(list((ROOT / "resources" / "icons").glob("*.svg"))) > 0
    assert not any("tests/" in n for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ser-studio = ser_studio.main:entry" in zipfile.ZipFile(wheel).read(
        entry_points).decode()


def test_the_wheel_installs_one_name_holding_every_module(wheel):
    """Nothing but ser_studio/ and the dist-info at the top of site-packages, and every module
    of model/ and app/ beneath it (pyproject.toml lists the package folders one by one)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names}
    assert tops == {PACKAGE, "ser_studio-0.1.0.dist-info"}, tops
    sources = sorted(str(f.relative_to(ROOT)) for folder in ("model", "app")
                     for f in (ROOT / folder).rglob("*.py"))
    assert len(sources) > 100
    missing = [s for s in sources if f"{PACKAGE}/{s}" not in names]
    assert not missing, f"{wheel.name} lacks {missing} (a package missing from pyproject.toml?)"


def test_the_installed_wheel_predicts_from_another_folder(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=600)
    rng = np.random.default_rng(0)
    clip = tmp_path / "clip.wav"
    sf.write(clip, (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import sys; from ser_studio import main, model; "
            "print(model.__file__, file=sys.stderr); sys.exit(main.main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", code, "predict", str(clip), "--json",
                           "--no-vad"], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert str(target) in done.stderr  # the wheel's code ran, not the checkout's
    result = json.loads(done.stdout.splitlines()[0])
    assert result["label"] in result["probs"]
    assert str(target / PACKAGE / "assets" / "default_model.safetensors") in done.stderr

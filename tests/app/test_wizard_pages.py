"""Wizard pages 1 and 2: the corpus is checked off the GUI thread; settings are validated."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from app.wizard import TrainingWizard


def write_manifest(root, speakers=("s1", "s2", "s3"), labels=("angry", "sad")):
    """Tiny wavs (0.3 s of noise) and a manifest path,label,speaker,gender listing them."""
    rng = np.random.default_rng(0)
    lines = ["path,label,speaker,gender"]
    for i, spk in enumerate(speakers):
        for label in labels:
            for k in range(2):
                name = f"{spk}_{label}_{k}.wav"
                sf.write(root / name, (0.1 * rng.standard_normal(4800)).astype(np.float32), 16000)
                lines.append(f"{name},{label},{spk},{'F' if i % 2 else 'M'}")
    path = root / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def wizard(qtbot):
    w = TrainingWizard()
    qtbot.addWidget(w)
    w.show()
    return w


def _check(qtbot, page, path, label_map="", classes=""):
    with qtbot.waitSignal(page.checked, timeout=10000) as blocker:
        page.path_edit.setText(str(path))
        page.map_edit.setText(label_map)
        page.classes_edit.setText(classes)
        page.check()
    return blocker.args[0]


def test_corpus_page_reads_a_manifest_off_the_gui_thread(qtbot, wizard, tmp_path):
    page = wizard.corpus_page
    assert not page.isComplete()
    manifest = write_manifest(tmp_path, labels=("angry", "sad", "happy"))
    assert _check(qtbot, page, manifest) is True
    assert page.isComplete()
    assert page.summary["utterances"] == 18
    assert page.summary["labels"] == {"angry": 6, "happy": 6, "sad": 6}
    text = page.summary_label.text()
    assert "manifest" in text and "Utterances" in text and "s1&nbsp;6" in text
    assert "Warning" not in text
    assert page.error_label.text() == ""
    page.classes_edit.setText("angry sad")  # an edit makes the page incomplete until re-checked
    assert not page.isComplete()
    assert _check(qtbot, page, manifest, classes="angry sad") is True
    assert page.summary["labels"] == {"angry": 6, "sad": 6}
    assert page.summary["dropped"] == {"happy": 6}
    assert wizard.train_settings().classes == ("angry", "sad")


def test_corpus_page_refuses_one_class_and_shows_warnings(qtbot, wizard, tmp_path):
    page = wizard.corpus_page
    manifest = write_manifest(tmp_path)
    assert _check(qtbot, page, manifest, classes="angry") is False
    assert "only one class" in page.error_label.text() and not page.isComplete()
    sf.write(tmp_path / "quiet.wav", np.zeros(16000, np.float32), 16000)
    with manifest.open("a") as handle:
        handle.write("quiet.wav,sad,s1,M\ns1_angry_0.wav,angry,s1,M\n")
    assert _check(qtbot, page, manifest) is True
    text = page.summary_label.text()
    assert "listed more than once" in text and "s1_angry_0.wav x2" in text
    assert "are silent" in text and "quiet.wav (digital silence)" in text
    assert "Read the warnings" in page.status_label.text()


def test_corpus_page_label_map_and_bad_class(qtbot, wizard, tmp_path):
    page = wizard.corpus_page
    manifest = write_manifest(tmp_path)
    assert _check(qtbot, page, manifest, label_map="angry=happy") is True
    assert page.summary["labels"] == {"happy": 6, "sad": 6}
    assert _check(qtbot, page, manifest, classes="fearful") is False
    assert "fearful" in page.error_label.text() and not page.isComplete()


def test_corpus_page_bad_path_shows_error(qtbot, wizard, tmp_path):
    page = wizard.corpus_page
    missing = tmp_path / "nowhere"
    assert _check(qtbot, page, missing) is False
    assert "nowhere" in page.error_label.text() and "does not exist" in page.error_label.text()
    assert not page.isComplete() and page.summary_label.text() == ""
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("file,emotion\nx.wav,sad\n")
    assert _check(qtbot, page, bad_csv) is False
    assert "missing column" in page.error_label.text()
    assert not wizard.button(wizard.NextButton).isEnabled()
    wizard.next()
    assert wizard.currentPage() is page  # an incomplete page cannot be left


def test_typing_checks_after_a_pause(qtbot, wizard, tmp_path):
    page = wizard.corpus_page
    manifest = write_manifest(tmp_path)
    with qtbot.waitSignal(page.checked, timeout=10000) as blocker:
        page.path_edit.setText(str(manifest))  # no explicit check(): the timer runs it
    assert blocker.args == [True] and page.isComplete()


def test_setup_page_starts_from_the_shipped_recipe(qtbot, wizard):
    import json

    from model.package_files import assets_dir

    page = wizard.setup_page
    recipe = json.loads((assets_dir() / "recipe_ravdess.json").read_text())
    assert page.recipe_combo.currentData() == str(assets_dir() / "recipe_ravdess.json")
    assert page.frontend_combo.currentData() == recipe["frontend"]["name"]
    assert page.ensemble_spin.value() == recipe["model"]["ensemble"]
    assert page.folds_spin.value() == recipe["train"]["folds"]
    assert not page.arch_combo.isEnabled() and page.folds_spin.isEnabled()
    args = wizard.train_settings().to_args()
    assert args[args.index("--config") + 1] == str(assets_dir() / "recipe_ravdess.json")
    assert "--arch" not in args and "--ensemble" not in args
    page.recipe_combo.setCurrentIndex(page.recipe_combo.findData(""))
    assert page.arch_combo.isEnabled() and "--config" not in wizard.train_settings().to_args()


def test_setup_page_validates_settings(qtbot, wizard, tmp_path):
    page = wizard.setup_page
    page.recipe_combo.setCurrentIndex(page.recipe_combo.findData(""))  # custom settings
    page.arch_combo.setCurrentIndex(page.arch_combo.findData("enhanced"))
    page.frontend_combo.setCurrentIndex(page.frontend_combo.findData("logmel"))
    assert page.isComplete()
    page.folds_spin.setValue(1)
    assert not page.isComplete() and "at least 2" in page.hint_label.text()
    page.folds_spin.setValue(0)
    assert page.folds_spin.text() == "leave-one-speaker-out" and page.isComplete()
    page.hidden_spin.setValue(20)
    page.ensemble_spin.setValue(3)
    page.stats_check.setChecked(True)
    assert not page.isComplete() and "divisible" in page.hint_label.text()
    page.arch_combo.setCurrentIndex(page.arch_combo.findData("baseline"))
    assert page.isComplete() and not page.adversarial_spin.isEnabled()
    assert not page.encoder_edit.isEnabled()
    page.frontend_combo.setCurrentIndex(page.frontend_combo.findData("hubert"))
    assert page.encoder_edit.isEnabled()
    page.out_edit.setText("")
    assert not page.isComplete()
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.txt").write_text("x")
    page.out_edit.setText(str(full))
    asked = []
    page.confirm = lambda text: asked.append(text) or False
    assert page.validatePage() is False and "not empty" in asked[0]
    page.confirm = lambda text: True
    assert page.validatePage() is True
    values = page.values()
    assert values["frontend"] == "hubert" and values["arch"] == "baseline"
    assert values["folds"] == 0 and values["hidden"] == 20 and values["out_dir"] == str(full)
    assert values["ensemble"] == 3 and values["stats_branch"] is True
    assert values["loudness"] is True and values["channel_variants"] == 4  # on by default
    assert not page.band_norm_check.isEnabled()  # CMVN is for log-mel bands only
    page.loudness_check.setChecked(False)
    page.channel_spin.setValue(0)
    assert page.values()["loudness"] is False and page.values()["channel_variants"] == 0

"""Wizard pages 1 and 2: the corpus is checked off the GUI thread; settings are validated."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from PyQt5.QtWidgets import QWidget

from ser_studio.app.wizard.wizard import TrainingWizard


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
    assert wizard.run_sections()["corpus"]["classes"] == ["angry", "sad"]


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


def _recipe():
    from ser_studio.model.config.run import configs_from_sections, read_sections
    from ser_studio.model.package_files import assets_dir

    return configs_from_sections(read_sections(assets_dir() / "recipe_shipped.json"))


def test_setup_page_defaults_are_the_shipped_recipe(qtbot, wizard):
    from ser_studio.model.config.schema import config_to_dict
    from ser_studio.model.package_files import assets_dir

    page = wizard.setup_page
    assert page.start_combo.currentData() == str(assets_dir() / "recipe_shipped.json")
    frontend, model, train = page.configs()
    want_frontend, want_model, want_train = _recipe()
    assert frontend == want_frontend and train == want_train
    assert config_to_dict(model) == config_to_dict(want_model)
    assert page.editors["frontend.name"].widget.currentData() == "speech_embedding+ge2e"
    assert page.editors["model.ensemble"].widget.value() == 2 and page.isComplete()
    assert not page.advanced.body.isVisibleTo(page)  # Advanced starts closed
    page.start_combo.setCurrentIndex(page.start_combo.findData(""))  # the config defaults
    assert page.configs()[1].arch == "enhanced" and page.configs()[2].folds == 5


def test_every_config_field_has_an_editor_and_advanced_holds_the_rest(qtbot, wizard):
    import dataclasses

    from ser_studio.app.wizard.config_fields import DERIVED
    from ser_studio.app.wizard.setup_page import COMMON
    from ser_studio.model.config.schema import (AugmentConfig, ChannelConfig, FrontendConfig,
                                                ModelConfig, TrainConfig)

    page = wizard.setup_page
    nested = {"augment", "channel"}
    paths = {f"{section}.{f.name}" for section, cls in (("frontend", FrontendConfig),
                                                         ("model", ModelConfig),
                                                         ("train", TrainConfig))
             for f in dataclasses.fields(cls) if f.name not in nested}
    paths |= {f"train.augment.{f.name}" for f in dataclasses.fields(AugmentConfig)}
    paths |= {f"train.channel.{f.name}" for f in dataclasses.fields(ChannelConfig)}
    derived = {f"model.{f.name}" for f in dataclasses.fields(ModelConfig)
               if "derived" in f.metadata}  # the schema's one declaration drives the wizard
    assert DERIVED == derived and "model.input_dim" in derived
    assert set(page.editors) == paths - DERIVED
    advanced = {w.objectName() for w in page.advanced.body.findChildren(QWidget)}
    assert advanced >= paths - DERIVED - set(COMMON)
    assert page.editors["train.label_smoothing"].widget.__class__.__name__ == "FloatSpin"
    assert page.editors["train.augment.warp_range"].widget.text() == "0.9, 1.1"
    for path, choices in (("frontend.band_norm", ["none", "cmvn"]),
                          ("train.speaker_norm", ["global", "speaker", "corpus"])):
        combo = page.editors[path].widget  # choices read from the config's own check
        assert [combo.itemData(i) for i in range(combo.count())] == choices


def _run_json(qtbot, wizard, tmp_path):
    """Fill the corpus page, then write the run.json the wizard would start."""
    from ser_studio.app.wizard.settings import write_run

    with qtbot.waitSignal(wizard.corpus_page.checked, timeout=10000):
        wizard.corpus_page.path_edit.setText(str(write_manifest(tmp_path)))
        wizard.corpus_page.map_edit.setText("angry=happy")
        wizard.corpus_page.check()
    return json.loads(write_run(tmp_path / "run", wizard.run_sections()).read_text())


def test_an_advanced_change_reaches_the_run_json(qtbot, wizard, tmp_path):
    from ser_studio.model.config.run import configs_from_sections

    page = wizard.setup_page
    page.advanced.set_open(True)
    page.editors["train.label_smoothing"].widget.setValue(0.25)
    page.editors["train.augment.stretch_range"].widget.setText("0.8, 1.25")
    page.editors["frontend.loudness"].widget.setCurrentIndex(
        page.editors["frontend.loudness"].widget.findData("none"))
    page.editors["model.use_posenc"].widget.setChecked(False)
    page.max_folds_spin.setValue(2)
    assert page.isComplete() and page.error_label.text() == ""
    run = _run_json(qtbot, wizard, tmp_path)
    assert run["train"]["label_smoothing"] == 0.25
    assert run["train"]["augment"]["stretch_range"] == [0.8, 1.25]
    assert run["frontend"]["loudness"] == "none" and run["model"]["use_posenc"] is False
    assert run["train"]["epochs"] == 30 and run["model"]["ensemble"] == 2  # the recipe's
    assert run["corpus"]["path"].endswith("manifest.csv") and run["corpus"]["map"] == [
        "angry=happy"]
    assert run["run"] == {"final": True, "max_folds": 2}
    assert configs_from_sections(run)[2] == page.configs()[2]  # what train --config reads


@pytest.mark.parametrize("path,value,message", [
    ("train.label_smoothing", 1.5, "TrainConfig.label_smoothing: 1.5"),
    ("train.augment.stretch_range", "1.2, 0.9", "AugmentConfig.stretch_range"),
    ("train.channel.snr_db", "five, 30", "ChannelConfig.snr_db: 'five, 30'"),
    ("train.folds", 1, "folds must be 0"),
    ("train.augment.warp_prob", 0.3, "train.augment.warp_prob = 0.3"),  # not for this frontend
])
def test_an_invalid_value_shows_the_error_and_blocks_the_start(qtbot, wizard, path, value,
                                                               message):
    page = wizard.setup_page
    editor = page.editors[path]
    if isinstance(value, str):
        editor.widget.setText(value)
    else:
        editor.widget.setValue(value)
    assert message in page.error_label.text()
    assert not page.isComplete()
    assert not wizard.button(wizard.NextButton).isEnabled()
    with pytest.raises(ValueError, match=message.split(":")[0]):
        wizard.run_sections()
    editor.set_value(dataclasses_value(page, path))
    assert page.isComplete() and page.error_label.text() == ""


def dataclasses_value(page, path):
    """The shipped recipe's value of ``path``."""
    from ser_studio.app.wizard.config_fields import get_path

    frontend, model, train = _recipe()
    return get_path({"frontend": frontend, "model": model, "train": train}, path)


def test_setup_page_run_options_and_output_folder(qtbot, wizard, tmp_path):
    page = wizard.setup_page
    page.editors["train.folds"].widget.setValue(0)
    assert page.editors["train.folds"].widget.text() == "leave-one-speaker-out"
    assert page.isComplete()
    page.out_edit.setText(str(tmp_path / "out"))
    page.out_edit.setText("")
    assert not page.isComplete() and "output folder" in page.error_label.text()
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.txt").write_text("x")
    page.out_edit.setText(str(full))
    asked = []
    page.confirm = lambda text: asked.append(text) or False
    assert page.validatePage() is False and "not empty" in asked[0]
    page.confirm = lambda text: True
    assert page.validatePage() is True and wizard.run_dir() == full
    page.final_check.setChecked(False)
    assert page.run_options() == {"final": False, "max_folds": None}


def test_setup_page_starts_from_an_earlier_run_json(qtbot, wizard, tmp_path):
    page = wizard.setup_page
    page.editors["train.epochs"].widget.setValue(7)
    page.max_folds_spin.setValue(1)
    run = _run_json(qtbot, wizard, tmp_path)
    page.start_combo.setCurrentIndex(page.start_combo.findData(""))
    assert page.configs()[2].epochs == 40 and page.max_folds_spin.value() == 0
    page.start_combo.addItem("earlier", str(tmp_path / "run" / "run.json"))
    page.start_combo.setCurrentIndex(page.start_combo.count() - 1)
    assert page.configs()[2].epochs == 7 and page.max_folds_spin.value() == 1
    assert run["train"]["epochs"] == 7


def test_the_encoder_field_is_shown_only_for_hubert_frontends(qtbot, wizard):
    page = wizard.setup_page
    encoder = (page.encoder_label, page.editors["frontend.encoder"].widget, page.encoder_button)
    frontend = page.editors["frontend.name"]
    for name, shown in (("speech_embedding+ge2e", False), ("hubert", True), ("logmel", False),
                        ("logmel+hubert", True), ("ge2e", False),
                        ("whisper-base+speech_embedding+ge2e", False)):
        frontend.set_value(name)
        assert page.configs()[0].name == name
        assert [w.isVisibleTo(page) for w in encoder] == [shown] * 3, name


def test_the_whisper_frontends_are_offered_by_name(qtbot, wizard):
    combo = wizard.setup_page.editors["frontend.name"].widget
    offered = {combo.itemData(i): combo.itemText(i) for i in range(combo.count())}
    for name, size in (("whisper-base", "base"), ("whisper-tiny.en", "tiny.en"),
                       ("whisper-base+speech_embedding+ge2e", "base")):
        assert f"Whisper {size}" in offered[name], name


def test_setup_hints_are_plain_and_name_the_corpus_speakers(qtbot, wizard, tmp_path):
    from ser_studio.app.wizard import setup_page

    page = wizard.setup_page
    arch = page.editors["model.arch"].widget
    texts = [arch.itemText(i) for i in range(arch.count())] + list(setup_page.NOTES.values())
    jargon = ("seed", "BiGRU", "AdaIN", "k-fold", "utterance")
    assert not [t for t in texts + [setup_page.FOLDS_NOTE] if any(j in t for j in jargon)]
    assert setup_page.COMMON["train.folds"] == "Folds"  # no "k" that "Run folds" reuses
    with qtbot.waitSignal(wizard.corpus_page.checked, timeout=10000):
        wizard.corpus_page.path_edit.setText(str(write_manifest(tmp_path)))
        wizard.corpus_page.check()
    wizard.next()
    assert wizard.currentPage() is page
    assert page.folds_note.text().endswith("this corpus has 3 speakers: 2 to 3, or 0")
    assert page.editors["train.folds"].widget.isEnabled()

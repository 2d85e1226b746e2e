"""The training and results pages, driven by a fake trainer script run through QProcess."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PyQt5.QtGui import QColor, QImage
from PyQt5.QtWidgets import QApplication

from ser_studio.app.wizard.wizard import TrainingWizard
from test_wizard_pages import write_manifest

FAKE = Path(__file__).with_name("fake_trainer.py")


@pytest.fixture
def pngs(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for name, colour in (("confusion.png", "#3f7cc4"), ("per_speaker.png", "#d64541")):
        image = QImage(300, 200, QImage.Format_RGB32)
        image.fill(QColor(colour))
        image.save(str(folder / name))
    return folder


@pytest.fixture
def wizard(qtbot, tmp_path, monkeypatch, pngs):
    """A wizard on the fake trainer, already past a valid corpus page and a setup page."""
    monkeypatch.setenv("FAKE_PNG_DIR", str(pngs))
    w = TrainingWizard(python=sys.executable, main_py=FAKE)
    w.opened = []
    w.results_page.open_url = lambda url: w.opened.append(url.toLocalFile()) or True
    qtbot.addWidget(w)
    w.show()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    page = w.corpus_page
    with qtbot.waitSignal(page.checked, timeout=10000):
        page.path_edit.setText(str(write_manifest(corpus)))
        page.check()
    w.next()
    assert w.currentPage() is w.setup_page
    w.setup_page.confirm = lambda text: True  # a second run reuses the output folder
    w.setup_page.editors["train.epochs"].widget.setValue(4)
    w.setup_page.editors["train.folds"].widget.setValue(3)  # the corpus has 3 speakers
    w.setup_page.out_edit.setText(str(tmp_path / "run"))
    return w


def _start(w):
    """Settings -> summary -> Start training (from wherever before the training page)."""
    while w.currentPage() is not w.train_page:
        page = w.currentPage()
        w.next()
        assert w.currentPage() is not page, "the wizard did not move on"


def _run(qtbot, w, *, succeeded=True, timeout=15000):
    with qtbot.waitSignal(w.train_page.runFinished, timeout=timeout) as blocker:
        _start(w)
    assert blocker.args == [succeeded]


def test_settings_lead_to_a_summary_and_only_start_runs(qtbot, wizard, tmp_path):
    """Next on the settings starts nothing: the summary says what will run, Start runs it."""
    from ser_studio.app.wizard.run_plan import TIME_NOTE

    wizard.next()
    page = wizard.summary_page
    assert wizard.currentPage() is page
    assert wizard.train_page.process is None and not (tmp_path / "run" / "args.json").exists()
    assert wizard.button(wizard.NextButton).text() == "Start training"
    rows = dict(page.rows)
    assert rows["Clips"] == "12 from 3 speakers (angry 6, sad 6)"
    assert rows["Protocol"].startswith("the 3 speakers split into 3 groups of 1: each fold")
    assert rows["Folds to run"] == "all 3"
    assert rows["Features"].startswith("speech_embedding + GE2E (pretrained, offline) for 12 "
                                       "clips")
    assert rows["Recording chains"].startswith("1 variant of each training clip")
    assert rows["Training"].startswith("3 folds × 2 networks × up to 4 epochs")
    assert rows["Estimated time"] == TIME_NOTE and rows["Output folder"] == str(tmp_path / "run")
    assert "Start training" not in page.plan_label.text() and "Protocol" in page.plan_label.text()
    wizard.back()
    wizard.setup_page.max_folds_spin.setValue(2)
    wizard.setup_page.final_check.setChecked(False)
    wizard.next()
    assert dict(page.rows)["Folds to run"] == "the first 2 of 3"  # rebuilt on every visit
    assert dict(page.rows)["Final model"] == "none"
    with qtbot.waitSignal(wizard.train_page.runFinished, timeout=15000):
        wizard.next()
        assert wizard.currentPage() is wizard.train_page and wizard.train_page.running()


def test_the_summary_refuses_more_folds_than_speakers(qtbot, wizard):
    wizard.setup_page.editors["train.folds"].widget.setValue(4)
    wizard.next()
    page = wizard.summary_page
    assert "4 folds need at least 4 speakers; this corpus has 3" in page.error_label.text()
    assert not page.isComplete() and not wizard.button(wizard.NextButton).isEnabled()
    wizard.back()
    wizard.setup_page.editors["train.folds"].widget.setValue(0)  # one fold per speaker
    wizard.next()
    assert page.isComplete() and page.error_label.text() == ""
    assert dict(page.rows)["Protocol"] == "leave one speaker out: 3 folds, each tests one speaker"


def test_the_status_line_follows_extraction_and_returns_to_the_run(qtbot):
    from ser_studio.app.wizard.train_page import TrainPage
    from ser_studio.model.training.progress import ProgressEvent as E

    page = TrainPage()
    qtbot.addWidget(page)
    run_line = "grouped-k-fold: 2 folds, labels a, b"
    for event, status in (
            (E("start", protocol="grouped-k-fold", folds=2, epochs=3, labels=["a", "b"]),
             run_line),
            (E("extract", stage="features", files_done=0, files_total=9), "Computing the"),
            (E("extract", stage="features", files_done=9, files_total=9), run_line),
            (E("fold_start", fold=1, test_speakers=["s1"]), run_line),
            (E("extract", stage="channel variants", files_done=2, files_total=5),
             "Making the recording-chain variants"),
            (E("epoch", fold=1, epoch=1, epochs=3, train_loss=1.0), run_line),
            (E("final_start", epochs=2), "Training the final model"),
            (E("extract", stage="channel variants", files_done=1, files_total=5), "Making"),
            (E("extract", stage="channel variants", files_done=5, files_total=5),
             "Training the final model on every speaker for 2 epochs.")):
        page._event(event)
        assert page.status_label.text().startswith(status), (event.kind, status)


def test_extraction_shows_files_and_time_left_and_stop_leaves_an_empty_bar(
        qtbot, wizard, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "extracting")
    page = wizard.train_page
    _start(wizard)
    qtbot.waitUntil(lambda: "10/40" in page.bar.format(), timeout=15000)
    assert page.bar.format() == "extracting features: 10/40 files · about 1 min left"
    assert (page.bar.value(), page.bar.maximum()) == (10, 40)
    assert page.status_label.text().startswith("Computing the features of every clip")
    with qtbot.waitSignal(page.runFinished, timeout=10000) as blocker:
        page.stop_button.click()
    assert blocker.args == [False]
    assert page.bar.format() == "cancelled: 0 of 3 folds"
    assert (page.bar.value(), page.bar.maximum()) == (0, 3)  # no work kept: an empty bar
    assert "No fold finished" in page.status_label.text()


def test_full_run_to_results_and_model_ready(qtbot, wizard, tmp_path):
    page = wizard.train_page
    _run(qtbot, wizard)
    args = json.loads((tmp_path / "run" / "args.json").read_text())
    run_file = tmp_path / "run" / "run.json"
    assert args == ["train", "--progress-json", "--config", str(run_file), "--out",
                    str(tmp_path / "run")]
    run = json.loads(run_file.read_text())  # the run folder keeps what the run was given
    assert run["corpus"]["path"].endswith("manifest.csv") and run["train"]["epochs"] == 4
    assert run["model"]["ensemble"] == 2  # the rest is the shipped recipe
    assert page.fold_table.rowCount() == 3
    assert [page.fold_table.item(r, 3).text() for r in range(3)] == ["0.550", "0.700", "0.600"]
    assert page.fold_table.item(0, 1).text() == "spk1"
    assert page.fold_table.item(1, 5).text() == "3"
    x, y = page.curves.train_loss.getData()  # the final model's curve is shown last
    assert list(x) == [1, 2] and list(y) == [0.5, 0.5]
    assert page.bar.format() == "finished: 3 of 3 folds"
    assert "a stray print" in page.log_view.toPlainText()
    assert "fold 3 done" in page.log_view.toPlainText()
    assert page.isComplete() and wizard.button(wizard.NextButton).isEnabled()
    results = wizard.results_page
    with qtbot.waitSignal(results.imagesShown, timeout=5000):
        wizard.next()
    assert wizard.currentPage() is results
    text = results.metrics_label.text()
    assert "0.617" in text and "± 0.050" in text and "UA" in text
    assert all(label.has_image() for label in results.plot_labels.values())
    final = str(tmp_path / "run" / "model.safetensors")
    assert final in results.model_label.text()
    results.report_button.click()
    assert wizard.opened == [str(tmp_path / "run" / "report.md")]
    assert results.open_failed_label.isHidden()
    results.open_url = lambda url: False  # no file manager on this machine
    results.folder_button.click()
    run = str(tmp_path / "run")
    assert not results.open_failed_label.isHidden() and run in results.open_failed_label.text()
    assert QApplication.clipboard().text() == run
    with qtbot.waitSignal(wizard.modelReady, timeout=1000) as ready:
        results.use_button.click()
    assert ready.args == [final]


def test_cancel_sends_sigterm_and_keeps_finished_folds(qtbot, wizard, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "slow")
    page = wizard.train_page
    _start(wizard)
    qtbot.waitUntil(lambda: len(page.progress.finished_folds()) == 1, timeout=15000)
    with qtbot.waitSignal(page.runFinished, timeout=10000) as blocker:
        page.stop_button.click()
        assert "Stopping" in page.status_label.text()
    assert blocker.args == [True]
    assert (tmp_path / "run" / "signals.txt").read_text() == "SIGTERM\n"
    assert "Cancelled after 1 finished fold." in page.status_label.text()
    assert page.bar.format() == "cancelled: 1 of 3 folds"
    with qtbot.waitSignal(wizard.results_page.imagesShown, timeout=5000):
        wizard.next()
    results = wizard.results_page
    assert "cancelled" in results.metrics_label.text()
    fold_model = str(tmp_path / "run" / "fold_1" / "model.safetensors")
    assert "best fold 1" in results.model_label.text()
    with qtbot.waitSignal(wizard.modelReady, timeout=1000) as ready:
        results.use_button.click()
    assert ready.args == [fold_model]


def test_trainer_ignoring_sigterm_is_killed(qtbot, wizard, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "stubborn")
    wizard.kill_after_ms = 300
    page = wizard.train_page
    _start(wizard)
    qtbot.waitUntil(lambda: page.progress.fold == 1, timeout=15000)
    with qtbot.waitSignal(page.runFinished, timeout=10000) as blocker:
        page.stop()
    assert blocker.args == [False]
    assert "SIGTERM" in (tmp_path / "run" / "signals.txt").read_text()
    assert "killed" in page.log_view.toPlainText()
    assert "was stopped" in page.error_label.text()
    assert not page.isComplete()


def test_error_event_and_crash_are_shown(qtbot, wizard, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "error")
    page = wizard.train_page
    _run(qtbot, wizard, succeeded=False)
    assert "exit code 2" in page.error_label.text()
    assert "no utterance left" in page.error_label.text()
    assert not page.isComplete()
    monkeypatch.setenv("FAKE_MODE", "crash")
    wizard.back()  # back to the summary, then start again
    assert wizard.currentPage() is wizard.summary_page
    _run(qtbot, wizard, succeeded=False)
    assert "exit code 3" in page.error_label.text()
    assert "out of memory" in page.error_label.text()


def test_missing_interpreter_is_reported(qtbot, wizard, tmp_path):
    wizard.python = str(tmp_path / "no-such-python")
    _run(qtbot, wizard, succeeded=False)
    assert "Could not start" in wizard.train_page.error_label.text()
    assert "no-such-python" in wizard.train_page.error_label.text()


def test_closing_during_a_run_cancels_then_closes(qtbot, wizard, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "slow")
    page = wizard.train_page
    _start(wizard)
    qtbot.waitUntil(lambda: page.progress.fold == 1, timeout=15000)
    with qtbot.waitSignal(wizard.rejected, timeout=10000):
        wizard.reject()
        assert wizard.isVisible()  # still open until the trainer has stopped
    assert not wizard.isVisible() and not page.running()
    assert (tmp_path / "run" / "signals.txt").read_text() == "SIGTERM\n"

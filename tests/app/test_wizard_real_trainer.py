"""One real run: the wizard drives ``main.py train`` on the synthetic corpus (tiny settings)."""
from __future__ import annotations

import json
from pathlib import Path

from ser_studio.app.wizard.wizard import TrainingWizard
from ser_studio.model.networks.checkpoint import load_checkpoint


def test_wizard_runs_the_real_trainer(qtbot, synth_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the machine's cores are shared
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    corpus = wizard.corpus_page
    with qtbot.waitSignal(corpus.checked, timeout=20000) as checked:
        corpus.path_edit.setText(str(synth_corpus))
        corpus.check()
    assert checked.args == [True]
    assert corpus.summary["kind"] == "iemocap" and len(corpus.summary["sessions"]) == 5
    wizard.next()
    setup = wizard.setup_page
    assert setup.folds_note.text().startswith("not used: this corpus has 5 sessions")
    assert not setup.editors["train.folds"].widget.isEnabled()
    setup.start_combo.setCurrentIndex(setup.start_combo.findData(""))  # the config defaults
    for path, value in (("model.arch", "baseline"), ("frontend.name", "logmel"),
                        ("train.epochs", 2), ("model.hidden", 8), ("train.batch_size", 16),
                        ("train.augment.noise_prob", 0.25)):
        setup.editors[path].set_value(value)
    setup.max_folds_spin.setValue(1)
    setup.final_check.setChecked(False)
    setup.out_edit.setText(str(tmp_path / "run"))
    page = wizard.train_page
    seen, handle = [], page._event  # the events the page is given, in order
    page._event = lambda event: (seen.append(event.kind), handle(event))
    wizard.next()
    assert wizard.currentPage() is wizard.summary_page
    with qtbot.waitSignal(page.runFinished, timeout=120000) as finished:
        wizard.next()
    assert finished.args == [True], page.error_label.text() + page.log_view.toPlainText()
    assert page.progress.protocol == "leave-one-session-out"
    assert seen.index("start") < seen.index("extract") < seen.index("fold_start")
    assert page.progress.extract is None  # extraction reported its last file
    assert page.fold_table.rowCount() == 1
    assert page.fold_table.item(0, 1).text() == "Ses01F, Ses01M"
    assert len(page.progress.curves.epochs) >= 1
    results = wizard.results_page
    with qtbot.waitSignal(results.imagesShown, timeout=10000):
        wizard.next()
    for name in ("confusion.png", "per_speaker.png"):  # the trainer's own plots are shown
        assert results.plot_labels[name].has_image(), name
    fold_model = tmp_path / "run" / "fold_1" / "model.safetensors"
    with qtbot.waitSignal(wizard.modelReady, timeout=1000) as ready:
        results.use_button.click()
    assert Path(ready.args[0]) == fold_model
    assert load_checkpoint(ready.args[0]).labels == ["angry", "happy", "neutral", "sad"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["train"] == metrics["configs"]["train"]  # the run.json it was started with
    assert run["train"]["augment"]["noise_prob"] == 0.25 and run["model"]["hidden"] == 8
    assert f"{metrics['aggregate']['ua']['mean']:.3f}" in results.metrics_label.text()

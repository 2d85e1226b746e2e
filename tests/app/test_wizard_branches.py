"""Branches of the wizard's training run (issue 21 item 7): a run cancelled mid-run by Back and
started again at once (the cancelled trainer's late events and exit never reach the new run),
and cancelling a process that is not running."""
from __future__ import annotations

from ser_studio.app.wizard.train_process import TrainProcess
from test_wizard_run import _start, pngs, wizard  # noqa: F401  (fixtures)


def test_back_mid_run_then_a_new_run_hears_only_its_own_trainer(qtbot, wizard, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "slow")
    page = wizard.train_page
    _start(wizard)
    qtbot.waitUntil(lambda: page.progress.fold == 1, timeout=15000)
    old = page.process
    gone, finished = [], []
    old.destroyed.connect(lambda: gone.append(True))  # deleted once its trainer has ended
    page.runFinished.connect(finished.append)
    wizard.back()  # cleanupPage: SIGTERM to the running trainer
    assert wizard.currentPage() is wizard.summary_page and old.cancelled
    monkeypatch.setenv("FAKE_MODE", "normal")
    wizard.next()  # a second run while the first one is still stopping
    assert wizard.currentPage() is page and page.process is not old and not gone
    qtbot.waitUntil(lambda: bool(finished), timeout=20000)
    qtbot.waitUntil(lambda: bool(gone), timeout=10000)
    qtbot.wait(100)  # any late signal of the old process would have arrived by now
    assert finished == [True]
    assert set((tmp_path / "run" / "signals.txt").read_text().split()) == {"SIGTERM"}  # old's
    assert page.status_label.text() == "Finished: 3 folds. Press Next for the results."
    assert page.fold_table.rowCount() == 3 and page.isComplete()
    assert not page.process.cancelled


def test_cancelling_a_process_that_is_not_running_does_nothing(qtbot):
    process = TrainProcess(kill_after_ms=50)
    process.cancel()
    assert not process.cancelled and not process._kill_timer.isActive()

"""Screenshots of the training wizard's summary page and of a real run extracting features.

    QT_QPA_PLATFORM=offscreen python -m bench.wizard_screens CORPUS OUT_DIR

CORPUS: a corpus folder or manifest (e.g. a RAVDESS folder). The wizard starts from the
shipped recipe; OUT_DIR gets wizard_summary.png (the summary page with Start) and
wizard_extracting.png (the training page once the real trainer has reported some extracted
files; features go to a fresh temporary cache, so they are computed, not read back). The run
is stopped after the screenshot.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("wizard_screens")


def _wait(app, condition, timeout_s: float, what: str) -> None:
    """Process Qt events until ``condition()`` holds; RuntimeError naming ``what`` after
    ``timeout_s`` seconds."""
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def _settle(app, seconds: float = 0.5) -> None:
    """Let layouts and painting catch up before a screenshot."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", help="corpus folder or manifest")
    parser.add_argument("out", type=Path, help="folder for the PNGs")
    parser.add_argument("--min-files", type=int, default=40,
                        help="files extracted before the second screenshot (default 40)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = Path(tempfile.mkdtemp(prefix="wizard-screens-"))
    os.environ["SER_CACHE_DIR"] = str(scratch / "cache")  # inherited by the trainer
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from PyQt5.QtWidgets import QApplication

    from ser_studio.app.wizard.wizard import TrainingWizard

    app = QApplication.instance() or QApplication(sys.argv)
    wizard = TrainingWizard()
    wizard.show()
    corpus = wizard.corpus_page
    corpus.path_edit.setText(args.corpus)
    corpus.check()
    _wait(app, corpus.isComplete, 300, "the corpus check")
    wizard.next()
    wizard.setup_page.out_edit.setText(str(scratch / "run"))
    wizard.next()
    if wizard.currentPage() is not wizard.summary_page:
        raise RuntimeError(f"settings not accepted: {wizard.setup_page.error_label.text()}")
    args.out.mkdir(parents=True, exist_ok=True)
    _settle(app)
    wizard.grab().save(str(args.out / "wizard_summary.png"))
    page = wizard.train_page
    wizard.next()
    _wait(app, lambda: page.progress.extract is not None
          and (page.progress.extract.files_done or 0) >= args.min_files, 600,
          f"{args.min_files} extracted files")
    _settle(app)
    wizard.grab().save(str(args.out / "wizard_extracting.png"))
    log.info("bar: %s; status: %s", page.bar.format(), page.status_label.text())
    page.stop()
    _wait(app, lambda: not page.running(), 60, "the trainer to stop")
    log.info("after Stop: %s", page.bar.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())

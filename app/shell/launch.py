"""Start the desktop app: ``python main.py [--model CKPT] [--history DB_PATH] [--device
NAME_OR_INDEX] [--replay AUDIO_FILE]``.

Sets up logging (stderr and a rotating log file), the QApplication and its theme, and a global
exception hook that logs every uncaught exception (any thread) and shows at most one dialog.
"""
from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
import threading
import traceback
from pathlib import Path

import platformdirs
from PyQt5.QtCore import QObject, Qt, pyqtSignal
from PyQt5.QtWidgets import QApplication, QMessageBox

log = logging.getLogger(__name__)

APP_NAME = "ser-studio"
# the names of the log handlers setup_logging adds (a second call adds none)
HANDLER_PREFIX = "ser_studio.app."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py", description="SER Studio: live speech emotion recognition (desktop app).")
    parser.add_argument("--model", metavar="CKPT", help="checkpoint or run folder to load "
                        "(default: the last one used, else assets/default_model.safetensors)")
    parser.add_argument("--history", metavar="DB_PATH", help="history database (default: "
                        "history.sqlite3 in the user's data directory)")
    parser.add_argument("--device", metavar="NAME_OR_INDEX",
                        help="input device: index or (part of) its name")
    parser.add_argument("--replay", metavar="AUDIO_FILE",
                        help="listen to this file, looped in real time, instead of a microphone "
                             "(demos, machines without one)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def setup_logging(verbose: bool = False) -> Path | None:
    """Log to stderr and to a rotating file in the user's log directory (returned)."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not any((h.get_name() or "").startswith(HANDLER_PREFIX) for h in root.handlers):
        err = logging.StreamHandler()
        err.setFormatter(fmt)
        err.set_name(HANDLER_PREFIX + "stderr")
        root.addHandler(err)
        try:
            folder = Path(platformdirs.user_log_dir(APP_NAME))
            folder.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                folder / "app.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        except OSError as exc:
            log.warning("no log file: %s", exc)
            return None
        handler.setFormatter(fmt)
        handler.set_name(HANDLER_PREFIX + "file")
        root.addHandler(handler)
        return folder / "app.log"
    return None


class ExceptionHook(QObject):
    """Logs uncaught exceptions from any thread; shows one dialog at a time on the GUI thread
    (further exceptions while it is open are only logged)."""

    _show = pyqtSignal(str, str)

    def __init__(self, log_path: Path | None = None):
        super().__init__()
        self.log_path = log_path
        self.dialog: QMessageBox | None = None
        self.shown = 0
        self._show.connect(self._show_dialog, Qt.QueuedConnection)

    def install(self) -> None:
        sys.excepthook = self.handle
        threading.excepthook = lambda a: self.handle(a.exc_type, a.exc_value, a.exc_traceback)

    def handle(self, exc_type, exc_value, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        text = "".join(traceback.format_exception(exc_type, exc_value, tb))
        log.error("uncaught exception:\n%s", text)
        self._show.emit(f"{exc_type.__name__}: {exc_value}", text)

    def _show_dialog(self, summary: str, details: str) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            return
        where = f"\n\nDetails are in the log: {self.log_path}" if self.log_path else ""
        self.dialog = QMessageBox(QMessageBox.Critical, "Unexpected error",
                                  f"Something went wrong: {summary}{where}\n\n"
                                  "The program keeps running.", QMessageBox.Ok)
        self.dialog.setDetailedText(details)
        self.dialog.setWindowModality(Qt.NonModal)
        self.dialog.show()
        self.shown += 1


def open_history(path: str | None):
    """(the HistoryStore at ``path`` (default location when None), "") or, when it cannot be
    opened, (None, the message a user sees: what failed, where the database is, what to do)."""
    from ser_studio.app.history.history_store import (HistoryError, HistoryStore,
                                                      default_history_path)

    target = Path(path) if path else default_history_path()
    try:
        return HistoryStore(target), ""
    except HistoryError as exc:
        log.error("history disabled: %s", exc)
        problem = str(exc).removeprefix(f"{target}: ")
        return None, (f"The history database could not be opened: {problem}.\n\n"
                      f"Database: {target}\n\nPredictions are shown but not saved. Move or "
                      "delete that file to start a new history, or choose another file with "
                      "python main.py --history PATH.")


def display_problem(environ=None, platform: str | None = None) -> str:
    """Why Qt could not open a window here ("" when it can): on Linux, no X11 or Wayland
    display and no QT_QPA_PLATFORM (Qt would abort the process)."""
    environ = os.environ if environ is None else environ
    if not (platform or sys.platform).startswith("linux"):
        return ""
    if any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        return ""
    return ("no display: the desktop app needs a screen (DISPLAY or WAYLAND_DISPLAY). Run it "
            "in a desktop session, or set QT_QPA_PLATFORM=offscreen to run it without one. "
            "The command-line tools (python main.py --help) need no display.")


def startup_problem(args: argparse.Namespace) -> str:
    """What makes starting pointless ("" when nothing): a missing replay file or model."""
    for option, value in (("--replay", args.replay), ("--model", args.model)):
        if value and not Path(value).expanduser().exists():
            return f"{option} {value}: not found"
    return display_problem()


def main(argv: list[str] | None = None) -> int:
    """Run the app until its window closes; returns the exit code (2: could not start)."""
    args = build_parser().parse_args(argv if argv is not None else sys.argv[1:])
    problem = startup_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    log_path = setup_logging(args.verbose)
    app = QApplication.instance()
    if app is None:  # these attributes must be set before the QApplication exists
        QApplication.setAttribute(Qt.AA_EnableHighDpiScaling, True)
        QApplication.setAttribute(Qt.AA_UseHighDpiPixmaps, True)
        app = QApplication([sys.argv[0]])
    app.setApplicationName("SER Studio")
    app.setOrganizationName(APP_NAME)
    hook = ExceptionHook(log_path)
    hook.install()
    from ser_studio.app.shell.main_window import MainWindow
    from ser_studio.app.shell.theme import apply_theme

    apply_theme(app)
    history, history_problem = open_history(args.history)
    factory = None
    if args.replay:
        from ser_studio.app.live.replay import replay_factory

        factory = replay_factory(args.replay, loop=True)
    window = MainWindow(model_path=args.model, history=history, device=args.device,
                        stream_factory=factory)
    window.show()
    if history is None:
        window.show_error("History", history_problem)
    code = app.exec_()
    return _exit(code)


def _exit(code: int) -> int:
    """Return the exit code, or end the process at once when a worker thread is still busy
    (destroying a running QThread would crash at interpreter exit)."""
    from ser_studio.app.live.inference_thread import threads_still_running
    from ser_studio.app.live.listening import recorders_still_running

    busy = threads_still_running() + recorders_still_running()
    if busy:
        log.warning("%d worker thread(s) still busy at exit; ending the process", len(busy))
        logging.shutdown()
        os._exit(code)
    return code

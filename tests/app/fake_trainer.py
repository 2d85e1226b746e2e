"""A stand-in for ``main.py train --progress-json`` used by the wizard tests.

Prints canned progress events with small sleeps (one event split across two writes, one
non-JSON line, logs on stderr), records its arguments in OUT/args.json and its signals in
OUT/signals.txt, and copies PNGs from $FAKE_PNG_DIR into OUT. $FAKE_MODE:
normal | slow (long epochs, for cancelling) | extracting (stays in feature extraction, 10 of
40 files done after 20 s, until SIGTERM) | stubborn (ignores SIGTERM) | error (an "error"
event, exit 2) | crash (a traceback on stderr, exit 3, no events).
"""
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

MODE = os.environ.get("FAKE_MODE", "normal")
argv = sys.argv[1:]
out = Path(argv[argv.index("--out") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / "args.json").write_text(json.dumps(argv))
cancelled = False


def on_term(signum, _frame):
    global cancelled
    with open(out / "signals.txt", "a") as fh:
        fh.write(f"{signal.Signals(signum).name}\n")
    if MODE != "stubborn":
        cancelled = True


signal.signal(signal.SIGTERM, on_term)


def emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def nap(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not cancelled:
        time.sleep(0.01)


if MODE == "crash":
    sys.stderr.write("Traceback (most recent call last):\nRuntimeError: out of memory\n")
    sys.exit(3)
print("INFO ser_studio.model.cli.train: reading corpus", file=sys.stderr, flush=True)
FOLDS, EPOCHS = 3, 4
emit({"event": "start", "protocol": "grouped-k-fold", "folds": FOLDS, "epochs": EPOCHS,
      "labels": ["angry", "happy", "neutral", "sad"]})
sys.stdout.write("a stray print that is not JSON\n")
if MODE == "error":
    emit({"event": "error", "message": "corpus.csv: no utterance left"})
    sys.exit(2)
FILES = 40
emit({"event": "extract", "stage": "features", "files_done": 0, "files_total": FILES,
      "elapsed_s": 0.0})
if MODE == "extracting":
    emit({"event": "extract", "stage": "features", "files_done": 10, "files_total": FILES,
          "elapsed_s": 20.0})
    nap(60)
if not cancelled:
    emit({"event": "extract", "stage": "features", "files_done": FILES, "files_total": FILES,
          "elapsed_s": 21.0})
epoch_sleep = {"slow": 0.4, "stubborn": 0.4}.get(MODE, 0.02)
done_folds = []
for fold in range(1, FOLDS + 1):
    if cancelled:
        break
    emit({"event": "fold_start", "fold": fold, "test_speakers": [f"spk{fold}"],
          "val_speakers": ["spk9"], "train_speakers": ["spk4", "spk5"]})
    for epoch in range(1, EPOCHS + 1):
        nap(epoch_sleep)
        if cancelled:
            break
        line = json.dumps({"event": "epoch", "fold": fold, "epoch": epoch, "epochs": EPOCHS,
                           "train_loss": 1.4 - 0.2 * epoch, "train_acc": 0.3 + 0.1 * epoch,
                           "val_loss": 1.5 - 0.15 * epoch, "val_acc": 0.3 + 0.08 * epoch,
                           "val_ua": 0.25 + 0.1 * epoch, "lr": 0.001, "alpha": 0.0})
        sys.stdout.write(line[:25])  # a partial line: the rest follows later
        sys.stdout.flush()
        time.sleep(0.01)
        sys.stdout.write(line[25:] + "\n")
        sys.stdout.flush()
    if cancelled:
        break
    ckpt = out / f"fold_{fold}" / "model.safetensors"
    ckpt.parent.mkdir(exist_ok=True)
    ckpt.write_bytes(b"fake")
    ua = [0.55, 0.7, 0.6][fold - 1]
    emit({"event": "fold_end", "fold": fold, "wa": ua + 0.02, "ua": ua, "macro_f1": ua - 0.03,
          "best_epoch": 3, "checkpoint": str(ckpt)})
    done_folds.append(ua)
    print(f"INFO fold {fold} done", file=sys.stderr, flush=True)
model = None
if not cancelled and done_folds:
    emit({"event": "final_start", "epochs": 2, "train_speakers": ["spk1", "spk2"]})
    for epoch in (1, 2):
        emit({"event": "final_epoch", "epoch": epoch, "epochs": EPOCHS, "train_loss": 0.5,
              "train_acc": 0.8, "val_loss": None, "val_acc": None, "val_ua": None})
    model = out / "model.safetensors"
    model.write_bytes(b"fake")
png_dir = os.environ.get("FAKE_PNG_DIR")
if png_dir and done_folds:
    for png in Path(png_dir).glob("*.png"):
        shutil.copy(png, out / png.name)
(out / "report.md").write_text("# report\n")
n = len(done_folds)
mean = sum(done_folds) / n if n else None
emit({"event": "done", "run_dir": str(out), "model": str(model) if model else None,
      "report": str(out / "report.md"), "metrics": str(out / "metrics.json"),
      "summary": {k: {"mean": mean, "std": 0.05} for k in ("wa", "ua", "macro_f1")} if n else None,
      "folds_completed": n, "cancelled": cancelled})

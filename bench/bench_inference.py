"""Inference cost: the code of a git revision (old) against this working tree (new), side by
side in one run. Prints tables; asserts nothing.

Sections (``--section``, one function each; ``all`` runs them one after another):

- files: ``Predictor.predict_file`` with the shipped default model on generated recordings of
  ``--minutes`` (default 1, 10 and 60): espeak-ng sentences in several voices with pauses,
  stretches of background noise alone and a low noise floor, written with soundfile (16 kHz
  PCM_16 wav unless ``--rate`` says otherwise) into ``--workdir`` (kept: later runs reuse them).
  The old code (``model/`` and ``assets/``) is ``git archive``'d from ``--old-rev`` (default
  HEAD) next to the files; a child imports it as ``model`` (a tree from before the one-name
  layout) or as ``ser_studio.model`` through a link beside it. Each tree runs its own shipped
  model, or with ``--model old`` both run the old tree's (the code's effect alone, when the
  shipped model changed in between); the table names the weights.

- live: CPU per live window split by stage and the app's CPU while listening, old path
  against new (``python -m bench.bench_live``).
- app: GUI stall and CPU of the real window listening to a replayed file
  (``python -m bench.bench_app_latency --source replay``).
- onnx: HuBERT-base per 5 s window, fp32 eager / torch int8 / ONNX fp32 / ONNX int8, and the
  default model's network through onnxruntime (``python -m bench.bench_onnx``).

Options this module does not know are passed on to the live, app and onnx modules (each
prints its own tables, with its method in its docstring).

For the files section, every measurement is one child process (this module with ``--child``)
that imports the code of one tree, loads the model and runs one call. The child reports its own
peak RSS (``peak RSS``) and the CPU and wall time of the call alone; the parent takes the CPU
time (user + sys) and peak RSS of the child and its descendants from ``os.wait4`` (``process
CPU``, ``tree peak RSS``: on a model's first run these include the process that exports its
graphs, ``python -m ser_studio.model.inference.export_main``, which ends before the file is
read). Old and new alternate, ``--repeats`` times each; the tables give min / median / max and the ratios
new / old of the medians, and how far the two trees' probabilities are apart.

Usage: OMP_NUM_THREADS=1 python -m bench.bench_inference --section files
           [--minutes 1 10 60] [--repeats 3] [--old-rev HEAD] [--model own|old] [--workdir DIR]
           [--rate 16000]
"""
from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench_inference")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "I am very happy today, this is wonderful news!",
    "Why would you do that to me? I cannot believe it.",
    "Please leave me alone, I am tired and sad.",
    "We will meet at the station at half past seven tomorrow morning.",
    "That is absolutely outrageous and I will not accept it!",
    "Thank you so much for the lovely flowers, they are beautiful.",
    "I suppose we could try again next week if the weather is better.",
]
VOICES = [("en", 150, 40), ("en-us", 175, 55), ("en+f3", 140, 70), ("en+m3", 190, 30)]


# ---- generated recordings ------------------------------------------------------------------


def espeak_clips(folder: Path, rate: int) -> list[np.ndarray]:
    """Every sentence in every voice, as float32 mono at ``rate``."""
    import soundfile as sf
    import soxr

    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed to generate the recordings (apt-get install "
                         "espeak-ng)")
    clips = []
    for v, (voice, speed, pitch) in enumerate(VOICES):
        for s, text in enumerate(SENTENCES):
            path = folder / f"clip_{v}_{s}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                            "-w", str(path), text], check=True, capture_output=True)
            wav, source_rate = sf.read(path, dtype="float32")
            clips.append(soxr.resample(wav, source_rate, rate).astype(np.float32))
    return clips


def write_recording(path: Path, minutes: float, rate: int, seed: int = 0) -> Path:
    """A speech-like recording of ``minutes``: sentences at random gains with 0.2-3 s pauses,
    now and then 5-20 s of noise alone, over a -50 dBFS noise floor. Written piece by piece."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * rate)
    with tempfile.TemporaryDirectory() as tmp:
        clips = espeak_clips(Path(tmp), rate)
        written = 0
        with sf.SoundFile(str(path) + ".part", "w", rate, 1, "PCM_16", format="WAV") as out:
            while written < total:
                if rng.random() < 0.08:
                    piece = np.zeros(int(rng.uniform(5, 20) * rate), np.float32)
                    piece += rng.uniform(0.005, 0.03) * rng.standard_normal(piece.size)
                else:
                    clip = clips[rng.integers(len(clips))] * rng.uniform(0.2, 0.9)
                    pause = np.zeros(int(rng.uniform(0.2, 3.0) * rate), np.float32)
                    piece = np.concatenate([clip, pause])
                piece = piece[:total - written]
                piece = piece + 0.003 * rng.standard_normal(piece.size)
                out.write(np.clip(piece, -1, 1).astype(np.float32))
                written += piece.size
    os.replace(str(path) + ".part", path)
    return path


def recording(workdir: Path, minutes: float, rate: int) -> Path:
    """The recording of ``minutes`` at ``rate`` in ``workdir``, generated on first use."""
    path = workdir / f"speech_{minutes:g}min_{rate}hz.wav"
    if not path.is_file():
        started = time.perf_counter()
        write_recording(path, minutes, rate)
        log.info("wrote %s in %.1f s", path, time.perf_counter() - started)
    return path


# ---- trees and child processes -------------------------------------------------------------


def old_tree(workdir: Path, rev: str) -> Path:
    """``model/`` and ``assets/`` of git revision ``rev``, extracted under ``workdir``."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", rev], check=True,
                         capture_output=True, text=True).stdout.strip()
    root = workdir / f"old_{sha}"
    if not (root / "model").is_dir():
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "model", "assets"],
                                 check=True, capture_output=True).stdout
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
    return root


def model_sha(root: Path) -> str:
    """The shipped model's weights_sha1 under ``root`` (both trees must run the same one)."""
    return json.loads((root / "assets" / "default_model.json").read_text())["weights_sha1"]


def model_package(root: Path) -> str:
    """The import name of ``root``'s model code: ``ser_studio.model`` in the one-name layout
    (model/inference/predictor.py), ``model`` in a tree from before it."""
    one_name = (Path(root) / "model" / "inference" / "predictor.py").is_file()
    return "ser_studio.model" if one_name else "model"


def import_root(root: Path) -> Path:
    """The folder a child of ``root`` starts in, so that its code is what it imports: the tree
    itself for the older layout (``model`` at its top), the working tree for itself (the
    installed ser_studio is its code), else a folder beside the tree holding a ``ser_studio``
    link to it."""
    if model_package(root) == "model" or root.resolve() == REPO:
        return root
    folder = root.with_name(root.name + "_import")
    folder.mkdir(exist_ok=True)
    if not (folder / "ser_studio").exists():
        (folder / "ser_studio").symlink_to(root.resolve(), target_is_directory=True)
    return folder


def run_child(args: list[str], root: Path) -> dict:
    """Run this module as a child with ``args``, started in ``import_root(root)`` (``bench``
    comes from this repository, after it on the path); its JSON answer plus cpu_s (user +
    sys), peak_rss_mib and wall_s of the whole process, from os.wait4."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen([sys.executable, "-m", "bench.bench_inference", "--child", *args,
                             "--out", str(out)], cwd=import_root(root), env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with exit code {proc.returncode}")
    answer = json.loads(out.read_text())
    out.unlink()
    answer.update(cpu_s=usage.ru_utime + usage.ru_stime, peak_rss_mib=usage.ru_maxrss / 1024,
                  wall_s=wall)
    return answer


def child_files(root: str, path: str, model: str = "") -> dict:
    """In the child: ``predict_file`` of ``path`` with the code under ``root`` (started where
    ``import_root`` says, so that it imports that tree) and the checkpoint ``model`` (empty:
    that tree's shipped model)."""
    package = model_package(Path(root))
    inference = importlib.import_module(
        f"{package}.inference.predictor" if package != "model" else "model.inference")
    predictor = inference.Predictor.load(model or None)
    cpu, wall = time.process_time(), time.perf_counter()
    result = predictor.predict_file(path)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    tree = str(Path(root).resolve())

    # an editable install's finder fills in modules a tree lacks from the repository: refuse
    foreign = sorted(name for name, module in sys.modules.items()
                     if (name == package or name.startswith(package + "."))
                     and getattr(module, "__file__", None)
                     and not str(Path(module.__file__).resolve()).startswith(tree))
    code = Path(sys.modules[package].__file__).resolve().parent
    return {"code": str(code), "foreign": foreign,
            "call_cpu_s": cpu, "call_wall_s": wall,
            "duration_s": result.duration_s, "overall_label": result.overall.label,
            "overall_probs": result.overall.probs.tolist(),
            "window_probs": [p.probs.tolist() for _, _, p in result.windows],
            "window_speech": [bool(p.speech) for _, _, p in result.windows],
            "window_labels": [p.label for _, _, p in result.windows],
            "rss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


CHILDREN = {"files": child_files}


# ---- tables --------------------------------------------------------------------------------


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """"min / median / max" of ``values``."""
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values),
                                               max(values)))


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """A plain-text table, columns padded to their widest cell."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    print(f"\n{title}")
    for row in [headers, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def agreement(old: dict, new: dict) -> str:
    """How far the new tree's probabilities are from the old tree's on the same file."""
    if len(old["window_probs"]) != len(new["window_probs"]):
        return "different window counts!"
    gaps = [float(np.max(np.abs(np.subtract(a, b)))) for a, b in
            zip(old["window_probs"], new["window_probs"])]
    overall = float(np.max(np.abs(np.subtract(old["overall_probs"], new["overall_probs"]))))
    gates = sum(a != b for a, b in zip(old["window_speech"], new["window_speech"]))
    same = sum(a == b for a, b in zip(old["window_labels"], new["window_labels"]))
    return (f"same label in {same} of {len(gaps)} windows ({same / len(gaps):.1%}); "
            f"max |dp| windows {max(gaps):.1e}, overall {overall:.1e}; "
            f"speech gate differs in {gates} of {len(gaps)} windows; overall label "
            f"{old['overall_label']} -> {new['overall_label']}")


# ---- sections ------------------------------------------------------------------------------


def section_files(args) -> None:
    """predict_file, old against new, on recordings of args.minutes."""
    trees = {"old": old_tree(args.workdir, args.old_rev), "new": REPO}
    shas = {name: model_sha(root) for name, root in trees.items()}
    model = str(trees["old"] / "assets" / "default_model.safetensors") \
        if args.model == "old" else ""
    if model:
        shas["new"] = shas["old"]
        log.info("both trees run the old tree's model %s", shas["old"])
    elif shas["old"] != shas["new"]:
        log.warning("the trees ship different models: %s", shas)
    rows, ratios, agree = [], [], []
    for minutes in args.minutes:
        path = recording(args.workdir, minutes, args.rate)
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for repeat in range(args.repeats):
            for name in (("old", "new") if repeat % 2 == 0 else ("new", "old")):
                run = run_child(["files", str(trees[name]), str(path), model], trees[name])
                if not run["code"].startswith(str(trees[name].resolve())) or run["foreign"]:
                    raise SystemExit(f"the {name} child ran {run['code']} with "
                                     f"{run['foreign']} from elsewhere, not {trees[name]}")
                log.info("%g min %s: cpu %.1f s, call %.1f s, peak %.0f MiB", minutes, name,
                         run["cpu_s"], run["call_cpu_s"], run["peak_rss_mib"])
                runs[name].append(run)
        seconds = runs["new"][0]["duration_s"]
        for name in ("old", "new"):
            rs = runs[name]
            rows.append([f"{minutes:g}", name, spread([r["cpu_s"] for r in rs]),
                         spread([r["call_cpu_s"] for r in rs]),
                         f"{1000 * statistics.median(r['call_cpu_s'] for r in rs) / seconds:.1f}",
                         spread([r["call_wall_s"] for r in rs]),
                         spread([r["rss_self_mib"] for r in rs], "{:.0f}"),
                         spread([r["peak_rss_mib"] for r in rs], "{:.0f}")])
        keys = ("cpu_s", "call_cpu_s", "rss_self_mib", "peak_rss_mib")
        med = {n: {k: statistics.median(r[k] for r in runs[n]) for k in keys} for n in runs}
        ratios.append([f"{minutes:g}"] + [f"{med['new'][k] / med['old'][k]:.2f}"
                                          for k in keys])
        agree.append([f"{minutes:g}", agreement(runs["old"][0], runs["new"][0])])
    print_table(f"predict_file, old = {args.old_rev}, new = working tree (model "
                f"{shas['new'][:10]}); {args.repeats} run(s) each, min / median / max; "
                f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
                ["min", "code", "process CPU s", "call CPU s", "call CPU ms per audio s",
                 "call wall s", "peak RSS MiB", "tree peak RSS MiB"], rows)
    print_table("ratios new / old (medians)",
                ["min", "process CPU", "call CPU", "peak RSS", "tree peak RSS"], ratios)
    print_table("agreement (first run of each)", ["min", "old vs new"], agree)


def _script(name: str, *fixed: str):
    """A section that runs ``python -m bench.<name>`` with ``fixed`` and the passed-on
    options."""
    def section(args: argparse.Namespace) -> None:
        command = [sys.executable, "-m", f"bench.{name}", *fixed, *args.passed]
        log.info("$ %s", " ".join(command))
        subprocess.run(command, check=True, cwd=REPO)
    return section


SECTIONS = {"files": section_files, "live": _script("bench_live"),
            "app": _script("bench_app_latency", "--source", "replay"),
            "onnx": _script("bench_onnx")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--section", choices=[*sorted(SECTIONS), "all"], default="files")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-rev", default="HEAD")
    parser.add_argument("--model", choices=("own", "old"), default="own",
                        help="files: each tree's shipped model, or both the old tree's")
    parser.add_argument("--rate", type=int, default=16000, help="sample rate of the recordings")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "bench_inference")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args, args.passed = parser.parse_known_args(argv)
    if args.child:
        logging.basicConfig(level=logging.WARNING)
        answer = CHILDREN[args.child[0]](*args.child[1:])
        args.out.write_text(json.dumps(answer))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.workdir.mkdir(parents=True, exist_ok=True)
    for name in (SECTIONS if args.section == "all" else [args.section]):
        print(f"\n## {name}\n", flush=True)
        SECTIONS[name](args)


if __name__ == "__main__":
    main()

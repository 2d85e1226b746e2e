"""``main.py train`` on two corpora: leave-one-corpus-out end to end (the held-out corpus never
reaches training, per-corpus figures in the report, metrics.json and the printed summary,
run.json's corpus list), pooled speaker CV's per-corpus figures, and loco refused with one
corpus."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

from ser_studio.model.cli import train as train_cmd
from ser_studio.model.cli.main import build_parser, main
from ser_studio.model.config.run import read_sections


def _argv(corpora, out, cache, *extra) -> list[str]:
    given = [a for path in corpora for a in ("--corpus", str(path))]
    return ["train", *given, "--frontend", "logmel", "--arch", "enhanced", "--epochs", "1",
            "--batch-size", "16", "--hidden", "16", "--gru-layers", "1", "--frame-pool", "4",
            "--no-final", "--out", str(out), "--cache", str(cache), *extra]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("features")


@pytest.fixture(scope="module")
def loco_run(two_corpora, cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("loco")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(_argv(two_corpora, out, cache_dir, "--protocol", "loco",
                          "--language", "big:English", "--language", "small:Polish"))
    return code, stdout.getvalue(), out


def test_loco_trains_on_the_other_corpus_only(loco_run):
    code, _, out = loco_run
    assert code == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["protocol"] == "leave-one-corpus-out"
    assert [f["held_out"] for f in summary["folds"]] == ["big", "small"]
    for fold in summary["folds"]:
        held = fold["held_out"]
        assert fold["test_speakers"] and all(s.startswith(f"{held}/")
                                             for s in fold["test_speakers"])
        for side in ("train_speakers", "val_speakers"):
            assert fold[side] and not any(s.startswith(f"{held}/") for s in fold[side])
        # what the network was actually trained on (its adversary's speaker list)
        trained = json.loads((out / f"fold_{fold['fold']}" / "model.json").read_text())
        assert trained["speakers"] == fold["train_speakers"]
        assert fold["metrics"]["n"] == {"big": 96, "small": 32}[held]
        # the languages it heard: its training utterances only (big: 16 per speaker, small: 8)
        heard = {"big": ("Polish", 8), "small": ("English", 16)}[held]
        assert trained["languages"] == {heard[0]: heard[1] * len(fold["train_speakers"])}


def test_loco_reports_each_held_out_corpus_and_their_mean(loco_run):
    _, stdout, out = loco_run
    summary = json.loads((out / "metrics.json").read_text())
    per = summary["aggregate"]["per_corpus"]
    assert list(per) == ["big", "small"]
    by_fold = {f["held_out"]: f["metrics"] for f in summary["folds"]}
    for name in per:
        assert per[name]["ua"] == pytest.approx(by_fold[name]["ua"])
        assert per[name]["wa"] == pytest.approx(by_fold[name]["wa"])
    mean_ua = summary["aggregate"]["corpus_mean"]["ua"]
    assert mean_ua == pytest.approx((per["big"]["ua"] + per["small"]["ua"]) / 2)
    report = (out / "report.md").read_text()
    assert "### Per held-out corpus (leave one corpus out)" in report
    assert f"| big | small | 96 | {100 * per['big']['wa']:.1f} | {100 * per['big']['ua']:.1f} |" \
        in report
    assert "| small | big | 32 |" in report and "| **mean** |" in report
    assert "per held-out corpus:" in stdout
    assert f"small: WA {per['small']['wa']:.3f} UA {per['small']['ua']:.3f} (n=32)" in stdout
    assert "mean over 2 corpora: WA" in stdout


def test_run_json_round_trips_the_corpus_list(loco_run, two_corpora, tmp_path):
    _, _, out = loco_run
    sections = read_sections(out / "run.json")
    assert sections["corpus"]["path"] == [str(p.resolve()) for p in two_corpora]
    assert sections["train"]["protocol"] == "loco"
    assert sections["corpus"]["language"] == ["big:English", "small:Polish"]
    args = build_parser().parse_args(["train", "--config", str(out / "run.json"),
                                      "--out", str(tmp_path)])
    train_cmd._apply_run_sections(args)
    assert args.corpus == [str(p.resolve()) for p in two_corpora]
    again = train_cmd.run_sections(args, *train_cmd.build_configs(args, sections))
    assert again == sections  # written back exactly as read


def test_pooled_cv_on_two_corpora_scores_each_corpus(two_corpora, cache_dir, tmp_path):
    assert main(_argv(two_corpora, tmp_path, cache_dir, "--folds", "2", "--max-folds", "1",
                      "--balance", "sampler")) == 0
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["protocol"] == "grouped-k-fold"
    fold = summary["folds"][0]
    per = fold["metrics"]["per_corpus"]
    tested = {s.split("/")[0] for s in fold["test_speakers"]}
    assert set(per) == tested == {"big", "small"}
    assert sum(c["n"] for c in per.values()) == fold["metrics"]["n"]
    assert "### Per corpus (pooled speaker cross-validation)" in (
        tmp_path / "report.md").read_text()


def test_loco_with_one_corpus_is_refused(two_corpora, tmp_path, capsys):
    assert main(_argv(two_corpora[:1], tmp_path, tmp_path / "cache", "--protocol",
                      "loco")) == 2
    err = capsys.readouterr().err
    assert "--protocol loco (leave one corpus out) needs at least two corpora" in err
    assert not (tmp_path / "metrics.json").exists()

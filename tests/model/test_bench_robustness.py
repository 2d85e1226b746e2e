"""The robustness and speaker-adaptation benches on a run over two corpora: ``--score-corpus``
scores one corpus's test clips of every fold, exactly as the full scoring scores them; the
adaptation protocols run on speakers named "CORPUS/ID"."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

from bench import robustness
from ser_studio.model.cli.main import main
from tests.model.test_cli_loco import _argv

# renders that do not depend on the clip's seed or on the other test clips, so scoring a
# subset must give the same predictions for it
STEADY = ["as recorded", "gain -12 dB"]


@pytest.fixture(scope="module")
def pooled_run(two_corpora, tmp_path_factory):
    out = tmp_path_factory.mktemp("pooled")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(_argv(two_corpora, out, tmp_path_factory.mktemp("cache"),
                          "--folds", "2")) == 0
    return out


def _score(run, corpora, tmp_path, name, *extra):
    given = [a for path in corpora for a in ("--corpus", str(path))]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        robustness.main(["--run", str(run), *given, "--map", "", "--conditions", *STEADY,
                         "--save-folds", str(tmp_path / name), *extra])
    saved = {p.name: json.loads(p.read_text())["result"]
             for p in sorted((tmp_path / name).glob("fold_*.json"))}
    return saved, printed.getvalue()


def test_score_corpus_scores_only_that_corpus_test_clips(pooled_run, two_corpora, tmp_path):
    summary = json.loads((pooled_run / "metrics.json").read_text())
    small_per_fold = {f"fold_{f['fold']}.json": sum(1 for s in f["test_speakers"]
                                                    if s.startswith("small/")) * 8
                      for f in summary["folds"]}  # 8 clips per small speaker
    every, _ = _score(pooled_run, two_corpora, tmp_path, "every")
    small, printed = _score(pooled_run, two_corpora, tmp_path, "small", "--score-corpus",
                            "small")
    assert "each on its own test speakers of small" in printed
    kept = {k for k, n in small_per_fold.items() if n}
    assert set(small) == kept
    for fold in kept:
        for condition in STEADY:
            got = small[fold][condition]
            assert got["metrics"]["n"] == small_per_fold[fold]
            assert "per_corpus" not in got["metrics"]
            # the same clips, scored alike: the full scoring's small clips come first or last
            full = every[fold][condition]
            ours = full["metrics"]["per_corpus"]["small"]
            assert got["metrics"]["ua"] == pytest.approx(ours["ua"])


def test_score_corpus_names_the_run_corpora_when_it_is_not_one(pooled_run, two_corpora,
                                                                tmp_path):
    with pytest.raises(SystemExit, match="--score-corpus nemo: not a corpus of the run; its "
                                         "corpora: big, small"):
        _score(pooled_run, two_corpora, tmp_path, "x", "--score-corpus", "nemo")


def test_speaker_adaptation_scores_each_fold_of_a_run_on_two_corpora(pooled_run, two_corpora,
                                                                    tmp_path):
    from bench import speaker_adaptation

    given = [a for path in two_corpora for a in ("--corpus", str(path))]
    out = tmp_path / "adaptation.json"
    with contextlib.redirect_stdout(io.StringIO()):
        speaker_adaptation.main(["--run", str(pooled_run), *given, "--map", "",
                                 "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    summary = json.loads((pooled_run / "metrics.json").read_text())
    assert list(rows) == ["plain", "speaker", "enrol 10 s", "enrol 30 s"]
    # plain is the trainer's own test of each fold: every test clip, the same UA
    assert [r["n"] for r in rows["plain"]] == [f["metrics"]["n"] for f in summary["folds"]]
    assert [r["ua"] for r in rows["plain"]] == pytest.approx(
        [f["metrics"]["ua"] for f in summary["folds"]])

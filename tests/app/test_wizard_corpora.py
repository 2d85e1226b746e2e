"""The wizard on several corpora: the corpus page's list (add, remove), the pooled summary and
run.json's corpus list, the plan of a leave-one-corpus-out run, and per-corpus results."""
from __future__ import annotations

import pytest

from ser_studio.app.wizard.progress import TrainingProgress
from ser_studio.app.wizard.results import ResultsPage, metrics_html
from ser_studio.app.wizard.run_plan import plan_folds, plan_rows
from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.training.progress import ProgressEvent
from tests.app.test_wizard_pages import wizard, write_manifest  # noqa: F401 (fixture)


@pytest.fixture
def manifests(tmp_path):
    """Two corpora whose speakers are both called s1, s2, s3: en (2 labels), pl (3 labels,
    and a language column saying Polish)."""
    (tmp_path / "en").mkdir()
    (tmp_path / "pl").mkdir()
    pl = write_manifest(tmp_path / "pl", labels=("angry", "sad", "happy"))
    rows = pl.read_text().splitlines()
    pl.write_text("\n".join([rows[0] + ",language"] + [r + ",Polish" for r in rows[1:]]) + "\n")
    return write_manifest(tmp_path / "en"), pl


def _checked(qtbot, page, action) -> bool:
    with qtbot.waitSignal(page.checked, timeout=10000) as blocker:
        action()
        page.check()
    return blocker.args[0]


def test_corpus_list_adds_and_removes_corpora(qtbot, wizard, manifests):
    page = wizard.corpus_page
    en, pl = manifests
    assert not page.corpus_list.isVisibleTo(page)  # a one-corpus run sees no list
    page.path_edit.setText(str(en))
    page.add_button.click()
    assert page.listed() == [str(en)] and page.path_edit.text() == ""
    assert page.corpus_list.isVisibleTo(page)
    assert _checked(qtbot, page, lambda: page.path_edit.setText(str(pl))) is True
    assert page.key()[0] == (str(en), str(pl))
    summary = page.summary
    assert [c["name"] for c in summary["corpora"]] == ["en", "pl"]
    assert summary["utterances"] == 12 + 18
    assert sorted(summary["speakers"]) == [f"{c}/s{k}" for c in ("en", "pl") for k in (1, 2, 3)]
    text = page.summary_label.text()
    assert "Corpus 1" in text and "<b>en</b>" in text and "Corpus 2" in text
    assert summary["languages"] == {"Polish": 18} and "Polish&nbsp;18" in text
    assert "2 corpora can be used together" in page.status_label.text()
    assert wizard.run_sections()["corpus"]["path"] == [str(en.resolve()), str(pl.resolve())]
    page.grab().save("/tmp/wizard_corpora.png")
    page.corpus_list.item(0).setSelected(True)
    assert _checked(qtbot, page, page.remove_button.click) is True
    assert page.listed() == [] and page.key()[0] == (str(pl),)
    assert "corpora" not in page.summary and page.summary["utterances"] == 18
    assert wizard.run_sections()["corpus"]["path"] == str(pl.resolve())  # as before: a string


def test_adding_the_same_corpus_twice_lists_it_once(qtbot, wizard, manifests):
    page = wizard.corpus_page
    for _ in range(2):
        page.path_edit.setText(str(manifests[0]))
        page.add_button.click()
    assert page.listed() == [str(manifests[0])]
    assert not page.add_button.isEnabled()  # nothing in the field to add


def _summary(names=("en", "pl")) -> dict:
    return {"kind": "multi", "root": " + ".join(names), "utterances": 30,
            "speakers": {f"{n}/s{k}": 5 for n in names for k in (1, 2, 3)}, "labels": {},
            "corpora": [{"name": n, "utterances": 15} for n in names]}


def test_the_plan_of_a_loco_run_names_the_held_out_corpora():
    loco = TrainConfig(protocol="loco", balance="sampler")
    folds = plan_folds(_summary(), loco, None)
    assert (folds.protocol, folds.total, folds.problem) == ("leave-one-corpus-out", 2, "")
    rows = dict(plan_rows(_summary(), "logmel", FrontendConfig(), ModelConfig(), loco,
                          {"final": True}))
    assert rows["Protocol"].startswith("leave one corpus out: 2 folds (en, pl)")
    assert "each corpus and class is drawn equally often" in rows["Corpora"]
    one = {**_summary(("en",)), "corpora": []}
    assert "needs two or more corpora" in plan_folds(one, loco, None).problem


def _finished(protocol: str) -> TrainingProgress:
    progress = TrainingProgress()
    progress.handle(ProgressEvent("start", protocol=protocol, folds=2, epochs=1,
                                  labels=["angry", "sad"]))
    per = {"en": {"wa": 0.81, "ua": 0.79, "n": 12}, "pl": {"wa": 0.52, "ua": 0.47, "n": 18}}
    progress.handle(ProgressEvent(
        "done", folds_completed=2, cancelled=False,
        summary={"wa": {"mean": 0.6, "std": 0.1}, "ua": {"mean": 0.63, "std": 0.16},
                 "macro_f1": {"mean": 0.5, "std": 0.1}, "per_corpus": per,
                 "corpus_mean": {"wa": 0.665, "ua": 0.63}}))
    return progress


def test_results_show_each_corpus_and_their_mean(qtbot):
    text = metrics_html(_finished("leave-one-corpus-out"))
    assert "Per held-out corpus" in text
    assert "en&nbsp;&nbsp;</td><td>0.810</td><td><b>0.790</b></td><td>12" in text
    assert "pl&nbsp;&nbsp;</td><td>0.520</td><td><b>0.470</b></td><td>18" in text
    assert "<i>mean</i></td><td>0.665</td><td><b>0.630</b>" in text
    pooled = metrics_html(_finished("grouped-k-fold"))
    assert "Per corpus (its test speakers, all folds)" in pooled and "0.470" in pooled
    page = ResultsPage()  # alone, at the size it has in the wizard
    qtbot.addWidget(page)
    page.resize(860, 500)
    page.show()
    page.show_results(_finished("leave-one-corpus-out"))
    assert "Per held-out corpus" in page.metrics_label.text()
    label = page.metrics_label
    qtbot.waitUntil(lambda: label.height() >= label.sizeHint().height(), timeout=5000)
    page.grab().save("/tmp/wizard_results_corpora.png")

"""Several corpora in one run: pooled with namespaced speakers, each read with its own labels,
folds across them (speaker CV and leave-one-corpus-out), corpus x class balance (loss weights
and sampler), per-corpus metrics and run.json's corpus list."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from ser_studio.model.config.run import corpus_paths, describe_run, read_sections
from ser_studio.model.config.schema import (ConfigError, FrontendConfig, ModelConfig,
                                            TrainConfig)
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.corpora.multi import corpus_name, load_corpora
from ser_studio.model.corpora.record import CorpusError, Utterance
from ser_studio.model.evaluation.metrics import aggregate_folds, compute_metrics
from ser_studio.model.training.data import (FeatureDataset, balance_weights, collate,
                                            train_loader)
from ser_studio.model.training.folds import LOCO, FoldError, make_folds
from ser_studio.model.training.trainer import balance_plan, class_weights

LABELS = ["angry", "happy", "neutral", "sad"]


def test_corpus_names_come_from_folders_or_manifest_stems():
    assert corpus_name(Path("/data/nemo-pl/manifest.csv")) == "nemo-pl"
    assert corpus_name(Path("/data/lists/crema.csv")) == "crema"
    assert corpus_name(Path("/data/ravdess-dev")) == "ravdess-dev"


def test_several_corpora_namespace_speakers_and_keep_their_own_labels(two_corpora):
    big, small = two_corpora
    pooled = load_corpora([big, small])
    assert pooled.names == ("big", "small") and pooled.kind == "multi"
    # both manifests call their speakers spk1..: namespacing keeps 6 + 4 apart
    assert pooled.speakers == [f"big/spk{k}" for k in range(1, 7)] + [
        f"small/spk{k}" for k in range(1, 5)]
    # the small corpus wrote "Anger", "Sadness", ...: its own reading maps them
    assert pooled.labels == LABELS
    counts = Counter(u.corpus for u in pooled.utterances)
    assert counts == {"big": 96, "small": 32}
    assert all(u.speaker.startswith(f"{u.corpus}/") for u in pooled.utterances)
    summary = pooled.summary()
    assert [c["name"] for c in summary["corpora"]] == ["big", "small"]
    assert summary["utterances"] == 128 and len(summary["speakers"]) == 10


def test_a_label_map_can_name_one_corpus(two_corpora):
    big, small = two_corpora
    pooled = load_corpora([big, small], ["small:happy=angry", "sad=neutral"])
    labels = {name: Counter(u.label for u in pooled.utterances if u.corpus == name)
              for name in ("big", "small")}
    assert labels["big"] == {"angry": 24, "happy": 24, "neutral": 48}  # the map for all only
    assert labels["small"] == {"angry": 16, "neutral": 16}  # its own map on top
    one_string = load_corpora([big, small], "sad=neutral; small:happy=angry")
    assert [u.label for u in one_string.utterances] == [u.label for u in pooled.utterances]
    with pytest.raises(CorpusError, match="'nemo' is not a corpus of this run; corpus names: "
                                          "big, small"):
        load_corpora([big, small], ["nemo:calm=neutral"])


def _with_language_column(manifest: Path, out: Path, language: str) -> Path:
    rows = manifest.read_text().splitlines()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join([rows[0] + ",language"] + [r + f",{language}" for r in rows[1:]]))
    return out


def test_languages_come_from_a_manifest_column_or_the_language_option(two_corpora, tmp_path):
    big, small = two_corpora
    polish = _with_language_column(small, tmp_path / "small" / "manifest.csv", "Polish")
    pooled = load_corpora([big, polish])
    assert pooled.summary()["languages"] == {"Polish": 32}  # big has no column: unknown
    named = load_corpora([big, polish], languages=["big:English"])
    assert {u.corpus: u.language for u in named.utterances} == {"big": "English",
                                                               "small": "Polish"}
    assert named.summary()["languages"] == {"English": 96, "Polish": 32}
    assert [c["languages"] for c in named.summary()["corpora"]] == [{"English": 96},
                                                                   {"Polish": 32}]
    # a value for every corpus is overridden per corpus, and overrides a manifest's column
    both = load_corpora([big, polish], ["sad=neutral"], languages=["small:Korean", "German"])
    assert both.summary()["languages"] == {"German": 96, "Korean": 32}
    with pytest.raises(CorpusError, match="'nemo' is not a corpus of this run; corpus names: "
                                          "big, small"):
        load_corpora([big, small], languages=["nemo:Polish"])
    with pytest.raises(CorpusError, match="language 'big:': empty"):
        load_corpora([big, small], languages=["big:"])


def test_one_corpus_keeps_its_speaker_ids_and_folds(synth_corpus):
    alone = load_corpus(synth_corpus)
    wrapped = load_corpora([synth_corpus])
    assert [u.speaker for u in wrapped.utterances] == [u.speaker for u in alone.utterances]
    assert wrapped.kind == "iemocap" and wrapped.summary() == alone.summary()
    assert (make_folds(wrapped.utterances, kind=wrapped.kind, folds=5)
            == make_folds(alone.utterances, kind=alone.kind, folds=5))


def test_the_same_corpus_twice_is_refused(two_corpora):
    with pytest.raises(CorpusError, match="more than once"):
        load_corpora([two_corpora[0], two_corpora[0]])


def test_speaker_folds_group_speakers_across_corpora(two_corpora):
    pooled = load_corpora(list(two_corpora))
    protocol, folds = make_folds(pooled.utterances, kind=pooled.kind, folds=5, val_speakers=1)
    assert protocol == "grouped-k-fold" and len(folds) == 5
    tested = [s for f in folds for s in f.test_speakers]
    assert sorted(tested) == pooled.speakers  # every speaker tested exactly once
    for fold in folds:
        assert not set(fold.test_speakers) & set(fold.train_speakers + fold.val_speakers)


def test_loco_holds_out_each_corpus_and_validates_on_training_corpora(two_corpora):
    pooled = load_corpora(list(two_corpora))
    protocol, folds = make_folds(pooled.utterances, kind=pooled.kind, folds=5,
                                 val_speakers=2, protocol="loco")
    assert protocol == LOCO and [f.held_out for f in folds] == ["big", "small"]
    for fold in folds:
        held = fold.held_out
        assert set(fold.test_speakers) == {u.speaker for u in pooled.utterances
                                           if u.corpus == held}
        rest = fold.train_speakers + fold.val_speakers
        assert len(fold.val_speakers) == 2
        assert all(not s.startswith(f"{held}/") for s in rest)


def test_loco_refuses_a_single_corpus(synth_corpus):
    one = load_corpora([synth_corpus])
    with pytest.raises(FoldError, match="at least two corpora"):
        make_folds(one.utterances, kind=one.kind, protocol="loco")


def _cells(n_big: int, n_small: int) -> list[Utterance]:
    """Clips of two corpora with unequal classes: big has n_big per class and 3x as many
    angry, small n_small per class."""
    utts = []
    for corpus, n in (("big", n_big), ("small", n_small)):
        for label in LABELS:
            count = 3 * n if (corpus, label) == ("big", "angry") else n
            utts += [Utterance(Path(f"/{corpus}/{label}{i}.wav"), label, f"{corpus}/s{i % 2}",
                               corpus=corpus) for i in range(count)]
    return utts


def _per_corpus(utts, weights) -> dict[str, float]:
    totals = Counter()
    for u, w in zip(utts, weights):
        totals[u.corpus] += float(w)
    return totals


def test_loss_weights_give_each_corpus_and_class_the_same_total_per_epoch():
    utts = _cells(n_big=30, n_small=3)
    cfg = TrainConfig(balance="weights")
    class_w, item_w, draw = balance_plan(utts, LABELS, cfg)
    assert class_w is None and draw is None
    feats = {u.path: torch.ones(20, 2) for u in utts}
    data = FeatureDataset(feats, utts, LABELS, torch.zeros(2), torch.ones(2), max_frames=10,
                          train=True, item_weights=item_w)
    totals = Counter()
    cells = Counter()
    for batch_items in [list(range(i, min(i + 16, len(utts)))) for i in range(0, len(utts), 16)]:
        batch = collate([data[i] for i in batch_items])  # what one epoch's batches carry
        for i, w in zip(batch_items, batch.weights.tolist()):
            totals[utts[i].corpus] += w
            cells[utts[i].corpus, utts[i].label] += w
    assert totals["big"] == pytest.approx(totals["small"])  # 150 clips weigh as much as 12
    assert len(set(round(v, 4) for v in cells.values())) == 1
    assert sum(totals.values()) == pytest.approx(len(utts))  # mean weight 1


def test_weighted_loss_uses_the_item_weights():
    from types import SimpleNamespace

    from ser_studio.model.training.data import Batch
    from ser_studio.model.training.trainer import training_loss

    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    labels = torch.tensor([0, 0])
    batch = Batch(torch.zeros(2, 3, 2), torch.tensor([3, 3]), labels, torch.tensor([-1, -1]),
                  torch.tensor([3.0, 1.0]))
    out = SimpleNamespace(members=None, logits=logits, speaker_logits=None)
    each = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    loss = training_loss(out, batch, None, TrainConfig(), torch.nn.Linear(1, 1))
    assert float(loss) == pytest.approx(float((3 * each[0] + each[1]) / 4))


def test_sampler_draws_each_corpus_and_class_equally_often():
    utts = _cells(n_big=30, n_small=3)
    class_w, item_w, draw = balance_plan(utts, LABELS, TrainConfig(balance="sampler"))
    assert class_w is None and item_w is None
    feats = {u.path: torch.ones(20, 2) for u in utts}
    data = FeatureDataset(feats, utts, LABELS, torch.zeros(2), torch.ones(2), max_frames=10,
                          train=True)
    loader = train_loader(data, 16, seed=0, draw_weights=draw)
    drawn = Counter()
    for _ in range(20):  # epochs
        for i in loader.sampler:
            drawn[utts[i].corpus] += 1
    assert len(list(loader.sampler)) == len(utts)  # an epoch is still len(dataset) items
    # expected draw mass per corpus is equal (half each); without balance big gets 150/162
    assert _per_corpus(utts, draw)["big"] == pytest.approx(_per_corpus(utts, draw)["small"])
    assert drawn["small"] / sum(drawn.values()) == pytest.approx(0.5, abs=0.05)


def test_one_corpus_keeps_the_pooled_class_weights():
    utts = [u for u in _cells(n_big=5, n_small=1) if u.corpus == "big"]
    class_w, item_w, draw = balance_plan(utts, LABELS, TrainConfig())
    assert item_w is None and draw is None
    assert torch.equal(class_w, class_weights(utts, LABELS))
    none = balance_plan(_cells(5, 1), LABELS, TrainConfig(balance="none"))
    assert none[1] is None and none[2] is None


def test_balance_weights_by_corpus_only_without_class_weighting():
    utts = _cells(n_big=30, n_small=3)
    weights = balance_weights(utts, by_class=False)
    totals = _per_corpus(utts, weights)
    assert totals["big"] == pytest.approx(totals["small"])
    big = [float(w) for u, w in zip(utts, weights) if u.corpus == "big"]
    assert max(big) == pytest.approx(min(big))  # classes as they come inside a corpus


def test_metrics_score_each_corpus_separately():
    truth = ["angry", "sad", "angry", "sad", "angry", "sad"]
    pred = ["angry", "sad", "angry", "sad", "sad", "sad"]
    corpora = ["a", "a", "a", "a", "b", "b"]
    m = compute_metrics(truth, pred, ["angry", "sad"], corpora=corpora)
    assert m["per_corpus"]["a"]["ua"] == 1.0 and m["per_corpus"]["b"]["ua"] == 0.5
    assert m["per_corpus"]["b"]["n"] == 2
    fold2 = compute_metrics(["angry", "sad"], ["sad", "sad"], ["angry", "sad"],
                            corpora=["a", "a"])
    agg = aggregate_folds([m, fold2])
    # corpus a over both folds: 4 of 4 and 1 of 2 right; confusions summed, then UA
    assert agg["per_corpus"]["a"]["n"] == 6 and agg["per_corpus"]["a"]["folds"] == 2
    assert agg["per_corpus"]["a"]["ua"] == pytest.approx((2 / 3 + 1) / 2)
    assert agg["corpus_mean"]["ua"] == pytest.approx(((2 / 3 + 1) / 2 + 0.5) / 2)
    assert "per_corpus" not in compute_metrics(truth, pred, ["angry", "sad"])


def test_run_file_holds_one_corpus_as_a_string_and_several_as_a_list(tmp_path, two_corpora):
    configs = (FrontendConfig(), ModelConfig(), TrainConfig(protocol="loco"))
    one = describe_run(*configs, corpus=str(two_corpora[0]))
    assert one["corpus"]["path"] == str(two_corpora[0])
    several = describe_run(*configs, corpus=list(two_corpora))
    assert several["corpus"]["path"] == [str(p) for p in two_corpora]
    assert corpus_paths(one["corpus"]["path"]) == [str(two_corpora[0])]
    assert corpus_paths(several["corpus"]["path"]) == [str(p) for p in two_corpora]
    with pytest.raises(ConfigError, match="corpus.path"):
        corpus_paths([])
    (tmp_path / "run.json").write_text(__import__("json").dumps(several))
    assert read_sections(tmp_path / "run.json")["train"]["protocol"] == "loco"


def test_a_run_written_before_protocol_and_balance_can_be_resumed(tmp_path):
    import json

    from ser_studio.model.config.run import finished_folds
    from ser_studio.model.config.schema import config_to_dict

    train = config_to_dict(TrainConfig())
    older = {k: v for k, v in train.items() if k not in ("protocol", "balance")}
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "fold_1").mkdir()
    (tmp_path / "fold_1" / "model.safetensors").write_bytes(b"")
    (tmp_path / "metrics.json").write_text(json.dumps(
        {"configs": {"train": older}, "folds": [{"fold": 1,
                                                 "checkpoint": "fold_1/model.safetensors"}]}))
    assert [f["fold"] for f in finished_folds(tmp_path, train)] == [1]  # defaults filled in
    with pytest.raises(ConfigError, match="another train config"):
        finished_folds(tmp_path, config_to_dict(TrainConfig(balance="sampler")))

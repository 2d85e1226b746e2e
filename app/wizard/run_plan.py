"""What a wizard run will do, in words, from the corpus summary and the configs (no Qt).

The summary page shows it before anything heavy starts. Everything here is counted from the
corpus page's summary (model.corpora.corpus.Corpus.summary plus its "protocol") and the configs,
with the same rules as model.training.folds, so the numbers are the ones the run will use. Time is
not guessed: it depends on how many clips are already in the feature cache, on the machine and on
early stopping, so the plan says where it is shown once the run has a rate to go by.
"""
from __future__ import annotations

from dataclasses import dataclass

from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.training.folds import GROUPED, LOCO, LOSO_SESSION, LOSO_SPEAKER

TIME_NOTE = ("unknown until features are extracted: it depends on how many of these clips "
             "are already in the feature cache, on this computer and on early stopping. The "
             "next page shows the files done and the time left while features are extracted, "
             "then each fold's epochs.")

BALANCE_TEXT = {"weights": "each corpus and class carries the same weight in the loss",
                "sampler": "each corpus and class is drawn equally often",
                "none": "the corpora pooled as they come (no balance)"}


@dataclass(frozen=True)
class Folds:
    """The cross-validation a corpus gets: protocol, folds in all, folds the run trains, and
    ``problem`` (why the run would stop, "" when it would not)."""

    protocol: str
    total: int
    run: int
    problem: str = ""


def plan_folds(summary: dict, train: TrainConfig, max_folds: int | None) -> Folds:
    """The folds of ``summary``'s corpus under ``train.folds``
    (model.training.folds.choose_protocol's rules: sessions first, then 0 = one fold per speaker,
    else k groups of speakers)."""
    speakers = len(summary.get("speakers") or {})
    if train.protocol == "loco":
        corpora = len(summary.get("corpora") or [])
        problem = ("" if corpora >= 2 else "Leave one corpus out needs two or more corpora: "
                   "add another on the corpus page, or choose protocol cv.")
        run = min(max_folds, corpora) if max_folds else corpora
        return Folds(LOCO, corpora, run, problem)
    if summary.get("protocol") == LOSO_SESSION:
        protocol, total = LOSO_SESSION, len(summary.get("sessions") or {})
    elif train.folds == 0:
        protocol, total = LOSO_SPEAKER, speakers
    else:
        protocol, total = GROUPED, train.folds
    problem = ""
    if protocol == GROUPED and total > speakers:
        problem = (f"{total} folds need at least {total} speakers; this corpus has "
                   f"{speakers}. Choose 2 to {speakers} folds, or 0 for one per speaker.")
    run = min(max_folds, total) if max_folds else total
    return Folds(protocol, total, run, problem)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _protocol_text(folds: Folds, summary: dict) -> str:
    if folds.protocol == LOCO:
        names = ", ".join(c["name"] for c in summary.get("corpora") or [])
        return (f"leave one corpus out: {_plural(folds.total, 'fold')} ({names}), each tests "
                "one whole corpus on a model trained on the others; figures per held-out "
                "corpus and their mean")
    if folds.protocol == LOSO_SESSION:
        return (f"leave one session out: {_plural(folds.total, 'fold')}, each tests the "
                "speakers of one session")
    if folds.protocol == LOSO_SPEAKER:
        return f"leave one speaker out: {_plural(folds.total, 'fold')}, each tests one speaker"
    speakers = len(summary.get("speakers") or {})
    small, large = speakers // folds.total, -(-speakers // folds.total)
    size = f"{small}" if small == large else f"{small} or {large}"
    return (f"the {speakers} speakers split into {folds.total} groups of {size}: each fold "
            "tests one group on a model trained without them")


def plan_rows(summary: dict, frontend_name: str, frontend: FrontendConfig,
              model: ModelConfig, train: TrainConfig, run: dict) -> list[tuple[str, str]]:
    """(label, text) rows of the summary page; ``frontend_name`` is the frontend as the
    settings page names it (with ``frontend``'s encoder for hubert), ``run`` the run options
    ({"final", "max_folds"})."""
    folds = plan_folds(summary, train, run.get("max_folds"))
    clips = int(summary.get("utterances", 0))
    labels = ", ".join(f"{k} {v}" for k, v in (summary.get("labels") or {}).items())
    corpora = summary.get("corpora") or []
    rows = [("Corpus", f"{summary.get('kind', '')}: {summary.get('root', '')}") if not corpora
            else ("Corpora", ", ".join(f"{c['name']} ({c['utterances']} clips)"
                                       for c in corpora)
                  + f"; speakers named CORPUS/ID; {BALANCE_TEXT[train.balance]}"),
            ("Clips", f"{clips} from {_plural(len(summary.get('speakers') or {}), 'speaker')}"
                      f" ({labels})"),
            ("Protocol", _protocol_text(folds, summary)),
            ("Folds to run", f"all {folds.total}" if folds.run == folds.total
             else f"the first {folds.run} of {folds.total}")]
    if "hubert" in frontend.name.split("+"):
        frontend_name += f", encoder {frontend.encoder}"
    rows.append(("Features", f"{frontend_name} for {clips} clips, computed once and kept "
                             "in the feature cache"))
    variants = train.channel.variants
    if variants:
        rows.append(("Recording chains", f"{_plural(variants, 'variant')} of each training "
                                         "clip, made again in every fold (background voices "
                                         "come only from that fold's training speakers)"))
    networks = _plural(model.ensemble, "network")
    stopping = (f"each network stops early after {train.patience} epochs without a better "
                f"score on its {_plural(train.val_speakers, 'validation speaker')}"
                if train.val_speakers else "no validation speakers: every epoch runs")
    rows.append(("Training", f"{_plural(folds.run, 'fold')} × {networks} × up to "
                             f"{train.epochs} epochs ({stopping})"))
    rows.append(("Final model", f"then {networks} on every speaker, for the folds' median "
                                "best epoch" if run.get("final", True) else "none"))
    rows.append(("Estimated time", TIME_NOTE))
    return rows

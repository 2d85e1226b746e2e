"""Fixtures of the model tests that several modules share."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.multi_corpora import write_two_corpora


@pytest.fixture(scope="session")
def two_corpora(synth_corpus, tmp_path_factory) -> tuple[Path, Path]:
    """(big manifest, small manifest) of tests.multi_corpora.write_two_corpora: two corpora
    of 96 and 32 clips whose speakers are both called spk1, spk2, ...; written once."""
    return write_two_corpora(synth_corpus, tmp_path_factory.mktemp("two_corpora"))

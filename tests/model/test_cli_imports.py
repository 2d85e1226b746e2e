"""Command-line help and the corpus command start without the heavy libraries (torch,
scikit-learn, matplotlib, transformers): each is imported only by the work that needs it."""
from __future__ import annotations

import pytest

from tests.fresh_python import fresh_python, imported_by_main

HEAVY = ("torch", "sklearn", "matplotlib", "transformers", "librosa", "audiomentations")


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"], ["evaluate", "--help"],
                                  ["extract", "--help"], ["train", "--help"],
                                  ["corpus", "--help"]])
def test_help_imports_nothing_heavy(argv):
    assert imported_by_main(argv, HEAVY) == []


def test_predict_does_not_import_training_libraries(tmp_path):
    code = ("import sys\nfrom ser_studio.model.inference.predictor import Predictor\n"
            "from ser_studio.model.inference.prediction import file_result_to_dict\n"
            f"print(sorted(m for m in {HEAVY[1:]!r} if m in sys.modules))")
    assert fresh_python(code).strip() == "[]"

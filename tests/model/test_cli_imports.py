"""Command-line help and the corpus command start without the heavy libraries (torch,
scikit-learn, matplotlib, transformers): each is imported only by the work that needs it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MAIN = Path(__file__).resolve().parents[2] / "main.py"
HEAVY = ("torch", "sklearn", "matplotlib", "transformers", "librosa", "audiomentations")


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"], ["evaluate", "--help"],
                                  ["extract", "--help"], ["train", "--help"],
                                  ["corpus", "--help"]])
def test_help_imports_nothing_heavy(argv):
    code = ("import sys, runpy; sys.argv = ['main.py', *sys.argv[1:]]\n"
            f"try:\n    runpy.run_path({str(MAIN)!r}, run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_predict_does_not_import_training_libraries(tmp_path):
    code = ("import sys\nfrom model.inference import Predictor\n"
            "from model.prediction import file_result_to_dict\n"
            f"print(sorted(m for m in {HEAVY[1:]!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"

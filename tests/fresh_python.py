"""Code run in a fresh Python interpreter: what a process imports, or sets, from its start."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

MAIN = Path(__file__).resolve().parents[1] / "main.py"


def fresh_python(code: str, *argv: str) -> str:
    """stdout of ``python -c code *argv`` in a new process of this interpreter. Raises
    CalledProcessError when it fails."""
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          check=True).stdout


def imported_by_main(argv: list[str], modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh ``main.py *argv`` had imported when it ended (sorted)."""
    code = ("import sys, runpy; sys.argv = ['main.py', *sys.argv[1:]]\n"
            f"try:\n    runpy.run_path({str(MAIN)!r}, run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print(sorted(m for m in {modules!r} if m in sys.modules))")
    return ast.literal_eval(fresh_python(code, *argv).strip().splitlines()[-1])

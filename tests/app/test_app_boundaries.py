"""app/ is laid out by area (shell, live, files, history, wizard, calibration), and its parts talk
through signals and small public methods: no object reads or writes another object's private
attributes (``other._x``, ``self.panel._timer``, ``getattr(other, "_x")``). Only ``self._x``,
``cls._x`` and ``super()._x`` are an object's own; the few third-party and standard-library
privates with no public equivalent are listed in ALLOWED, each with its reason.

The source is read with ``ast``; a dunder (``x.__class__``) is not private.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
AREAS = {"shell", "live", "files", "history", "wizard", "calibration"}

# (file relative to the repository, expression): why it is allowed
ALLOWED = {
    ("app/live/devices.py", "sd._terminate"): "sounddevice has no public PortAudio re-scan",
    ("app/live/devices.py", "sd._initialize"): "sounddevice has no public PortAudio re-scan",
    ("app/shell/launch.py", "os._exit"): "the standard way to end with worker threads busy",
}
OWN = {"self", "cls"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own(node: ast.AST) -> bool:
    """``self``/``cls`` or ``super()``: the object's own attributes."""
    if isinstance(node, ast.Name):
        return node.id in OWN
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "super")


def private_accesses(source: str) -> list[tuple[int, str]]:
    """(line, expression) for every access to another object's private attribute in
    ``source``: ``x._name`` where ``x`` is not self/cls/super(), and getattr/setattr/hasattr/
    delattr with a private name given as a string."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr) and not _own(node.value):
            found.append((node.lineno, node.col_offset, ast.unparse(node)))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str) and _private(node.args[1].value)
              and not _own(node.args[0])):
            found.append((node.lineno, node.col_offset, ast.unparse(node)))
    return [(line, expr) for line, _col, expr in sorted(found)]


def test_the_scan_finds_other_objects_privates_and_spares_own_ones():
    source = ("class A:\n"
              "    def f(self, other):\n"
              "        self._mine = other._theirs\n"
              "        self.panel._timer.stop()\n"
              "        setattr(other, '_flag', True)\n"
              "        getattr(self, '_ok', None)\n"
              "        super()._base()\n"
              "        return cls._x, other.__class__, other.public\n")
    assert [e for _, e in private_accesses(source)] == [
        "other._theirs", "self.panel._timer", "setattr(other, '_flag', True)"]


def test_app_is_laid_out_by_area():
    folders = {p.name for p in APP.iterdir() if (p / "__init__.py").is_file()}
    assert folders == AREAS
    loose = sorted(p.name for p in APP.glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"modules outside an area in app/: {loose}"


def test_no_part_of_app_touches_another_objects_private_attributes():
    offences, used = [], set()
    for file in sorted(APP.rglob("*.py")):
        rel = file.relative_to(ROOT).as_posix()
        for line, expr in private_accesses(file.read_text(encoding="utf-8")):
            if (rel, expr) in ALLOWED:
                used.add((rel, expr))
            else:
                offences.append(f"{rel}:{line}: {expr}")
    assert offences == [], ("another object's private attribute; add a public method, "
                            "property or signal:\n" + "\n".join(offences))
    assert used == set(ALLOWED), f"stale ALLOWED entries: {sorted(set(ALLOWED) - used)}"

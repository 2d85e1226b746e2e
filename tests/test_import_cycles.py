"""No import cycle among the project's own modules (model/, app/, main.py), counting imports made
inside functions, and package ``__init__`` files that import nothing (a re-export there runs its
submodules whenever any sibling is imported, which makes cycles at run time and hides where a
name lives).

The graph is read from the source with ``ast``: an edge A -> B for every ``import B`` or
``from B import x`` anywhere in A (a function body, an ``if TYPE_CHECKING:`` block included),
absolute or relative, where B is a module of the project; ``from P import m`` where ``m`` is a
module of package ``P`` is an edge to ``P.m``. Importing ``P.m`` runs package ``P`` first, so the
edge also reaches every package above ``B``. The repository's folders are installed under one
name (pyproject.toml): ``model/x.py`` is ``ser_studio.model.x``, ``main.py`` ``ser_studio.main``.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "ser_studio"
SOURCES = ("model", "app", "main.py")


def project_modules(root: Path, sources=SOURCES) -> dict[str, Path]:
    """Dotted name (ser_studio.model.audio.vad; a package by its own name) -> file."""
    files = []
    for source in sources:
        path = root / source
        files += [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
    modules = {}
    for file in files:
        parts = list(file.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([PACKAGE, *parts])] = file
    return modules


def _targets(node: ast.AST, name: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """The project modules one import node names, from module ``name``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: from its own package (a package's __init__ is that package)
        anchor = name.split(".") if is_package else name.split(".")[:-1]
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports, with every package above each of them."""
    graph = {}
    for name, file in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            for target in _targets(node, name, file.name == "__init__.py", modules):
                while target and target not in modules:  # from m import a_function
                    target = target.rpartition(".")[0]
                while target:
                    if target in modules and target != name:
                        edges.add(target)
                    target = target.rpartition(".")[0]
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted; a
    module importing itself is no cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursive: the project is ~150 modules, far below the limit
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    inside = set(component)
    edges = [f"  {a} -> {b}" for a in component for b in sorted(graph[a] & inside)]
    return f"cycle of {len(component)}: {', '.join(component)}\n" + "\n".join(edges)


def test_the_project_has_no_import_cycle():
    modules = project_modules(ROOT)
    assert len(modules) > 100 and f"{PACKAGE}.model.inference.predictor" in modules
    graph = import_graph(modules)
    found = cycles(graph)
    assert not found, "\n".join(describe(c, graph) for c in found)


def test_the_stages_of_model_import_each_other_one_way():
    """The same at the level of model/'s packages (audio, features, inference...): the layout
    is a stack, no stage importing one that imports it back, however indirectly."""
    graph = import_graph(project_modules(ROOT))

    def stage(name: str) -> str:   # ser_studio.model.audio.vad -> ser_studio.model.audio
        return ".".join(name.split(".")[:3])

    stages: dict[str, set[str]] = {}
    for name, targets in graph.items():
        if name.startswith(f"{PACKAGE}.model."):
            stages.setdefault(stage(name), set()).update(
                stage(t) for t in targets if t.startswith(f"{PACKAGE}.model.")
                and stage(t) != stage(name))
    assert len(stages) > 12
    found = cycles(stages)
    assert not found, "\n".join(describe(c, stages) for c in found)


def test_the_app_never_imports_the_command_line():
    """app/ reads, overrides and writes run descriptions through model.config.run, as
    model/cli does; the command-line modules (argparse front ends) are no library for it."""
    graph = import_graph(project_modules(ROOT))
    cli = f"{PACKAGE}.model.cli"
    into_cli = sorted(f"{name} -> {target}" for name, targets in graph.items()
                      if name.startswith(f"{PACKAGE}.app.") for target in targets
                      if target == cli or target.startswith(f"{cli}."))
    assert any(name.startswith(f"{PACKAGE}.app.wizard.") for name in graph)
    assert not into_cli, "app/ imports the command line:\n" + "\n".join(into_cli)


def test_package_init_files_import_nothing():
    inits = sorted(ROOT.glob("model/**/__init__.py")) + sorted(ROOT.glob("app/**/__init__.py"))
    assert len(inits) >= 14
    importing = [str(f.relative_to(ROOT)) for f in inits
                 for node in ast.walk(ast.parse(f.read_text()))
                 if isinstance(node, (ast.Import, ast.ImportFrom))
                 and getattr(node, "module", None) != "__future__"]
    assert not importing, f"package __init__ files that import: {importing}"


def test_the_checker_finds_a_cycle_through_a_function_body_and_a_package(tmp_path):
    """A tree built to hold two cycles: one closed by an import inside a function, one by a
    package whose __init__ re-exports a submodule; and a chain that is no cycle."""
    files = {
        "model/__init__.py": "",
        "model/a.py": "from ser_studio.model import b\n",
        "model/b.py": "def late():\n    from ser_studio.model.a import thing\n",
        "model/c.py": "from .d import x\n",
        "model/d.py": "import ser_studio.model.e\n",
        "model/e.py": "import os\n",
        "model/p/__init__.py": "from ser_studio.model.p.inner import name\n",
        "model/p/inner.py": "from ser_studio.model.p.other import y\n",
        "model/p/other.py": "",
        "app/__init__.py": "",
        "main.py": "from ser_studio.model.c import x\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(project_modules(tmp_path))
    assert graph["ser_studio.model.c"] == {"ser_studio.model", "ser_studio.model.d"}
    assert cycles(graph) == [
        ["ser_studio.model.a", "ser_studio.model.b"],
        ["ser_studio.model.p", "ser_studio.model.p.inner"],
    ]

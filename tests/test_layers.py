"""The import floors of ../shared/notes/LAYOUT.md hold: a module never imports a higher floor.

Every ``import`` in every module of the package counts, lazy ones inside functions included.  A new
top-level package must be given a floor here (the test fails until it is).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import adaptive_csp

ROOT = Path(adaptive_csp.__file__).resolve().parent

#: top-level module or package of adaptive_csp -> floor (1 = ground ... 5 = applications and the face)
FLOORS: dict[str, int] = {
    "levels": 1, "util": 1, "data": 1, "nn": 1,
    "models": 2, "detect": 2, "sensors": 2, "quant": 2,
    "control": 3, "sim": 3, "power": 3,
    "engines": 4, "runtime": 4, "train": 4,
    "apps": 5, "commands": 5, "cli": 5, "__init__": 5, "__main__": 5,
}


def _unit(module: str) -> str:
    """``adaptive_csp.sim.device`` -> ``sim``; ``adaptive_csp`` itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of an adaptive_csp module in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "adaptive_csp":  # ``from adaptive_csp import x``: x may be a subpackage
                out += [(node.lineno, f"adaptive_csp.{a.name}") if a.name in FLOORS else (node.lineno, mod)
                        for a in node.names]
            else:
                out.append((node.lineno, mod))
    return [(ln, m) for ln, m in out if m == "adaptive_csp" or m.startswith("adaptive_csp.")]


def _sources() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def upward_imports(sources: list[Path]) -> list[str]:
    bad = []
    for path in sources:
        me = _unit(_module_name(path))
        for line, mod in _imports(path):
            them = _unit(mod)
            if them not in FLOORS:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}: {them!r} has no floor in FLOORS")
            elif FLOORS[them] > FLOORS[me]:
                bad.append(f"{path.relative_to(ROOT)}:{line} (floor {FLOORS[me]}) imports {mod} (floor {FLOORS[them]})")
    return bad


def test_every_unit_has_a_floor():
    units = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.is_file() and p.suffix == ".py") or (p.is_dir() and (p / "__init__.py").exists())}
    assert units <= set(FLOORS), f"give these a floor in FLOORS (LAYOUT.md): {sorted(units - set(FLOORS))}"


def test_lower_floors_never_import_higher_ones():
    assert upward_imports(_sources()) == []


@pytest.mark.parametrize("src,expect", [
    ("from adaptive_csp.control import get_policy\n", "(floor 2) imports adaptive_csp.control (floor 3)"),
    ("def f():\n    import adaptive_csp.runtime.runner\n", "imports adaptive_csp.runtime.runner (floor 4)"),
    ("from adaptive_csp import sim\n", "imports adaptive_csp.sim (floor 3)"),
    ("from adaptive_csp import AdaptiveRunner\n", "imports adaptive_csp (floor 5)"),
    ("from ..control import policy\n", "imports adaptive_csp.control (floor 3)"),
])
def test_the_check_sees_upward_imports(tmp_path, monkeypatch, src, expect):
    pkg = tmp_path / "adaptive_csp" / "sensors"
    pkg.mkdir(parents=True)
    f = pkg / "bad.py"
    f.write_text(src)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path / "adaptive_csp")
    (bad,) = upward_imports([f])
    assert expect in bad


def test_ops_know_no_dataset():
    """LAYOUT.md: generic code (pruning, the ops) takes a dataset; it never imports a particular one."""
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in _sources() if _unit(_module_name(p)) == "nn"
           for line, mod in _imports(p) if _unit(mod) == "data"]
    assert bad == []


def _from_module(node: ast.ImportFrom, name: str, path: Path) -> str:
    """The absolute module of ``from X import ...`` in module ``name`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def import_circles(sources: list[Path]) -> list[list[str]]:
    """Groups of modules that import each other in a circle (lazy imports inside functions included), as
    the strongly connected components of the module import graph with more than one member."""
    names = {_module_name(p): p for p in sources}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        deps = set()
        subs = {f"{m}.{a.name}" for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)
                for m in [_from_module(node, name, path)] for a in node.names}
        for mod in [m for _, m in _imports(path)] + sorted(s for s in subs if s in names):
            while mod and mod not in names:  # ``from pkg.mod import name`` -> the module pkg.mod
                mod = mod.rpartition(".")[0]
            if mod and mod != name and not name.startswith(mod + "."):  # a package's own __init__ is no edge
                deps.add(mod)
        graph[name] = deps
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert import_circles(_sources()) == []


def test_the_check_sees_an_import_circle(tmp_path, monkeypatch):
    pkg = tmp_path / "adaptive_csp" / "apps"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from adaptive_csp.apps.b import g\n")
    (pkg / "b.py").write_text("from adaptive_csp.apps import c\n")
    (pkg / "c.py").write_text("import adaptive_csp.apps.a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path / "adaptive_csp")
    assert import_circles(sorted(pkg.glob("*.py"))) == [["adaptive_csp.apps.a", "adaptive_csp.apps.b",
                                                         "adaptive_csp.apps.c"]]

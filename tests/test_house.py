"""House rules (issue #23): no function over 60 lines in ``adaptive_csp/`` or ``benchmarks/``.

A function's length runs from its ``def`` line to its last line, docstring included (decorators not).
Nested functions and methods count on their own, and the function around them counts them too.
ruff's size rules (C901, PLR0912, PLR0913, PLR0915 in pyproject.toml) cover the rest.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 60
CHECKED = ("adaptive_csp", "benchmarks")


def long_functions(root: Path, limit: int = MAX_LINES) -> list[tuple[str, int, str, int]]:
    """(path relative to ``root``, def line, name, lines) of every function in ``root``'s .py files over ``limit``."""
    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append((path.relative_to(root).as_posix(), node.lineno, node.name, lines))
        out += sorted(found, key=lambda f: f[1])
    return out


def test_no_function_over_60_lines():
    found = [f"{d}/{rel}:{line} {name} ({n} lines)" for d in CHECKED for rel, line, name, n in long_functions(ROOT / d)]
    assert not found, f"{len(found)} function(s) over {MAX_LINES} lines:\n" + "\n".join(found)


def _function(name: str, lines: int, *, indent: str = "", asynchronous: bool = False) -> str:
    """Source of a function exactly ``lines`` long: the def line, a docstring line, then assignments."""
    body = [f"{indent}    x{i} = {i}" for i in range(lines - 2)]
    head = f"{indent}{'async ' if asynchronous else ''}def {name}():"
    return "\n".join([head, f'{indent}    """Doc."""', *body]) + "\n"


def test_the_check_sees_a_61_line_function(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        "import os\n\n\n" + _function("ok", 60) + "\n\n" + _function("too_long", 61)
        + "\n\nclass C:\n" + _function("method", 61, indent="    ")
        + "\n\n" + _function("coro", 62, asynchronous=True))
    found = long_functions(tmp_path)
    assert [(rel, name, n) for rel, _, name, n in found] == [
        ("pkg/mod.py", "too_long", 61), ("pkg/mod.py", "method", 61), ("pkg/mod.py", "coro", 62)]
    assert not [f for f in found if f[2] == "ok"]  # exactly 60 lines is allowed
    assert long_functions(tmp_path, limit=62) == []

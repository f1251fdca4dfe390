"""The README stays short and the docs stay whole (issue #23, item 7).

Fails when README.md is over 250 lines, when a relative link in README.md or docs/**/*.md points to a file
(or a heading anchor) that does not exist, or when a table in docs/results/ has no command heading it.

"Headed" means: between the heading that opens the table's section (that heading line included) and the
table, there is a command, written as an inline code span or as a line of a fenced block, that starts with
``adaptive-csp `` or ``python benchmarks/``. A table is a run of lines starting with ``|`` that holds a
``|---`` separator row; tables pasted inside a fenced benchmark output count too. Headings inside fences
(benchmark outputs print ``###`` lines) do not open sections. docs/results/README.md is the index of those
pages (its one table lists them) and is not checked for commands.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250
COMMAND_PREFIXES = ("adaptive-csp ", "python benchmarks/")

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_TABLE_SEP = re.compile(r"^\s*\|\s*:?-{3,}")
_CODE_SPAN = re.compile(r"`([^`]+)`")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _lines_outside_fences(text: str):
    """(line number, line, inside a fence) for every line."""
    fence = False
    for i, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            yield i, line, True
            fence = not fence
            continue
        yield i, line, fence


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = text.replace("`", "")
    text = unicodedata.normalize("NFC", text).strip().lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line, fenced in _lines_outside_fences(path.read_text(encoding="utf-8")):
        m = None if fenced else _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def relative_links(path: Path):
    """(line number, target) for every link that is not a URL, outside fenced blocks and code spans."""
    for i, line, fenced in _lines_outside_fences(path.read_text(encoding="utf-8")):
        if fenced:
            continue
        for m in _LINK.finditer(_CODE_SPAN.sub("", line)):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            yield i, target


def broken_links(path: Path) -> list[str]:
    bad = []
    for i, target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        dest = path if not file_part else (path.parent / unquote(file_part)).resolve()
        where = f"{path.relative_to(ROOT)}:{i}: {target}"
        if not dest.exists():
            bad.append(f"{where} (no such file)")
        elif anchor and dest.suffix == ".md" and unquote(anchor).lower() not in anchors(dest):
            bad.append(f"{where} (no heading with anchor #{anchor} in {dest.relative_to(ROOT)})")
    return bad


def tables_without_command(path: Path) -> list[str]:
    """Tables in `path` with no command between their section's heading and themselves."""
    lines = list(_lines_outside_fences(path.read_text(encoding="utf-8")))
    bad, section, i = [], [], 0
    while i < len(lines):
        n, line, fenced = lines[i]
        if not fenced and _HEADING.match(line):
            section = []
        if line.lstrip().startswith("|"):
            j = i
            while j < len(lines) and lines[j][1].lstrip().startswith("|"):
                j += 1
            if any(_TABLE_SEP.match(lines[k][1]) for k in range(i, j)) and not _has_command(section):
                bad.append(f"{path.relative_to(ROOT)}:{n}: table with no `adaptive-csp ...` or "
                           f"`python benchmarks/...` command above it in its section")
            section.extend(lines[i:j])
            i = j
            continue
        section.append(lines[i])
        i += 1
    return bad


def _has_command(section) -> bool:
    prose = "\n".join(line for _, line, fenced in section if not fenced)
    spans = (" ".join(s.split()) for s in _CODE_SPAN.findall(prose))  # a span may wrap over lines
    fenced = (line.strip().removeprefix("$ ") for _, line, f in section if f)
    return any(s.startswith(COMMAND_PREFIXES) for s in (*spans, *fenced))


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES}): move depth to docs/"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_results_tables_have_their_command():
    pages = sorted(p for p in (DOCS / "results").glob("*.md") if p.name != "README.md")
    assert pages, "docs/results/ holds no pages"
    bad = [b for p in pages for b in tables_without_command(p)]
    assert bad == [], "\n".join(bad)


def test_docs_pages_exist():
    for name in ("demo", "policies", "training", "detection", "engines", "simulation", "power-study"):
        assert (DOCS / f"{name}.md").is_file(), f"docs/{name}.md is missing"


def test_checker_sees_what_it_should(tmp_path, monkeypatch):
    """The checks themselves: a missing file, a missing anchor and a table without its command are found."""
    monkeypatch.setitem(globals(), "ROOT", tmp_path)  # paths in messages relative to tmp_path
    (tmp_path / "a.md").write_text("# Top `x`\n\n[ok](#top-x) [gone](b.md) [bad](#nope) `[code](c.md)`\n",
                                   encoding="utf-8")
    assert [b.split(" (")[0] for b in broken_links(tmp_path / "a.md")] == ["a.md:3: b.md", "a.md:3: #nope"]
    (tmp_path / "r.md").write_text(
        "## `python benchmarks/x.py`\n\n| a |\n|---|\n\n## bare\n\n```\n### not a heading\n| b |\n|---|\n```\n",
        encoding="utf-8")
    bad = tables_without_command(tmp_path / "r.md")
    assert len(bad) == 1 and bad[0].startswith("r.md:10:")

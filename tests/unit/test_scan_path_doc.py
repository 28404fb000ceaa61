"""docs/scan-path.md matches the code: every file it names exists, and every function or
method of a step is defined in one of that step's files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "scan-path.md"


def _defined(path: Path) -> set[str]:
    """Names defined in *path*: functions, classes, and ``Class.method``."""
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    names.add(f"{node.name}.{item.name}")
                    names.add(item.name)  # "-> _settle" after "Courier._on_puback"
    return names


def _rows() -> list[tuple[str, list[str], list[str]]]:
    rows = []
    for line in DOC.read_text("utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].isdigit():
            files = re.findall(r"`([^`]+\.py)`", cells[3])
            names = re.findall(r"[A-Za-z_][\w.]*", " ".join(re.findall(r"`([^`]+)`", cells[4])))
            rows.append((cells[0], files, names))
    return rows


def test_the_table_has_the_whole_path_in_order() -> None:
    rows = _rows()
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) >= 15
    assert "Panel._released" in rows[0][2] and "Outbox.mark_delivered" in rows[-1][2]


def test_every_step_names_code_that_exists() -> None:
    for step, files, names in _rows():
        assert files and names, step
        defined: set[str] = set()
        for f in files:
            assert (ROOT / f).is_file(), f"step {step}: no file {f}"
            defined |= _defined(ROOT / f)
        missing = [n for n in names if n not in defined]
        assert not missing, f"step {step}: {missing} not defined in {files}"

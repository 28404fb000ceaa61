"""Side-car metadata for a library build: a CSV or TOML file describing the spectra files.

CSV: a header row naming columns among ``file, name, aliases, cas, formula, salt_form,
category, family, notes, source`` (``aliases`` separated by ``;``). TOML: ``[[entry]]``
tables with the same keys. A row applies to the spectrum whose file name (with or without
extension) equals ``file``, else whose name equals ``name`` (case-insensitive); with
``file`` given, ``name`` renames the entry.
"""

from __future__ import annotations

import csv
import io
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import LibraryError

#: Descriptive fields of a library entry that side-cars and band tables may set.
ENTRY_FIELDS = (
    "name",
    "aliases",
    "cas",
    "formula",
    "salt_form",
    "category",
    "family",
    "notes",
    "source",
)
#: Side-car columns: the spectrum file they describe, then the entry fields.
FIELDS = ("file", *ENTRY_FIELDS)


@dataclass(frozen=True)
class SideCar:
    """Metadata rows indexed by file name and by substance name (casefolded keys)."""

    by_file: dict[str, dict[str, Any]]
    by_name: dict[str, dict[str, Any]]

    def lookup(self, path: Path, name: str) -> dict[str, Any]:
        """The row for spectrum file *path* / substance *name*, or an empty dict."""
        for key in (path.name.casefold(), path.stem.casefold()):
            if key in self.by_file:
                return self.by_file[key]
        return self.by_name.get(name.strip().casefold(), {})


def _clean(row: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = {k for k in row if k is not None and k.strip() not in FIELDS}
    if unknown:
        raise LibraryError(f"{where}: unknown column(s) {sorted(unknown)}; known: {FIELDS}")
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value is None or value == "":
            continue
        key = key.strip()
        if key == "aliases":
            items = value if isinstance(value, list) else str(value).split(";")
            out[key] = tuple(str(a).strip() for a in items if str(a).strip())
        else:
            out[key] = str(value).strip()
    if "file" not in out and "name" not in out:
        raise LibraryError(f"{where}: a row needs 'file' or 'name'")
    return out


def load_sidecar(path: Path | str) -> SideCar:
    """Parse a side-car metadata file (.csv or .toml); raises :class:`LibraryError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise LibraryError(f"cannot read metadata file {p}: {err}") from err
    rows: list[dict[str, Any]] = []
    if p.suffix.lower() == ".toml":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise LibraryError(f"{p}: invalid TOML: {err}") from err
        tables = doc.get("entry", [])
        if not isinstance(tables, list):
            raise LibraryError(f"{p}: expected [[entry]] tables")
        rows = [_clean(t, f"{p}: entry {i + 1}") for i, t in enumerate(tables)]
    elif p.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        rows = [_clean(r, f"{p}:{reader.line_num}") for r in reader]
    else:
        raise LibraryError(f"{p}: metadata must be a .csv or .toml file")
    by_file: dict[str, dict[str, Any]] = {}
    by_name: dict[str, dict[str, Any]] = {}
    for row in rows:
        if "file" in row:
            by_file[row["file"].casefold()] = row
        else:
            by_name[row["name"].casefold()] = row
    return SideCar(by_file, by_name)

"""Build a library from spectrum files: JCAMP-DX, CSV and JSON records.

Files are read with :mod:`spectra_io`; each spectrum becomes absorbance on the
grid (:func:`edge.library.convert.record_to_grid`). Metadata comes from the file (JCAMP
labels, JSON fields) and is overridden by a side-car CSV/TOML (:mod:`edge.library.metadata`).
A bad file is reported (file, line, reason) and skipped; the library is written once, at
the end, so a failed build leaves nothing half-imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.errors import LibraryError
from edge.library.categories import map_enfsi_category, parse_category
from edge.library.convert import record_to_grid
from edge.library.format import LibraryEntry, save_library
from edge.library.metadata import SideCar, load_sidecar
from edge.preprocess.grid import STANDARD_GRID
from spectra_io import JCAMP_EXTENSIONS, SpectrumRecord, read_json_records, read_spectrum
from spectra_io.errors import SpectrumFileError

#: File extensions picked up when a source is a directory.
SPECTRUM_EXTENSIONS = frozenset({*JCAMP_EXTENSIONS, ".csv", ".json"})


@dataclass(frozen=True)
class Problem:
    """Why one file (or one record in it) was skipped."""

    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


@dataclass
class BuildReport:
    """Outcome of :func:`build_library`: what was imported, what was skipped."""

    out: Path
    entries: list[LibraryEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    content_hash: str | None = None
    files_read: int = 0


def iter_source_files(sources: Sequence[Path | str]) -> Iterator[Path]:
    """Each spectrum file named by *sources* (directories searched recursively, sorted)."""
    for src in sources:
        p = Path(src)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                wanted = f.suffix.lower() in SPECTRUM_EXTENSIONS and not f.name.startswith(".")
                if wanted and f.is_file():
                    yield f
        else:
            yield p


def _read(path: Path) -> list[SpectrumRecord]:
    if path.suffix.lower() == ".json":
        return read_json_records(path)
    return [read_spectrum(path)]


def _category(meta: dict[str, Any], name: str, default: str | None) -> tuple[str, str | None]:
    """(category, family) from side-car / file metadata, ENFSI strings, else *default*."""
    raw = meta.get("category")
    family = meta.get("family")
    if raw:
        try:
            return parse_category(raw).value, family
        except ValueError:
            try:
                cat, fam = map_enfsi_category(raw, name)
            except ValueError:
                raise LibraryError(f"unknown category {raw!r}") from None
            return cat.value, family or fam
    if default:
        return parse_category(default).value, family
    raise LibraryError("no category (give one in the metadata file or with --category)")


def entry_from_record(
    record: SpectrumRecord,
    path: Path,
    valid_range: tuple[float, float],
    sidecar: SideCar | None = None,
    default_category: str | None = None,
) -> LibraryEntry:
    """The library entry for *record* read from *path*, metadata merged (side-car wins)."""
    fmeta = dict(record.metadata)
    name = fmeta.get("name") or record.title.strip() or path.stem
    override = sidecar.lookup(path, name) if sidecar else {}
    merged: dict[str, Any] = {**fmeta, **override}
    name = str(override.get("name") or name).strip()
    aliases = merged.get("aliases") or merged.get("names") or ()  # JCAMP ##NAMES= synonyms
    if isinstance(aliases, str):
        aliases = tuple(a.strip() for a in aliases.split(";") if a.strip())
    category, family = _category(merged, name, default_category)
    extra: dict[str, str] = {
        k: fmeta[k] for k in ("inchikey", "enfsi_id", "measurement") if k in fmeta
    }
    extra["file"] = path.name
    source = merged.get("source") or fmeta.get("origin") or ""
    return LibraryEntry.create(
        name,
        category,
        family,
        aliases=tuple(a for a in aliases if a.casefold() != name.casefold()),
        cas=merged.get("cas") or None,
        formula=merged.get("formula") or merged.get("molform") or None,
        salt_form=merged.get("salt_form") or merged.get("form") or None,
        notes=str(merged.get("notes") or ""),
        source=f"{source} ({path.name})" if source else path.name,
        valid_range=valid_range,
        extra=extra,
    )


def build_library(
    sources: Sequence[Path | str],
    out: Path | str,
    metadata: Path | str | None = None,
    *,
    name: str | None = None,
    version: str = "1",
    default_category: str | None = None,
    grid: npt.NDArray[np.float64] = STANDARD_GRID,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> BuildReport:
    """Import every spectrum in *sources* into a new library written at *out*.

    Bad files are collected in ``report.problems`` and skipped (with *strict*, any problem
    aborts the build and nothing is written). *progress* is called with 1 per file read.
    Raises :class:`LibraryError` when no spectrum could be imported, the metadata file is bad,
    or writing fails.
    """
    out = Path(out)
    sidecar = load_sidecar(metadata) if metadata else None
    if default_category:
        parse_category(default_category)  # fail early on a typo
    report = BuildReport(out=out)
    rows: list[npt.NDArray[np.float32]] = []
    seen: dict[str, str] = {}
    for path in iter_source_files(sources):
        if progress is not None and report.files_read:
            progress(1)
        report.files_read += 1
        try:
            records = _read(path)
        except SpectrumFileError as err:
            report.problems.append(Problem(str(path), err.reason, err.line))
            continue
        for i, record in enumerate(records):
            label = str(path) if len(records) == 1 else f"{path} [record {i}]"
            try:
                absorb, valid = record_to_grid(record, grid)
                entry = entry_from_record(record, path, valid, sidecar, default_category)
            except LibraryError as err:
                report.problems.append(Problem(label, str(err)))
                continue
            key = entry.name.casefold()
            if key in seen:
                report.problems.append(
                    Problem(label, f"duplicate name {entry.name!r} (first in {seen[key]})")
                )
                continue
            seen[key] = label
            report.entries.append(entry)
            rows.append(absorb)
    if progress is not None and report.files_read:
        progress(1)
    if strict and report.problems:
        raise LibraryError(
            f"{len(report.problems)} file(s) could not be imported; nothing written:\n"
            + "\n".join(f"  {p}" for p in report.problems)
        )
    if not report.entries:
        detail = "".join(f"\n  {p}" for p in report.problems)
        raise LibraryError(f"no spectrum could be imported from {list(map(str, sources))}{detail}")
    spectra = np.vstack(rows).astype(np.float32)
    report.content_hash = save_library(
        out, grid, spectra, report.entries, name=name or out.name, version=version
    )
    return report

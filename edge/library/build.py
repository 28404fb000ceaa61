"""Build a library from spectrum files: JCAMP-DX, CSV and JSON records.

Files are read with :mod:`spectra_io`; each spectrum becomes absorbance on the
grid (:func:`edge.library.convert.record_to_grid`). Metadata comes from the file (JCAMP
labels, JSON fields) and is overridden by a side-car CSV/TOML (:mod:`edge.library.metadata`).
A bad file is reported (file, line, reason) and skipped, whatever went wrong in reading it;
a side-car metadata table among the spectra (the ``--metadata`` file, or any CSV whose header
names only side-car columns) is ignored, not taken for a bad spectrum; a file read with a
:class:`~spectra_io.errors.SpectrumFileWarning` is imported and the warning reported. The
library is written once, at the end, so a failed build leaves nothing half-imported.
"""

from __future__ import annotations

import csv
import logging
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.errors import LibraryError
from edge.library.categories import map_enfsi_category, parse_category
from edge.library.convert import record_to_grid
from edge.library.format import LibraryEntry, save_library
from edge.library.metadata import FIELDS, SideCar, load_sidecar
from edge.preprocess.grid import STANDARD_GRID
from spectra_io import JCAMP_EXTENSIONS, SpectrumRecord, read_json_records, read_spectrum
from spectra_io.errors import SpectrumFileError, SpectrumFileWarning

log = logging.getLogger(__name__)

#: File extensions picked up when a source is a directory.
SPECTRUM_EXTENSIONS = frozenset({*JCAMP_EXTENSIONS, ".csv", ".json"})


@dataclass(frozen=True)
class Problem:
    """Why one file (or one record in it) was skipped, ignored or warned about.

    ``kind`` groups problems for the summary: ``unreadable`` (the file cannot be read as a
    spectrum), ``unusable`` (read, but no library entry can be made of it), ``duplicate``,
    ``unexpected`` (an error the readers did not foresee), ``not a spectrum`` (ignored) or
    ``warning`` (imported).
    """

    path: str
    reason: str
    line: int | None = None
    kind: str = "unreadable"

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
    ignored: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        """One line: entries, files, and how many were skipped and why."""
        text = f"{len(self.entries)} entries from {self.files_read} file(s)"
        kinds = Counter(p.kind for p in self.problems)
        why = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        text += f", {len(self.problems)} skipped" + (f" ({why})" if why else "")
        if self.ignored:
            text += f", {len(self.ignored)} ignored (not a spectrum)"
        if self.warnings:
            text += f", {len(self.warnings)} warning(s)"
        return text


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


def _read_reporting(path: Path, report: BuildReport) -> list[SpectrumRecord] | None:
    """The records of *path*, or None with the reason in *report*; warnings recorded too.

    Whatever goes wrong in reading one file (a reader's own error, or any other exception)
    is that file's problem, never the whole build's.
    """
    records: list[SpectrumRecord] | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpectrumFileWarning)
        try:
            records = _read(path)
        except SpectrumFileError as err:
            report.problems.append(Problem(str(path), err.reason, err.line))
        except Exception as err:  # any failure is this file's, not the build's
            log.debug("unexpected error reading %s", path, exc_info=True)
            reason = f"unexpected {type(err).__name__} while reading: {err}"
            report.problems.append(Problem(str(path), reason, kind="unexpected"))
    for w in caught:
        if isinstance(w.message, SpectrumFileWarning):
            msg = w.message
            report.warnings.append(Problem(str(path), msg.reason, msg.line, "warning"))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return records


def sidecar_columns(path: Path) -> list[str] | None:
    """The columns of *path* when it is a side-car metadata table rather than a spectrum.

    A CSV is one when the first row that is not a comment names only side-car columns
    (:data:`edge.library.metadata.FIELDS`), among them ``file`` or ``name``: it has no
    spectral axis. None otherwise (or when the file cannot be read: the reader will say why).
    """
    if path.suffix.lower() != ".csv":
        return None
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            for _ in range(1000):
                line = fh.readline(4096)
                if not line:
                    return None
                if line.strip() and not line.lstrip().startswith("#"):
                    break
            else:
                return None
    except OSError:
        return None
    row = next(csv.reader([line]), [])
    columns = [c.strip().lower() for c in row if c.strip()]
    known = bool(columns) and all(c in FIELDS for c in columns)
    return columns if known and ("file" in columns or "name" in columns) else None


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
) -> BuildReport:
    """Import every spectrum in *sources* into a new library written at *out*.

    Bad files are collected in ``report.problems`` and skipped (with *strict*, any problem
    aborts the build and nothing is written). Raises :class:`LibraryError` when no
    spectrum could be imported, the metadata file is bad, or writing fails.
    """
    out = Path(out)
    sidecar = load_sidecar(metadata) if metadata else None
    metadata_file = Path(metadata).resolve() if metadata else None
    if default_category:
        parse_category(default_category)  # fail early on a typo
    report = BuildReport(out=out)
    rows: list[npt.NDArray[np.float32]] = []
    seen: dict[str, str] = {}
    for path in iter_source_files(sources):
        if metadata_file is not None and path.resolve() == metadata_file:
            report.ignored.append(Problem(str(path), "the --metadata file", kind="not a spectrum"))
            continue
        columns = sidecar_columns(path)
        if columns is not None:
            reason = f"a metadata table (columns {', '.join(columns)}), not a spectrum"
            report.ignored.append(Problem(str(path), reason, kind="not a spectrum"))
            continue
        report.files_read += 1
        records = _read_reporting(path, report)
        if records is None:
            continue
        for i, record in enumerate(records):
            label = str(path) if len(records) == 1 else f"{path} [record {i}]"
            try:
                absorb, valid = record_to_grid(record, grid)
                entry = entry_from_record(record, path, valid, sidecar, default_category)
            except LibraryError as err:
                report.problems.append(Problem(label, str(err), kind="unusable"))
                continue
            except Exception as err:  # one record's failure skips that record, not the build
                log.debug("unexpected error importing %s", label, exc_info=True)
                reason = f"unexpected {type(err).__name__} while importing: {err}"
                report.problems.append(Problem(label, reason, kind="unexpected"))
                continue
            key = entry.name.casefold()
            if key in seen:
                report.problems.append(
                    Problem(
                        label,
                        f"duplicate name {entry.name!r} (first in {seen[key]})",
                        kind="duplicate",
                    )
                )
                continue
            seen[key] = label
            report.entries.append(entry)
            rows.append(absorb)
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

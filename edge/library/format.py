"""The on-disk reference library: a directory with a manifest, spectra and metadata.

Layout of a library directory::

    LIB/
      manifest.json   format version, name, version, grid (start/stop/step), entry count,
                      sha256 of the content, per-file sha256, created time
      spectra.npy     float32, shape (n, len(grid)): absorbance of each entry on the grid
                      (not normalised; 0 outside the entry's ``valid_range``)
      entries.json    one object per entry, same order as the rows of spectra.npy

``content_sha256`` is the sha256 of the raw float32 data of the spectra (C order,
little-endian) followed by the bytes of ``entries.json``: it names the content, not the
time it was written, so regenerating the same library gives the same hash. Loading reads
``spectra.npy`` memory-mapped and hashes it in one pass of plain reads (not through the map,
which would make the whole matrix resident); any mismatch, missing file or bad field raises
:class:`edge.errors.LibraryError`.

Writes are atomic: everything goes to a temporary sibling directory, each file is fsynced,
then the directory is renamed into place (an existing library is first renamed aside and
removed only after the new one is in place; anything at the target that is not a library
or an empty directory is never replaced).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.errors import LibraryError
from edge.identify.result import Substance
from edge.library.categories import Category, Severity, check_family, parse_category, severity_of
from edge.preprocess.grid import STANDARD_GRID
from edge.shipped import MODELS_ENV, shipped_models_dir
from spectra_io.atomic import replace_dir
from spectra_io.sealed import seal, seal_problem

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SPECTRA = "spectra.npy"
ENTRIES = "entries.json"


FloatArray = npt.NDArray[np.floating[Any]]
GridArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LibraryEntry:
    """Metadata of one reference substance (one row of the library's spectra)."""

    name: str
    category: str
    family: str | None = None
    severity: Severity = "info"
    aliases: tuple[str, ...] = ()
    cas: str | None = None
    formula: str | None = None
    salt_form: str | None = None
    notes: str = ""
    source: str = ""
    user_added: bool = False
    valid_range: tuple[float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str, category: str, family: str | None = None, **kw: Any) -> LibraryEntry:
        """An entry with *category* and *family* validated and the severity derived.

        Raises :class:`LibraryError` for an empty name, unknown category or bad family.
        """
        if not name or not name.strip():
            raise LibraryError("an entry needs a non-empty name")
        try:
            cat = parse_category(category)
            fam = check_family(cat, family)
        except ValueError as err:
            raise LibraryError(f"{name}: {err}") from err
        kw.setdefault("severity", severity_of(cat))
        if "aliases" in kw:
            kw["aliases"] = tuple(a for a in kw["aliases"] if a)
        return cls(name=name.strip(), category=cat.value, family=fam, **kw)

    def to_json(self) -> dict[str, Any]:
        """The entry as stored in ``entries.json``."""
        return {
            "name": self.name,
            "category": self.category,
            "family": self.family,
            "severity": self.severity,
            "aliases": list(self.aliases),
            "cas": self.cas,
            "formula": self.formula,
            "salt_form": self.salt_form,
            "notes": self.notes,
            "source": self.source,
            "user_added": self.user_added,
            "valid_range": list(self.valid_range) if self.valid_range else None,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LibraryEntry:
        """Parse one ``entries.json`` object; raises :class:`LibraryError` when malformed."""
        try:
            vr = d.get("valid_range")
            entry = cls(
                name=str(d["name"]),
                category=_category_value(d["category"]),
                family=d.get("family"),
                severity=d.get("severity") or severity_of(d["category"]),
                aliases=tuple(str(a) for a in d.get("aliases") or ()),
                cas=d.get("cas"),
                formula=d.get("formula"),
                salt_form=d.get("salt_form"),
                notes=str(d.get("notes") or ""),
                source=str(d.get("source") or ""),
                user_added=bool(d.get("user_added", False)),
                valid_range=(float(vr[0]), float(vr[1])) if vr else None,
                extra=dict(d.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise LibraryError(f"bad entry {d.get('name', '?')!r} in {ENTRIES}: {err}") from err
        if entry.severity not in ("alarm", "warn", "info"):
            raise LibraryError(f"bad severity {entry.severity!r} for {entry.name!r}")
        return entry

    def to_substance(self) -> Substance:
        """The entry as reported in an identification result."""
        return Substance(
            name=self.name,
            category=self.category,
            family=self.family,
            severity=self.severity,
            cas=self.cas,
        )


_CATEGORY_VALUES = frozenset(c.value for c in Category)


def _category_value(value: Any) -> str:
    if value not in _CATEGORY_VALUES:
        raise ValueError(f"unknown category {value!r}")
    return str(value)


def _entries_bytes(entries: Sequence[LibraryEntry]) -> bytes:
    """Canonical bytes of ``entries.json`` (sorted keys, stable across runs)."""
    doc = [e.to_json() for e in entries]
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _content_hash(spectra: npt.NDArray[np.float32], entries_bytes: bytes) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(spectra, dtype="<f4").data)
    h.update(entries_bytes)
    return h.hexdigest()


def _loaded_content_hash(spectra: np.memmap, path: Path, entries_bytes: bytes) -> str:
    """:func:`_content_hash` of spectra just memory-mapped whole from *path*, read from the
    file rather than through the map."""
    if not spectra.flags.c_contiguous:  # a Fortran-order file: hash the values as usual
        return _content_hash(spectra, entries_bytes)
    h = hashlib.sha256()
    _hash_file_range(h, path, int(spectra.offset), int(spectra.nbytes))
    h.update(entries_bytes)
    return h.hexdigest()


#: Bytes read at a time when hashing a memory-mapped library's spectra.
HASH_CHUNK = 1 << 20


def _hash_file_range(h: Any, path: Path, offset: int, nbytes: int) -> None:
    """Feed *nbytes* of *path* from *offset* to *h* with ordinary reads: hashing through the
    memory map would page the whole matrix into this process (its resident size grows by
    the library's size, 170 MB at 50,000 entries), a plain read leaves it in the page cache."""
    buf = bytearray(min(HASH_CHUNK, max(nbytes, 1)))
    view = memoryview(buf)
    with open(path, "rb") as fh:
        fh.seek(offset)
        left = nbytes
        while left > 0:
            got = fh.readinto(view[: min(left, len(buf))])
            if not got:
                raise LibraryError(f"{path}: spectra end early; library corrupt")
            h.update(view[:got])
            left -= got


class Library:
    """A loaded reference library: grid, spectra (rows) and entries (metadata per row).

    ``spectra`` is read-only (a memory map when loaded from disk). Look entries up with
    :meth:`index` (name or alias, case-insensitive).
    """

    def __init__(
        self,
        grid: FloatArray,
        spectra: npt.NDArray[np.float32],
        entries: Sequence[LibraryEntry],
        *,
        name: str = "library",
        version: str = "0",
        content_hash: str | None = None,
        path: Path | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        grid_ = np.asarray(grid, dtype=np.float64)
        if spectra.ndim != 2 or spectra.shape != (len(entries), grid_.size):
            raise LibraryError(
                f"spectra shape {spectra.shape} does not match {len(entries)} entries "
                f"x {grid_.size} grid points"
            )
        self.grid: GridArray = grid_
        self.spectra = spectra
        self.entries = list(entries)
        self.name = name
        self.version = version
        self.path = path
        self.manifest = manifest or {}
        self.content_hash = content_hash or _content_hash(spectra, _entries_bytes(entries))
        self._lookup: dict[str, int] = {}
        for i, e in enumerate(self.entries):
            key = e.name.casefold()
            if key in self._lookup:
                raise LibraryError(f"duplicate entry name {e.name!r}")
            self._lookup[key] = i
        for i, e in enumerate(self.entries):
            for alias in e.aliases:
                self._lookup.setdefault(alias.casefold(), i)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return (
            f"Library({self.name!r}, version={self.version!r}, entries={len(self)}, "
            f"hash={self.content_hash[:12]})"
        )

    def names(self) -> list[str]:
        """Entry names in row order."""
        return [e.name for e in self.entries]

    def index(self, name_or_alias: str) -> int:
        """Row of the entry called *name_or_alias* (a name or an alias, case-insensitive).

        Raises :class:`LibraryError` (a ``ValueError``) when there is none.
        """
        try:
            return self._lookup[name_or_alias.strip().casefold()]
        except KeyError:
            raise LibraryError(f"no entry {name_or_alias!r} in library {self.name!r}") from None

    def __contains__(self, name_or_alias: object) -> bool:
        return isinstance(name_or_alias, str) and name_or_alias.strip().casefold() in self._lookup

    def entry(self, name_or_alias: str) -> LibraryEntry:
        """The entry called *name_or_alias*."""
        return self.entries[self.index(name_or_alias)]

    def absorbance(self, name_or_alias: str) -> tuple[GridArray, npt.NDArray[np.float32]]:
        """``(grid, absorbance)`` of one entry (a copy, safe to modify)."""
        return self.grid, np.array(self.spectra[self.index(name_or_alias)], dtype=np.float32)

    def measured(self, row: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Row *row* where it carries data: the grid points with a finite value inside the
        entry's ``valid_range``, and its absorbance there (float64 copies)."""
        y = np.asarray(self.spectra[row], dtype=np.float64)
        ok = np.isfinite(y)
        vr = self.entries[row].valid_range
        if vr is not None:
            ok &= (self.grid >= vr[0]) & (self.grid <= vr[1])
        return np.asarray(self.grid, dtype=np.float64)[ok], y[ok]

    def subset(self, indices: Iterable[int]) -> Library:
        """A new in-memory library holding only the rows *indices* (in that order)."""
        idx = [int(i) for i in indices]
        return Library(
            self.grid,
            np.array(self.spectra[idx], dtype=np.float32),
            [self.entries[i] for i in idx],
            name=self.name,
            version=self.version,
        )

    def with_entry(self, entry: LibraryEntry, absorbance: FloatArray) -> Library:
        """A new in-memory library with *entry* appended (its name must be new)."""
        if entry.name in self or any(a in self for a in entry.aliases):
            raise LibraryError(f"library {self.name!r} already has an entry {entry.name!r}")
        row = np.asarray(absorbance, dtype=np.float32).reshape(1, -1)
        if row.shape[1] != self.grid.size:
            raise LibraryError(f"spectrum has {row.shape[1]} points, grid has {self.grid.size}")
        spectra = np.concatenate([np.asarray(self.spectra, dtype=np.float32), row])
        return Library(
            self.grid, spectra, [*self.entries, entry], name=self.name, version=self.version
        )

    def without(self, name_or_alias: str) -> Library:
        """A new in-memory library without the entry *name_or_alias*."""
        drop = self.index(name_or_alias)
        return self.subset(i for i in range(len(self)) if i != drop)

    def valid_mask(self) -> npt.NDArray[np.bool_]:
        """``(n, grid)`` booleans: True where each entry was measured (see ``valid_range``)."""
        mask = np.ones((len(self), self.grid.size), dtype=bool)
        for i, e in enumerate(self.entries):
            if e.valid_range is not None:
                lo, hi = e.valid_range
                mask[i] = (self.grid >= lo - 1e-9) & (self.grid <= hi + 1e-9)
        return mask

    def substance(self, row: int) -> Substance:
        """The :class:`~edge.identify.result.Substance` of row *row*."""
        return self.entries[row].to_substance()

    def category_counts(self) -> dict[str, int]:
        """Number of entries per category, in :class:`Category` order (zeros omitted)."""
        counts = {c.value: 0 for c in Category}
        for e in self.entries:
            counts[e.category] = counts.get(e.category, 0) + 1
        return {k: v for k, v in counts.items() if v}


def default_library_path() -> Path:
    """The shipped library (``library/`` of :func:`edge.shipped.shipped_models_dir`)."""
    return shipped_models_dir() / "library"


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _check_replaceable(path: Path) -> None:
    """Refuse to replace anything but a library directory or an empty directory."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        raise LibraryError(f"{path} exists and is not a library directory; not replacing it")
    if (path / MANIFEST).is_file() or not any(path.iterdir()):
        return
    raise LibraryError(f"{path} is a non-empty directory without {MANIFEST}; not replacing it")


def save_library(
    path: Path | str,
    grid: FloatArray,
    spectra: FloatArray,
    entries: Sequence[LibraryEntry],
    name: str = "library",
    version: str = "1",
    *,
    created: str | None = None,
    description: str = "",
) -> str:
    """Write a library directory at *path* atomically; return its content sha256.

    *grid* must be evenly spaced and increasing (stored as start, step, points). *spectra* is
    ``(len(entries), len(grid))`` absorbance. *created* (ISO 8601) defaults to now; pass a
    fixed value for byte-identical regeneration. Raises :class:`LibraryError`.
    """
    path = Path(path)
    grid = np.asarray(grid, dtype=np.float64)
    data = np.ascontiguousarray(spectra, dtype="<f4")
    if grid.ndim != 1 or grid.size < 2:
        raise LibraryError("the grid needs at least two points")
    step = float(grid[1] - grid[0])
    if step <= 0 or not np.allclose(np.diff(grid), step, rtol=0, atol=1e-6 * abs(step)):
        raise LibraryError("the grid must be evenly spaced and increasing")
    grid = float(grid[0]) + step * np.arange(grid.size, dtype=np.float64)
    if data.shape != (len(entries), grid.size):
        raise LibraryError(
            f"spectra shape {data.shape} does not match {len(entries)} entries x {grid.size}"
        )
    if not np.all(np.isfinite(data)):
        raise LibraryError("spectra contain NaN or infinite values")
    seen: set[str] = set()
    for e in entries:
        if e.name.casefold() in seen:
            raise LibraryError(f"duplicate entry name {e.name!r}")
        seen.add(e.name.casefold())
    ebytes = _entries_bytes(entries)
    content = _content_hash(data, ebytes)
    files: dict[str, str] = {ENTRIES: hashlib.sha256(ebytes).hexdigest()}
    manifest: dict[str, Any] = {
        "format": "spectra-edge-library",
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": str(version),
        "description": description,
        "grid": {
            "start": float(grid[0]),
            "stop": float(grid[-1]),
            "step": step,
            "points": int(grid.size),
            "unit": "1/cm",
        },
        "quantity": "absorbance",
        "entries": len(entries),
        "content_sha256": content,
        "files": files,
        "created": created or datetime.now(UTC).replace(microsecond=0).isoformat(),
    }
    _check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        spectra_file = tmp / SPECTRA
        with open(spectra_file, "wb") as fh:
            np.save(fh, data, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        files[SPECTRA] = hashlib.sha256(spectra_file.read_bytes()).hexdigest()
        _write_file(tmp / ENTRIES, ebytes)
        _write_file(tmp / MANIFEST, (json.dumps(seal(manifest), indent=2) + "\n").encode())
        os.chmod(tmp, 0o755)
        replace_dir(tmp, path)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LibraryError(f"cannot write library {path}: {err}") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return content


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise LibraryError(f"library file missing: {path}") from None
    except (OSError, ValueError) as err:
        raise LibraryError(f"cannot read {path}: {err}") from err


def load_library(path: Path | str | None = None, *, verify: bool = True) -> Library:
    """Load the library directory at *path* (``None``: the shipped one, see
    :func:`default_library_path`).

    ``spectra`` is memory-mapped. With *verify* (the default) the content is hashed in one
    pass and compared with the manifest. Raises :class:`LibraryError` when a file is
    missing, malformed, or does not match the manifest.
    """
    lib_dir = Path(path) if path is not None else default_library_path()
    if not lib_dir.is_dir():
        raise LibraryError(f"no library directory at {lib_dir}")
    manifest = _read_json(lib_dir / MANIFEST)
    problem = seal_problem(manifest) if isinstance(manifest, dict) else "not a JSON object"
    if problem is not None:
        raise LibraryError(f"{lib_dir / MANIFEST}: {problem}")
    try:
        if manifest.get("format_version") != FORMAT_VERSION:
            raise LibraryError(
                f"{lib_dir}: library format version {manifest.get('format_version')!r} "
                f"is not supported (expected {FORMAT_VERSION})"
            )
        g = manifest["grid"]
        points = int(g["points"])
        if points < 2:
            raise ValueError("grid needs at least two points")
        grid = float(g["start"]) + float(g["step"]) * np.arange(points, dtype=np.float64)
        count = int(manifest["entries"])
        expected_hash = str(manifest["content_sha256"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        if isinstance(err, LibraryError):
            raise
        raise LibraryError(f"{lib_dir / MANIFEST}: malformed manifest: {err}") from err
    ebytes_path = lib_dir / ENTRIES
    try:
        ebytes = ebytes_path.read_bytes()
    except FileNotFoundError:
        raise LibraryError(f"library file missing: {ebytes_path}") from None
    except OSError as err:
        raise LibraryError(f"cannot read {ebytes_path}: {err}") from err
    try:
        doc = json.loads(ebytes)
    except ValueError as err:
        raise LibraryError(f"{ebytes_path}: not valid JSON ({err}); library corrupt") from err
    if not isinstance(doc, list):
        raise LibraryError(f"{ebytes_path}: expected a list of entries")
    entries = [LibraryEntry.from_json(d) for d in doc]
    spectra_path = lib_dir / SPECTRA
    if not spectra_path.exists():
        raise LibraryError(f"library file missing: {spectra_path}")
    try:
        spectra = np.load(spectra_path, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # a damaged .npy header raises ValueError, SyntaxError, ...
        raise LibraryError(f"{spectra_path}: unreadable spectra ({err}); library corrupt") from err
    if spectra.dtype != np.dtype("<f4") or spectra.shape != (count, grid.size):
        raise LibraryError(
            f"{spectra_path}: spectra are {spectra.dtype} {spectra.shape}, manifest says "
            f"float32 ({count}, {grid.size}); library corrupt"
        )
    if len(entries) != count:
        raise LibraryError(f"{ebytes_path}: {len(entries)} entries, manifest says {count}")
    if verify:
        actual = _loaded_content_hash(spectra, spectra_path, ebytes)
        if actual != expected_hash:
            raise LibraryError(
                f"{lib_dir}: content hash mismatch (manifest {expected_hash[:16]}..., "
                f"files {actual[:16]}...): the library is corrupt or was modified"
            )
    return Library(
        grid,
        spectra,
        entries,
        name=str(manifest.get("name", lib_dir.name)),
        version=str(manifest.get("version", "0")),
        content_hash=expected_hash,
        path=lib_dir,
        manifest=manifest,
    )


def standard_grid() -> GridArray:
    """A copy of the standard grid (the default for new libraries)."""
    return STANDARD_GRID.copy()


__all__ = [
    "ENTRIES",
    "FORMAT_VERSION",
    "MANIFEST",
    "MODELS_ENV",
    "SPECTRA",
    "Library",
    "LibraryEntry",
    "default_library_path",
    "load_library",
    "save_library",
    "standard_grid",
]

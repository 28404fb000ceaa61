"""The local scan archive: every scan's spectra and result, kept on the device.

One SQLite file (``<data_dir>/archive.sqlite``) holds one row per scan: the result as JSON and
the arrays (raw sample, background and dark counts with their pixel axis, the processed
spectrum with its grid) as one compressed ``.npz`` blob. It serves the remote
``get_spectrum`` command (reach-back by a chemist) and ``spectra-edge export``.

Bounded by size and count (``[archive] max_bytes``, ``max_scans``): after each insert the
oldest rows (in insertion order, never by their clock time) go first. Age
(``max_age_days``) prunes only scans stamped by a synchronised clock, and only while the clock
is synchronised now (:mod:`edge.store.timesource`): a Pi without RTC or network that boots in
2001, or a clock that jumps 200 days ahead, never deletes evidence. A database that SQLite
reports as corrupt is moved aside (loudly) and a fresh one started, so a damaged file never
turns into a crash loop; a full disk or a read-only file is reported as such and left alone.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.config.schema import ArchiveConfig, Config
from edge.errors import EdgeError
from edge.scan.data import ScanData
from edge.store.sqlite_files import (
    check_integrity,
    is_corruption,
    is_disk_full,
    move_aside,
    release_reserve,
)
from edge.store.timesource import clock_synchronised
from spectra_io.errors import SpectrumFileError
from spectra_io.record import SpectrumRecord

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: File name of the archive inside ``device.data_dir``.
ARCHIVE_FILE = "archive.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    scan_id   TEXT PRIMARY KEY,
    created   REAL NOT NULL,
    reference TEXT,
    status    TEXT,
    result    TEXT NOT NULL,
    arrays    BLOB NOT NULL,
    nbytes    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS scans_created ON scans(created);
"""

#: Added later: 1 when ``created`` came from a synchronised clock (NULL in older rows).
_MIGRATIONS = {
    "synced": "ALTER TABLE scans ADD COLUMN synced INTEGER",
    # CRC-32 of the stored result and arrays (NULL in older rows): a flipped bit is an error
    "checksum": "ALTER TABLE scans ADD COLUMN checksum INTEGER",
}


def _checksum(result: bytes, blob: bytes) -> int:
    return zlib.crc32(blob, zlib.crc32(result))


class ArchiveError(EdgeError, OSError):
    """The scan archive cannot be opened, written or read back."""


class ScanNotFoundError(EdgeError, KeyError):
    """No scan with that id is in the archive (never taken, or pruned)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "scan not found"


@dataclass(frozen=True)
class ScanRecord:
    """One archived scan: its id and time (Unix seconds, UTC), the result exactly as
    published (signature included), and the scan's spectra and consignment reference
    (:class:`~edge.scan.data.ScanData`; read back, it carries no identification object)."""

    scan_id: str
    created: float
    result: dict[str, Any]
    data: ScanData

    @property
    def reference(self) -> str | None:
        """The consignment reference given with the scan."""
        return self.data.reference

    @property
    def status(self) -> str | None:
        """The result's status (identified, mixture, no_match, rejected), if it has one."""
        s = self.result.get("status")
        return s if isinstance(s, str) else None


@dataclass(frozen=True)
class ScanSummary:
    """One line of :meth:`Archive.list`."""

    scan_id: str
    created: float
    reference: str | None
    status: str | None
    nbytes: int


def _text(value: bytes | None) -> str | None:
    """A stored text column, readable even when a flipped bit broke its UTF-8."""
    return None if value is None else bytes(value).decode("utf-8", "replace")


def _pack(arrays: dict[str, FloatArray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def _unpack(blob: bytes) -> dict[str, FloatArray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {name: np.asarray(npz[name], dtype=np.float64) for name in npz.files}


class Archive:
    """Scans kept on the device in SQLite, bounded by size and age. Thread-safe.

    >>> with Archive(tmp / "archive.sqlite") as ar:       # doctest: +SKIP
    ...     ar.put(record); ar.get(record.scan_id)
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = ArchiveConfig.model_fields["max_bytes"].default,
        max_age_days: float = ArchiveConfig.model_fields["max_age_days"].default,
        max_scans: int = ArchiveConfig.model_fields["max_scans"].default,
        clock: Callable[[], float] = time.time,
        synchronised: Callable[[], bool] = clock_synchronised,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_days) * 86_400.0
        self.max_scans = int(max_scans)
        self._clock = clock
        self._synchronised = synchronised
        self._lock = threading.Lock()
        self._closed = False
        #: Path a corrupt database was moved to at open, if that happened.
        self.moved_aside: Path | None = None
        self._db = self._open()

    @classmethod
    def from_config(cls, cfg: Config) -> Archive:
        """The archive under ``device.data_dir`` with the ``[archive]`` bounds."""
        return cls(
            cfg.device.data_dir.expanduser() / ARCHIVE_FILE,
            max_bytes=cfg.archive.max_bytes,
            max_age_days=cfg.archive.max_age_days,
            max_scans=cfg.archive.max_scans,
        )

    # -- opening, corruption -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # only effective on a new file
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            check_integrity(db)
        except sqlite3.DatabaseError:
            db.close()
            raise
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(scans)")}
        for column, statement in _MIGRATIONS.items():
            if column not in columns:
                db.execute(statement)
        return db

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ArchiveError(f"cannot create {self.path.parent}: {err}") from err
        try:
            try:
                return self._connect()
            except sqlite3.Error as err:
                if not (is_disk_full(err, self.path) and release_reserve(self.path.parent)):
                    raise
                log.error("scan archive %s: disk full; released the space reserve", self.path)
                return self._connect()
        except sqlite3.Error as err:
            if is_disk_full(err, self.path):
                raise ArchiveError(f"cannot open {self.path}: disk full: {err}") from err
            if not self.path.exists() or not is_corruption(err):
                raise ArchiveError(f"cannot open {self.path}: {err}") from err
            self.moved_aside = self._move_aside(err)
        try:
            return self._connect()
        except sqlite3.DatabaseError as err:
            raise ArchiveError(f"cannot start a fresh archive at {self.path}: {err}") from err

    def _move_aside(self, err: Exception) -> Path:
        try:
            aside = move_aside(self.path)
        except OSError as move_err:
            raise ArchiveError(
                f"scan archive {self.path} is corrupt ({err}) and cannot be moved aside: {move_err}"
            ) from move_err
        log.error("scan archive %s is corrupt (%s); moved aside to %s", self.path, err, aside)
        return aside

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise ArchiveError("archive is closed")
            try:
                with self._db:
                    yield self._db
            except sqlite3.Error as err:
                raise ArchiveError(f"scan archive {self.path}: {err}") from err

    # -- writing -------------------------------------------------------------------------

    def put(self, record: ScanRecord) -> int:
        """Store *record* (replacing one with the same id), prune; returns rows pruned."""
        try:
            blob = _pack(record.data.arrays())
            result = json.dumps(record.result, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ArchiveError(f"scan {record.scan_id} cannot be stored: {err}") from err
        nbytes = len(blob) + len(result)
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO scans"
                " (scan_id, created, reference, status, result, arrays, nbytes, synced, checksum)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.scan_id,
                    record.created,
                    record.reference,
                    record.status,
                    result,
                    blob,
                    nbytes,
                    int(self._synchronised()),
                    _checksum(result.encode("utf-8"), blob),
                ),
            )
            pruned = self._prune(db)
        if pruned:
            self._vacuum()
        return pruned

    def prune(self) -> int:
        """Apply the size and age bounds now; returns the number of scans removed."""
        with self._tx() as db:
            pruned = self._prune(db)
        if pruned:
            self._vacuum()
        return pruned

    def _prune(self, db: sqlite3.Connection) -> int:
        removed = 0
        if self._synchronised():  # age means nothing on a clock that may be wrong
            cutoff = self._clock() - self.max_age_s
            removed += db.execute(
                "DELETE FROM scans WHERE synced = 1 AND created < ?", (cutoff,)
            ).rowcount
        count, total = db.execute("SELECT count(*), COALESCE(SUM(nbytes), 0) FROM scans").fetchone()
        if total > self.max_bytes or count > self.max_scans:
            excess = total - self.max_bytes
            doomed: list[tuple[str]] = []
            freed = 0
            # insertion order (rowid), not ``created``: a clock that jumped must not decide
            for scan_id, nbytes in db.execute("SELECT scan_id, nbytes FROM scans ORDER BY rowid"):
                if freed >= excess and count - len(doomed) <= self.max_scans:
                    break
                doomed.append((scan_id,))
                freed += nbytes
            db.executemany("DELETE FROM scans WHERE scan_id = ?", doomed)
            removed += len(doomed)
        if removed:
            log.info("scan archive: pruned %d scan(s) (size/age bounds)", removed)
        return int(removed)

    def _vacuum(self) -> None:
        with self._lock:
            if not self._closed:
                try:
                    self._db.execute("PRAGMA incremental_vacuum")
                except sqlite3.Error as err:  # space comes back later; not worth failing for
                    log.warning("scan archive: incremental vacuum failed: %s", err)

    # -- reading -------------------------------------------------------------------------

    def get(self, scan_id: str) -> ScanRecord:
        """The scan *scan_id*; :class:`ScanNotFoundError` if it is not (or no longer) here."""
        with self._tx() as db:
            row = db.execute(
                "SELECT scan_id, created, CAST(reference AS BLOB), CAST(result AS BLOB), arrays,"
                " checksum FROM scans WHERE scan_id = ?",
                (scan_id,),
            ).fetchone()
        if row is None:
            raise ScanNotFoundError(f"scan {scan_id!r} is not in the archive")
        raw_result, blob, checksum = bytes(row[3]), bytes(row[4]), row[5]
        if checksum is not None and checksum != _checksum(raw_result, blob):
            raise ArchiveError(
                f"scan {scan_id!r} is damaged in the archive (checksum mismatch); "
                "its result as published is still with the control room"
            )
        try:
            result = json.loads(raw_result.decode("utf-8"))
            arrays = _unpack(blob)
            reference = None if row[2] is None else bytes(row[2]).decode("utf-8")
        except Exception as err:  # numpy/zipfile raise many kinds for a damaged blob
            raise ArchiveError(f"scan {scan_id!r} is stored but unreadable: {err}") from err
        if "wavenumbers" not in arrays or "spectrum" not in arrays:
            raise ArchiveError(f"scan {scan_id!r} has no processed spectrum")
        data = ScanData(
            wavenumbers=arrays["wavenumbers"],
            spectrum=arrays["spectrum"],
            raw_wavenumbers=arrays.get("raw_wavenumbers"),
            sample=arrays.get("sample"),
            background=arrays.get("background"),
            dark=arrays.get("dark"),
            reference=reference,
        )
        return ScanRecord(scan_id=row[0], created=row[1], result=result, data=data)

    def results_by_seq(self, from_seq: int, to_seq: int) -> dict[int, dict[str, Any]]:
        """The signed results (as published) with ``seq`` in from_seq..to_seq still held,
        by seq; a damaged (checksum mismatch) or unreadable one is skipped and logged."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT scan_id, CAST(result AS BLOB), arrays, checksum FROM scans"
                " WHERE json_valid(result) AND json_extract(result, '$.seq') BETWEEN ? AND ?",
                (int(from_seq), int(to_seq)),
            ).fetchall()
        out: dict[int, dict[str, Any]] = {}
        for scan_id, raw, blob, checksum in rows:
            raw_result = bytes(raw)
            if checksum is not None and checksum != _checksum(raw_result, bytes(blob)):
                log.warning("scan archive: %s is damaged (checksum mismatch), not resent", scan_id)
                continue
            try:
                result = json.loads(raw_result.decode("utf-8"))
                seq = result["seq"]
            except (ValueError, TypeError, KeyError):
                log.warning("scan archive: stored result of %s unreadable", scan_id)
                continue
            if isinstance(seq, int) and not isinstance(seq, bool):
                out[seq] = result
        return out

    def list(self, limit: int | None = None) -> list[ScanSummary]:
        """Archived scans, newest first (at most *limit*)."""
        sql = (
            "SELECT scan_id, created, CAST(reference AS BLOB), CAST(status AS BLOB), nbytes"
            " FROM scans"
        )
        sql += " ORDER BY created DESC, rowid DESC"
        params: tuple[int, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (int(limit),)
        with self._tx() as db:
            rows = db.execute(sql, params).fetchall()
        return [
            ScanSummary(scan_id, created, _text(reference), _text(status), nbytes)
            for scan_id, created, reference, status, nbytes in rows
        ]

    def total_bytes(self) -> int:
        """Payload bytes held (results and compressed arrays)."""
        with self._tx() as db:
            return int(db.execute("SELECT COALESCE(SUM(nbytes), 0) FROM scans").fetchone()[0])

    def __len__(self) -> int:
        with self._tx() as db:
            return int(db.execute("SELECT COUNT(*) FROM scans").fetchone()[0])

    # -- export --------------------------------------------------------------------------

    def export(self, scan_id: str, path: Path, what: str = "spectrum") -> Path:
        """Write one spectrum of scan *scan_id* to *path* (JCAMP-DX or CSV by extension).

        *what* is ``spectrum`` (processed absorbance on its grid) or one of ``sample``,
        ``background``, ``dark`` (raw counts on the pixel axis).
        """
        from spectra_io import write_spectrum

        record = self.get(scan_id)
        write_spectrum(Path(path), spectrum_record(record, what))
        return Path(path)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the database; idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: What :meth:`Archive.export` and :func:`spectrum_record` can write.
EXPORT_KINDS = ("spectrum", "sample", "background", "dark")


def spectrum_record(record: ScanRecord, what: str = "spectrum") -> SpectrumRecord:
    """One spectrum of an archived scan as a :class:`SpectrumRecord` (x increasing).

    The title and metadata carry the scan id, time, consignment reference and result.
    """
    data = record.data
    if what == "spectrum":
        x, y, units = data.wavenumbers, data.spectrum, "absorbance"
    elif what in EXPORT_KINDS:
        raw = getattr(data, what)
        if raw is None or data.raw_wavenumbers is None:
            raise ArchiveError(f"scan {record.scan_id!r} has no raw {what} counts")
        x, y, units = data.raw_wavenumbers, raw, "counts"
    else:
        raise ArchiveError(f"unknown spectrum kind {what!r}; choose from {EXPORT_KINDS}")
    order = np.argsort(x, kind="stable")
    meta = {
        "scan_id": record.scan_id,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
        "origin": "spectra-edge",
        "status": str(record.status),
    }
    if record.reference:
        meta["consignment"] = record.reference
    substance = record.result.get("substance")
    if isinstance(substance, dict) and substance.get("name"):
        meta["substance"] = str(substance["name"])
    title = f"spectra-edge scan {record.scan_id} ({what})"
    try:
        return SpectrumRecord(x[order], y[order], units, title=title, metadata=meta)
    except SpectrumFileError as err:
        raise ArchiveError(f"scan {record.scan_id!r}: {what} cannot be exported: {err}") from err

"""Remote scan requests already seen: ``request_id`` -> scan_id and response, kept on disk.

A request redelivered by the broker (a persistent session after a restart, a requester
retrying) must never run a second scan. :class:`RequestLog` records a request *before* its
scan starts (one fsync), and its response when it ends; a request id seen before is answered
from here. Bounded: the oldest entries beyond ``max_entries`` are forgotten.

A corrupt file is moved aside and a fresh one started (what it held is lost, so a very late
redelivery could then run again: that is logged); a full disk is reported, never taken for
corruption.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import EdgeError
from edge.store.sqlite_files import (
    check_integrity,
    is_corruption,
    is_disk_full,
    move_aside,
    release_reserve,
)

log = logging.getLogger(__name__)

#: File name of the request log inside ``device.data_dir``.
FILE_NAME = "requests.sqlite3"
#: Entries kept (a redelivery comes within a session expiry, long before this many scans).
MAX_ENTRIES = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    scan_id    TEXT NOT NULL,
    started    REAL NOT NULL,
    response   TEXT
);
"""


class RequestLogError(EdgeError):
    """The request log cannot be read or written (disk full, read-only, ...)."""


@dataclass(frozen=True)
class SeenRequest:
    """A request id seen before: its scan, and its response once it ended.

    ``response`` is ``{"ok": true, "result": {...}}`` or ``{"ok": false, "error":
    {"code", "message"}}``; None while (or if killed while) the scan was running.
    """

    request_id: str
    scan_id: str
    response: dict[str, Any] | None


class RequestLog:
    """``<data_dir>/requests.sqlite3``: :meth:`begin`, :meth:`finish`, :meth:`get`."""

    def __init__(self, path: Path, max_entries: int = MAX_ENTRIES) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self.recovered_from: Path | None = None
        self._lock = threading.Lock()
        self._db = self._open()

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> RequestLog:
        """The request log of a device."""
        return cls(Path(data_dir) / FILE_NAME)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        try:
            db.execute("PRAGMA synchronous = FULL")
            check_integrity(db)
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> sqlite3.Connection:
        try:
            try:
                return self._connect()
            except sqlite3.Error as err:
                if not (is_disk_full(err, self.path) and release_reserve(self.path.parent)):
                    raise
                log.error("request log %s: disk full; released the space reserve", self.path)
                return self._connect()
        except sqlite3.Error as err:
            if is_disk_full(err, self.path) or not is_corruption(err):
                raise RequestLogError(f"request log {self.path}: {err}") from err
            self.recovered_from = move_aside(self.path)
            log.error(
                "REQUEST LOG CORRUPT (%s): moved to %s; a request redelivered from before "
                "this could run again",
                err,
                self.recovered_from,
            )
        try:
            return self._connect()
        except sqlite3.Error as err:
            raise RequestLogError(f"request log {self.path}: {err}") from err

    def get(self, request_id: str) -> SeenRequest | None:
        """The entry of *request_id*, or None when it was never seen (or long forgotten)."""
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT request_id, scan_id, response FROM requests WHERE request_id = ?",
                    (request_id,),
                ).fetchone()
            except sqlite3.Error as err:
                raise RequestLogError(f"request log {self.path}: {err}") from err
        return _seen(row)

    def begin(self, request_id: str, scan_id: str) -> SeenRequest | None:
        """Record *request_id* as running scan *scan_id* (durable on return), unless it was
        seen before: then return that entry and record nothing."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    row = db.execute(
                        "SELECT request_id, scan_id, response FROM requests WHERE request_id = ?",
                        (request_id,),
                    ).fetchone()
                    if row is None:
                        db.execute(
                            "INSERT INTO requests (request_id, scan_id, started) VALUES (?, ?, ?)",
                            (request_id, scan_id, time.time()),
                        )
                        db.execute(
                            "DELETE FROM requests WHERE rowid IN (SELECT rowid FROM requests "
                            "ORDER BY rowid DESC LIMIT -1 OFFSET ?)",
                            (self.max_entries,),
                        )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise RequestLogError(f"request log {self.path}: {err}") from err
        return _seen(row)

    def finish(self, request_id: str, response: dict[str, Any]) -> None:
        """Keep the response of *request_id* (answered from here when it comes again)."""
        text = json.dumps(response, separators=(",", ":"), allow_nan=False)
        with self._lock:
            try:
                self._db.execute(
                    "UPDATE requests SET response = ? WHERE request_id = ?", (text, request_id)
                )
            except sqlite3.Error as err:
                raise RequestLogError(f"request log {self.path}: {err}") from err

    def unfinished(self) -> list[SeenRequest]:
        """Entries whose scan started but never recorded its end (killed meanwhile)."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT request_id, scan_id, response FROM requests WHERE response IS NULL"
                ).fetchall()
            except sqlite3.Error as err:
                raise RequestLogError(f"request log {self.path}: {err}") from err
        return [s for s in map(_seen, rows) if s is not None]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM requests").fetchone()[0])

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            self._db.close()


def _seen(row: tuple[Any, ...] | None) -> SeenRequest | None:
    if row is None:
        return None
    response: dict[str, Any] | None = None
    if row[2] is not None:
        try:
            loaded = json.loads(row[2])
            response = loaded if isinstance(loaded, dict) else None
        except ValueError:
            response = {"ok": False, "error": {"code": "failed", "message": "stored unreadable"}}
    return SeenRequest(str(row[0]), str(row[1]), response)

"""Shared handling of the device's SQLite files (outbox, scan archive): integrity, quarantine."""

from __future__ import annotations

import contextlib
import errno
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

#: Files SQLite keeps beside a database in WAL mode.
SIDE_SUFFIXES = ("-wal", "-shm")


def check_integrity(db: sqlite3.Connection) -> None:
    """Raise :class:`sqlite3.DatabaseError` unless ``PRAGMA quick_check`` answers ``ok``."""
    row = db.execute("PRAGMA quick_check").fetchone()
    if row is None or row[0] != "ok":
        raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")


#: SQLite result codes that mean the file is damaged (not busy, full or read-only).
_CORRUPT_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
#: ... and those that mean the disk (or quota) is full.
_FULL_CODES = frozenset({13})  # SQLITE_FULL
_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_IOERR = 10  # SQLITE_IOERR: a failed write, e.g. of the WAL index on a full disk
#: Below this much free space an I/O error of SQLite is taken for a full disk.
LOW_SPACE_BYTES = 256 * 1024
#: File in the data directory that keeps space for the stores (edge.store.data_dir).
RESERVE_FILE = ".space-reserve"
#: The first 16 bytes of every SQLite 3 database file.
SQLITE_MAGIC = b"SQLite format 3\x00"


def is_corruption(err: BaseException) -> bool:
    """True when *err* says the database file is damaged.

    A full disk, a read-only file system, a lock or a permission problem is *not*
    corruption: such a file must never be moved aside.
    """
    if not isinstance(err, sqlite3.DatabaseError) or is_disk_full(err):
        return False
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _CORRUPT_CODES
    text = str(err).lower()  # our own quick_check error, or an old sqlite3 module
    return "quick_check" in text or "malformed" in text or "not a database" in text


def is_disk_full(err: BaseException, path: Path | None = None) -> bool:
    """True when *err* (SQLite or OS) says there is no space left.

    SQLite reports a failed write of its WAL index or journal as a generic I/O error; with
    *path* given, such an error counts as "full" when the file system beside it has no room.
    """
    if isinstance(err, OSError):
        return err.errno in _SPACE_ERRNOS
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None and (code & 0xFF) in _FULL_CODES:
        return True
    if isinstance(err, sqlite3.Error) and "disk is full" in str(err).lower():
        return True
    if path is not None and code is not None and (code & 0xFF) == _IOERR:
        try:
            return shutil.disk_usage(path.parent).free < LOW_SPACE_BYTES
        except OSError:
            return False
    return False


def release_reserve(data_dir: Path) -> bool:
    """Delete the space reserve in *data_dir* (see :mod:`edge.store.data_dir`); True if freed."""
    reserve = data_dir / RESERVE_FILE
    try:
        reserve.unlink()
    except FileNotFoundError:
        return False
    return True


@contextlib.contextmanager
def readable_copy(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a quarantined database, repairing a damaged header in a copy.

    A flipped bit in the 16-byte magic or the page size makes SQLite refuse the whole file
    although every row is intact; the copy gets the standard values back. Raises
    :class:`sqlite3.DatabaseError` when even that cannot be read.
    """
    with tempfile.TemporaryDirectory(prefix="spectra-edge-recover-") as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + "-wal")
        if wal.exists():  # committed rows not yet checkpointed into the file
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        with copy.open("r+b") as f:
            head = bytearray(f.read(100))
            if len(head) == 100:
                head[:16] = SQLITE_MAGIC
                size = int.from_bytes(head[16:18], "big")
                if size != 1 and (size < 512 or size & (size - 1)):
                    head[16:18] = (4096).to_bytes(2, "big")
                f.seek(0)
                f.write(head)
        db = sqlite3.connect(copy)  # a private copy: SQLite may replay its WAL into it
        try:
            yield db
        finally:
            db.close()


def move_aside(path: Path) -> Path:
    """Rename a corrupt database (and its WAL/SHM files) to ``NAME.corrupt-<UTC time>[-n]``.

    The name is unique, so an earlier quarantined file is never overwritten. Returns the new
    path of the database; raises :class:`OSError` when it cannot be moved.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    path.rename(target)
    for suffix in SIDE_SUFFIXES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return target

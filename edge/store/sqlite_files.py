"""Shared handling of the device's SQLite files (outbox, scan archive): integrity, quarantine."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

#: Files SQLite keeps beside a database in WAL mode.
SIDE_SUFFIXES = ("-wal", "-shm")


def check_integrity(db: sqlite3.Connection) -> None:
    """Raise :class:`sqlite3.DatabaseError` unless ``PRAGMA quick_check`` answers ``ok``."""
    row = db.execute("PRAGMA quick_check").fetchone()
    if row is None or row[0] != "ok":
        raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")


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

"""The device's data directory: made when missing, refused with a clear error when unusable.

A full disk is not a reason to refuse: the service starts, scans and reports it (``health``);
only a directory that cannot be used at all (a file in its place, a read-only file system,
no permission) is a configuration error, named before any store is opened.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from edge.errors import ConfigError
from edge.store.sqlite_files import RESERVE_FILE

#: Errors that mean "no space" rather than "cannot write here".
SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Space kept in reserve for the outbox and the archive (see :func:`ensure_reserve`).
RESERVE_BYTES = 1024 * 1024


def prepare_data_dir(path: Path, reserve_bytes: int = RESERVE_BYTES) -> Path:
    """``device.data_dir`` expanded and created, with its space reserve when there is room;
    :class:`ConfigError` when it is unusable."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:
        raise _unusable(path, "exists and is not a directory") from err
    except OSError as err:
        raise _unusable(path, f"cannot be created: {err.strerror or err}") from err
    if not path.is_dir():
        raise _unusable(path, "exists and is not a directory")
    probe = path / f".write-probe.{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
    except OSError as err:
        if err.errno not in SPACE_ERRNOS:  # full is reported by health, not refused
            raise _unusable(path, f"is not writable: {err.strerror or err}") from err
    finally:
        probe.unlink(missing_ok=True)
    ensure_reserve(path, reserve_bytes)
    return path


def ensure_reserve(data_dir: Path, nbytes: int = RESERVE_BYTES) -> bool:
    """Keep *nbytes* of the disk in a reserve file while there is room; True when it is there.

    SQLite cannot even open a WAL database on a full disk (its index and log need a page).
    When a store finds the disk full it deletes the reserve
    (:func:`edge.store.sqlite_files.release_reserve`) and goes on; calling this again once
    space returns puts the reserve back.
    """
    reserve = data_dir / RESERVE_FILE
    try:
        if reserve.stat().st_size >= nbytes:
            return True
    except FileNotFoundError:
        pass
    tmp = data_dir / f"{RESERVE_FILE}.{os.getpid()}.tmp"
    try:
        with tmp.open("wb") as f:
            f.truncate(0)
            chunk = b"\0" * 65536
            left = nbytes
            while left > 0:  # real blocks, not a sparse file: the space must be taken now
                left -= f.write(chunk[: min(left, len(chunk))])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, reserve)
        return True
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno in SPACE_ERRNOS:
            return False
        raise


def _unusable(path: Path, why: str) -> ConfigError:
    message = f"device.data_dir {path} {why}"
    return ConfigError(message, [("device.data_dir", f"{path} {why}")])

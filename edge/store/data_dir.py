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

#: Errors that mean "no space" rather than "cannot write here".
SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def prepare_data_dir(path: Path) -> Path:
    """``device.data_dir`` expanded and created; :class:`ConfigError` when it is unusable."""
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
    return path


def _unusable(path: Path, why: str) -> ConfigError:
    message = f"device.data_dir {path} {why}"
    return ConfigError(message, [("device.data_dir", f"{path} {why}")])

"""Atomic replacement: readers see the old file or directory or the new one, never a torn one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace *path* with *data*: temporary file in the same directory, fsync, rename.

    Raises :class:`OSError` (the temporary file is removed); callers decide whether that is
    fatal or only logged.
    """
    p = Path(path)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """:func:`atomic_write_bytes` of *text* encoded as UTF-8 with ``\\n`` line ends."""
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the entries of directory *path* (names, renames) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_dir(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Swap the finished directory *tmp* into place as *target* (a sibling of *tmp*).

    Every file in *tmp* and *tmp* itself are fsynced first; an existing *target* is renamed
    aside, *tmp* renamed into place (on failure the old *target* is put back), the parent
    fsynced, and only then the old one removed. So after a crash or power cut *target* is
    the complete old directory or the complete new one. Raises :class:`OSError`; *tmp* is
    left for the caller to remove.
    """
    src, dst = Path(tmp), Path(target)
    for file in src.rglob("*"):
        if file.is_file() and not file.is_symlink():
            with open(file, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(src)
    old: Path | None = None
    if dst.exists():
        old = dst.parent / f".{dst.name}.old-{os.getpid()}"
        if old.exists():  # left over from a crash of an earlier run with the same pid
            shutil.rmtree(old)
        os.rename(dst, old)
    try:
        os.rename(src, dst)
    except OSError:
        if old is not None:
            os.rename(old, dst)  # put the previous directory back
        raise
    fsync_dir(dst.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

"""Unpack an update archive safely, without ``tarfile.data_filter`` (Python 3.11.2 lacks it).

Only regular files and directories are accepted. Refused, before anything is written: absolute
names, ``..`` components, symbolic and hard links, device files and FIFOs, names that repeat,
and archives whose total size exceeds a bound. Files are written with mode 0644 (0755 when
executable by the owner in the archive), each fsynced, then every directory.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from pathlib import Path

from edge.errors import UpdateError

#: Bytes copied at a time.
_CHUNK = 1 << 20


class UnsafeArchiveError(UpdateError):
    """The archive holds an entry that must not be unpacked (reason code ``unsafe_archive``)."""

    def __init__(self, message: str) -> None:
        super().__init__("unsafe_archive", message)


def check_members(tar: tarfile.TarFile, max_bytes: int) -> list[tarfile.TarInfo]:
    """Every member, checked; raise :class:`UnsafeArchiveError` naming the first bad one."""
    members = tar.getmembers()
    seen: set[str] = set()
    total = 0
    for m in members:
        name = m.name
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise UnsafeArchiveError(f"absolute path in archive: {name!r}")
        norm = posixpath.normpath(name)
        if norm == ".." or norm.startswith("../") or ".." in name.split("/"):
            raise UnsafeArchiveError(f"'..' in archive path: {name!r}")
        if m.issym() or m.islnk():
            raise UnsafeArchiveError(f"link in archive: {name!r} -> {m.linkname!r}")
        if not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(f"device, FIFO or special file in archive: {name!r}")
        if "\x00" in name or norm in seen:
            raise UnsafeArchiveError(f"bad or repeated name in archive: {name!r}")
        seen.add(norm)
        total += max(m.size, 0)
        if total > max_bytes:
            raise UnsafeArchiveError(f"archive unpacks to more than {max_bytes} bytes")
    return members


def extract(archive: Path, dest: Path, max_bytes: int) -> None:
    """Unpack *archive* into the new directory *dest* (which must not exist), durably.

    On any error *dest* is removed again and the error raised.
    """
    dest.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = check_members(tar, max_bytes)
            dirs = {dest}
            for m in members:
                norm = posixpath.normpath(m.name)
                if norm == ".":
                    continue
                path = dest.joinpath(*norm.split("/"))
                if m.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    dirs.add(path)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                dirs.add(path.parent)
                source = tar.extractfile(m)
                if source is None:
                    raise UnsafeArchiveError(f"unreadable archive member {m.name!r}")
                mode = 0o755 if m.mode & 0o100 else 0o644
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                    out.flush()
                    os.fsync(out.fileno())
            for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
                fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
    except (tarfile.TarError, EOFError) as err:
        shutil.rmtree(dest, ignore_errors=True)
        raise UnsafeArchiveError(f"not a readable tar archive: {err}") from err
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise

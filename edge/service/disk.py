"""The data directory's free space, watched: full, and back, without a restart.

The stores keep working on a full disk as long as the space reserve lasts
(:mod:`edge.store.data_dir`): a write that fails with "disk full" releases the reserve
(:meth:`DiskWatch.make_room`) and is tried once more. :meth:`DiskWatch.check` runs on every
housekeeping tick: it puts the reserve back as soon as there is room again, and says
whether the disk counts as full: the reserve is gone and cannot be re-made, or less than
:data:`LOW_SPACE_BYTES` is free beside it. A change is announced to the listeners (``status``
``maintenance`` with reason ``disk_full`` and back, ``health``, the courier's wake-up).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from edge.store.data_dir import RESERVE_BYTES, ensure_reserve
from edge.store.sqlite_files import LOW_SPACE_BYTES, is_disk_full, release_reserve

log = logging.getLogger(__name__)


class DiskWatch:
    """Free space and the reserve of one data directory; :attr:`full` is the verdict."""

    def __init__(self, data_dir: Path, reserve_bytes: int = RESERVE_BYTES) -> None:
        self.data_dir = Path(data_dir)
        self.reserve_bytes = reserve_bytes
        self.full = False
        self.free_bytes: int | None = None
        #: Called with the new verdict (True: full) whenever it changes.
        self.on_change: list[Callable[[bool], None]] = []
        self._lock = threading.Lock()

    def check(self) -> bool:
        """Re-make the reserve when there is room, update :attr:`full`; True when full."""
        try:
            reserve = ensure_reserve(self.data_dir, self.reserve_bytes)
        except OSError as err:  # not a space problem (gone, read-only): say so, keep going
            log.warning("data dir %s: cannot keep the space reserve: %s", self.data_dir, err)
            reserve = False
        try:
            self.free_bytes = shutil.disk_usage(self.data_dir).free
        except OSError:
            self.free_bytes = None
        low = self.free_bytes is not None and self.free_bytes < LOW_SPACE_BYTES
        self._set((not reserve) or low)
        return self.full

    def make_room(self, err: BaseException) -> bool:
        """After a write failed with *err*: when it is "disk full", release the reserve (the
        caller then tries once more) and count the disk as full. True when space was freed."""
        if not _space_error(err, self.data_dir):
            return False
        freed = release_reserve(self.data_dir)
        if freed:
            log.error("data dir %s: disk full; released the space reserve", self.data_dir)
        self._set(True)
        return freed

    def _set(self, full: bool) -> None:
        with self._lock:
            changed, self.full = full != self.full, full
        if not changed:
            return
        if full:
            log.error("DISK FULL: %s (%s bytes free)", self.data_dir, self.free_bytes)
        else:
            log.warning("disk space back: %s (%s bytes free)", self.data_dir, self.free_bytes)
        for listener in self.on_change:
            try:
                listener(full)
            except Exception:
                log.exception("disk-change listener failed")


def _space_error(err: BaseException, data_dir: Path) -> bool:
    """*err* or any exception it was raised from says "no space left"."""
    seen: BaseException | None = err
    for _ in range(5):
        if seen is None:
            return False
        if is_disk_full(seen, data_dir / "outbox.sqlite3"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

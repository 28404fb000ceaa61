"""The switch gate: ``<data_dir>/switch.lock``, held (shared ``flock``) while a scan runs or
an alarm is active, so the updater (which takes it exclusively before it switches a release,
:mod:`edge.ota.updater`) defers the switch and says so in ``ota/state``.

The service never waits long for it: if the updater holds it (a switch is under way, the
service is about to be restarted or reloaded), a scan waits at most :data:`GATE_WAIT_S` and
then runs anyway; a scan is never refused for an update.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: The lock file's name in the service's data_dir (the updater uses the same name).
SWITCH_LOCK = "switch.lock"
#: Longest a scan waits for a switch under way, s.
GATE_WAIT_S = 5.0


class SwitchGate:
    """Holds ``switch.lock`` while ``scanning()`` or *alarm_active()*; thread-safe."""

    def __init__(
        self, path: Path, alarm_active: Callable[[], bool], *, wait_s: float = GATE_WAIT_S
    ) -> None:
        self.path = path
        self._alarm_active = alarm_active
        self._wait_s = wait_s
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._scans = 0
        self._held = False

    @property
    def held(self) -> bool:
        """The lock is held now (an updater would defer its switch)."""
        return self._held

    def open(self) -> None:
        """Create or open the lock file and take the lock if an alarm is already active.
        A file that cannot be opened is logged: the service then runs without the gate."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as err:
            log.error(
                "switch lock %s unavailable (updates will not wait for scans): %s", self.path, err
            )
            return
        self.refresh()

    def close(self) -> None:
        """Release the lock and close the file; idempotent."""
        with self._lock:
            fd, self._fd = self._fd, None
            self._held = False
        if fd is not None:
            os.close(fd)

    @contextlib.contextmanager
    def scanning(self) -> Iterator[None]:
        """Hold the gate for the duration of one scan (or background)."""
        with self._lock:
            self._scans += 1
            self._apply()
        try:
            yield
        finally:
            with self._lock:
                self._scans -= 1
                self._apply()

    def refresh(self) -> None:
        """Take or release the lock after the alarm changed."""
        with self._lock:
            self._apply()

    def _apply(self) -> None:
        if self._fd is None:
            return
        want = self._scans > 0 or self._alarm_active()
        if want and not self._held:
            self._held = self._take(self._fd)
        elif not want and self._held:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._held = False

    def _take(self, fd: int) -> bool:
        deadline = time.monotonic() + self._wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    log.warning(
                        "switch lock held by the updater for %.0f s; going on", self._wait_s
                    )
                    return False
                time.sleep(0.05)

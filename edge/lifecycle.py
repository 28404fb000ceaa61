"""Threads with a bounded life, and the deadlines that bound them.

Every long-running thread of the device (scan worker, housekeeping, command worker, outbox
sender, outbox checkpointer) is a :class:`Worker`: a named daemon thread that runs
``target(stopping)`` until the event *stopping* is set. :meth:`Worker.stop` sets it, calls
the thread's wake-up hook (to interrupt a blocking wait) and joins it until a
:class:`~hal.clock.Deadline`. A thread that outlives its deadline is logged and left
behind (it is a daemon): the stop that SIGTERM starts must end inside systemd's
``TimeoutStopSec``, so one deadline is made at the signal and handed down to every join.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hal.clock import Clock, Deadline, SystemClock

log = logging.getLogger(__name__)

__all__ = ["Clock", "Deadline", "SystemClock", "Worker", "deadline_of"]


def deadline_of(limit: float | Deadline, clock: Clock | None = None) -> Deadline:
    """*limit* as a :class:`Deadline`: seconds from now on *clock* (default: the system
    clock), or a deadline passed down from a caller, unchanged."""
    if isinstance(limit, Deadline):
        return limit
    return Deadline(clock or SystemClock(), float(limit))


class Worker:
    """One named daemon thread running ``target(stopping)``; start once, stop within a deadline.

    *target* must return soon after *stopping* is set; *wake* (optional) is called by
    :meth:`stop` to interrupt whatever the thread blocks on (put a sentinel on its queue,
    set its wake-up event).
    """

    def __init__(
        self,
        name: str,
        target: Callable[[threading.Event], None],
        *,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.stopping = threading.Event()
        self._target = target
        self._wake = wake
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "running" if self.alive else ("stopped" if self.stopping.is_set() else "new")
        return f"<Worker {self.name} {state}>"

    @property
    def alive(self) -> bool:
        """The thread is running."""
        t = self._thread
        return t is not None and t.is_alive()

    def start(self) -> None:
        """Start the thread; idempotent while it runs. A stopped worker cannot be restarted."""
        with self._lock:
            if self.stopping.is_set():
                raise RuntimeError(f"worker {self.name} was stopped; make a new one")
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._target, args=(self.stopping,), name=self.name, daemon=True
            )
            self._thread.start()

    def stop(self, deadline: float | Deadline) -> bool:
        """Ask the thread to stop, wake it, and join it until *deadline* (seconds or a
        :class:`Deadline`). True when it ended (or never started); idempotent."""
        self.stopping.set()
        if self._wake is not None:
            self._wake()
        return self.join(deadline)

    def join(self, deadline: float | Deadline) -> bool:
        """Wait for the thread until *deadline*; True when it ended (or never started)."""
        t = self._thread
        if t is None or t is threading.current_thread():
            return t is None
        t.join(deadline_of(deadline).remaining())
        if t.is_alive():
            log.warning("thread %s did not stop within its deadline", self.name)
            return False
        return True

"""Housekeeping: ``health`` every ``mqtt.health_interval_s``, the reopen of a faulted
instrument once its backoff has passed, and a look at the disk (its space reserve re-made
as soon as there is room, full and back announced). One thread; :meth:`Housekeeping.tick`
does the work and runs on a fake clock in tests."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from edge.lifecycle import Clock, Deadline, SystemClock, Worker

log = logging.getLogger(__name__)

#: Shortest and longest sleep between two looks, s (the longest keeps stop prompt).
MIN_WAIT_S = 0.05
MAX_WAIT_S = 1.0


class _Publisher(Protocol):
    def publish_health(self) -> None: ...


class _Supervisor(Protocol):
    def retry_due(self) -> bool: ...
    def seconds_to_retry(self) -> float | None: ...
    def retry_requested(self) -> None: ...


class _Worker(Protocol):
    def request_reopen(self) -> bool: ...


class _Disk(Protocol):
    def check(self) -> bool: ...


class Housekeeping:
    """Periodic work of the service, driven by :meth:`tick` (``start()``/``stop()`` run it
    on its own thread)."""

    def __init__(
        self,
        interval_s: float,
        publisher: _Publisher,
        supervisor: _Supervisor,
        worker: _Worker,
        *,
        disk: _Disk | None = None,
        clock: Clock | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"health interval must be > 0, got {interval_s}")
        self.interval_s = float(interval_s)
        self.publisher = publisher
        self.supervisor = supervisor
        self.worker = worker
        self.disk = disk
        self.clock = clock or SystemClock()
        self._next_health = self.clock.monotonic() + self.interval_s  # start() published one
        self._wake = threading.Event()
        self._thread = Worker("housekeeping", self._loop, wake=self._wake.set)

    def tick(self) -> None:
        """Do what is due now: look at the disk, queue a reopen of a faulted instrument,
        publish ``health``."""
        if self.disk is not None:
            try:
                self.disk.check()
            except Exception:  # a broken look at the disk must not stop the rest
                log.exception("disk check failed")
        if self.supervisor.retry_due() and self.worker.request_reopen():
            # reopening happens on the scan worker, which owns the instrument
            self.supervisor.retry_requested()
        now = self.clock.monotonic()
        if now >= self._next_health:
            self.publisher.publish_health()
            self._next_health = now + self.interval_s

    def seconds_to_next(self) -> float:
        """How long to sleep before the next :meth:`tick` (bounded by MIN/MAX_WAIT_S)."""
        wait = self._next_health - self.clock.monotonic()
        retry = self.supervisor.seconds_to_retry()
        if retry is not None:
            wait = min(wait, retry)
        return max(MIN_WAIT_S, min(wait, MAX_WAIT_S))

    def _loop(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            self._wake.wait(self.seconds_to_next())
            self._wake.clear()
            if stopping.is_set():
                return
            self.tick()

    def start(self) -> None:
        """Start the housekeeping thread."""
        self._thread.start()

    def stop(self, deadline: float | Deadline) -> bool:
        """Stop the thread, joined until *deadline*."""
        return self._thread.stop(deadline)

"""Group commit for bursts: a writer thread commits queued results, many per transaction.

Only the benchmark uses it, so it lives here rather than in :class:`edge.publish.Courier`
(which every service starts): a scan commits its own result at once
(:meth:`Courier.submit_result`, one fsync), and nothing on the device submits bursts.
``bench_mqtt.py`` measures this path beside one fsync per result.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from edge.identify.result import Identification
from edge.lifecycle import Deadline, Worker
from edge.publish.courier import Courier, ResultItem, Submitted

#: Most results the writer commits in one transaction.
WRITE_BATCH = 500
#: Longest the idle writer sleeps before it looks again, s.
IDLE_POLL_S = 0.5


class GroupCommitWriter:
    """Queue results for *courier*'s outbox; one writer thread commits them in groups (one
    fsync per group) and wakes the courier's sender. ``start()``, ``submit()``, ``stop()``."""

    def __init__(self, courier: Courier, batch: int = WRITE_BATCH) -> None:
        self.courier = courier
        self.batch = batch
        self._jobs: queue.SimpleQueue[tuple[ResultItem, Future[Submitted]] | None] = (
            queue.SimpleQueue()
        )
        self._worker = Worker("outbox-writer", self._run, wake=lambda: self._jobs.put(None))

    def start(self) -> None:
        """Start the writer thread."""
        self._worker.start()

    def stop(self, deadline: float | Deadline = 5.0) -> bool:
        """Commit everything still queued, then stop the thread (joined until *deadline*)."""
        return self._worker.stop(deadline)

    def submit(
        self,
        identification: Identification,
        *,
        scan_id: str | None = None,
        consignment: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Future[Submitted]:
        """Queue one result; the future resolves once it is durable (until then a crash may
        lose it)."""
        if not self._worker.alive:
            raise RuntimeError("start() the writer before submit()")
        result = self.courier.result_item(
            identification, scan_id=scan_id, consignment=consignment, extra=extra
        )
        future: Future[Submitted] = Future()
        self._jobs.put((result, future))
        return future

    def _run(self, stopping: threading.Event) -> None:
        while True:
            try:
                first = self._jobs.get(timeout=IDLE_POLL_S)
            except queue.Empty:
                first = None
            if first is None:  # idle, or the stop sentinel: exit once nothing is queued
                if stopping.is_set() and self._jobs.empty():
                    return
                continue
            jobs = [first]
            while len(jobs) < self.batch:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    jobs.append(job)
            try:
                rows = self.courier.outbox.submit_batch([r.item for r, _ in jobs])
            except Exception as err:  # the futures carry it to the callers
                for _, future in jobs:
                    future.set_exception(err)
                continue
            self.courier.wake()
            for (result, future), (row_id, seq) in zip(jobs, rows, strict=True):
                future.set_result(result.submitted(row_id, seq))

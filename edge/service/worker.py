"""The scan worker: one thread, one bounded queue of jobs, one job at a time.

Button presses, remote commands and the demo all submit jobs here, so scanning is
serialised and never waits on MQTT. A scan: engine (instrument + identification) ->
signed result committed to the outbox -> archive -> alarm -> panel. A background: a new
background reading. A reopen: open the instrument again after a fault (the worker is the
instrument's one user). Each job ends in a typed :class:`JobResult`, or its exception.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

from edge.errors import EdgeError, OutboxError
from edge.lifecycle import Deadline, Worker
from edge.publish import messages
from edge.publish.courier import Courier
from edge.scan.data import ScanData
from edge.scan.engine import ScanEngine
from edge.service.alarm import AlarmState, alarm_from
from edge.service.commands.contract import CommandRejected
from edge.service.panel import PanelView, Severity
from edge.service.state import LastError, StatePublisher
from edge.service.supervisor import InstrumentSupervisor
from edge.service.switch_gate import SwitchGate
from edge.store.archive import Archive, ArchiveError, ScanRecord
from hal.errors import HalError

log = logging.getLogger(__name__)

#: scan, background, reopen (after a fault: open the instrument again, acquire nothing), or
#: reload (SIGHUP after a data update: close and open the instrument and identifier again).
JobKind = Literal["scan", "background", "reopen", "reload"]
#: A job running longer than this means a wedged worker (the watchdog stops pinging), s.
WEDGED_AFTER_S = 120.0


@dataclass(frozen=True)
class JobResult:
    """How a job ended.

    A scan has ``scan_id``, ``status`` and ``severity`` (what the panel showed: ``alarm``
    for any result that raises an alarm); a background has ``quality``; ``time`` is when the
    job finished (RFC 3339 UTC).
    """

    kind: JobKind
    time: str
    scan_id: str | None = None
    status: str | None = None
    severity: Severity | None = None
    consignment: str | None = None
    quality: dict[str, float] | None = None

    def response(self) -> dict[str, Any]:
        """The ``result`` member of the ``scan``/``background`` command response."""
        if self.kind == "scan":
            out: dict[str, Any] = {"scan_id": self.scan_id, "status": self.status}
            if self.consignment:
                out["consignment"] = self.consignment
            return out
        out = {"time": self.time}
        if self.quality:
            out["quality"] = dict(self.quality)
        return out


@dataclass(frozen=True)
class Job:
    """One unit of work for the scan worker; its future gets the :class:`JobResult`."""

    kind: JobKind
    source: str
    consignment: str | None = None
    #: The scan's id when the caller chose it (a remote request records it beforehand).
    scan_id: str | None = None
    #: The remote request's id, carried in the signed result's ``extra.request_id``.
    request_id: str | None = None
    future: Future[JobResult] = field(default_factory=Future)


@dataclass
class Counters:
    """What the worker has done since it started."""

    scans: int = 0
    backgrounds: int = 0
    alarms: int = 0
    archive_errors: int = 0
    jobs_refused: int = 0


class ScanWorker:
    """The bounded job queue and the thread that runs its jobs (``start()``/``stop()``)."""

    def __init__(
        self,
        supervisor: InstrumentSupervisor,
        courier: Courier,
        archive: Archive,
        alarm: AlarmState,
        publisher: StatePublisher,
        panel: PanelView,
        errors: LastError,
        *,
        queue_size: int = 8,
        wall_clock: Callable[[], float] = time.time,
        make_room: Callable[[BaseException], bool] | None = None,
        gate: SwitchGate | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.courier = courier
        self.archive = archive
        self.alarm = alarm
        self.publisher = publisher
        self.panel = panel
        self.errors = errors
        self.counters = Counters()
        self._wall_clock = wall_clock
        #: After a failed commit: frees the space reserve when the disk is full (True: try
        #: once more). See :meth:`edge.service.disk.DiskWatch.make_room`.
        self.make_room = make_room
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size)
        self._running = False
        self._job_started: float | None = None
        self.gate = gate
        self._thread = Worker("scan-worker", self._loop, wake=self._wake)

    def __repr__(self) -> str:
        return f"<ScanWorker {self._jobs.qsize()} waiting{', running' if self._running else ''}>"

    # -- submitting --------------------------------------------------------------------------

    def submit(
        self,
        kind: JobKind,
        *,
        source: str,
        consignment: str | None = None,
        scan_id: str | None = None,
        request_id: str | None = None,
    ) -> Future[JobResult]:
        """Queue a scan or background; never blocks. A full queue (someone is hammering the
        button) or a stopping worker raises ``CommandRejected('busy')``."""
        job = Job(kind, source, consignment, scan_id, request_id)
        if self._thread.stopping.is_set():
            raise CommandRejected("busy", "service is stopping")
        try:
            self._jobs.put_nowait(job)
        except queue.Full as err:
            self.counters.jobs_refused += 1
            raise CommandRejected("busy", f"{self._jobs.maxsize} jobs already waiting") from err
        return job.future

    def press(self, kind: Literal["scan", "background"]) -> None:
        """The scan button (short press: scan; long press: background); a full queue is
        logged, not raised (gpiozero's thread calls this)."""
        try:
            self.submit(kind, source="button")
        except CommandRejected as err:
            log.warning("button press ignored: %s", err)

    def request_reopen(self) -> bool:
        """Queue a reopen of the faulted instrument unless other jobs wait (they reopen it
        anyway); True when queued."""
        if not self._jobs.empty():
            return False
        with contextlib.suppress(queue.Full):
            self._jobs.put_nowait(Job("reopen", "fault-retry"))
            return True
        return False

    def submit_reload(self) -> Future[JobResult]:
        """Queue a reload of the instrument and identifier (after a data update); a full queue
        raises ``CommandRejected('busy')``."""
        return self.submit("reload", source="reload")

    def wedged(self, after_s: float = WEDGED_AFTER_S) -> str | None:
        """None while the worker thread runs and no job has run longer than *after_s*; else
        what is wrong (the watchdog's liveness check)."""
        if not self._thread.alive:
            return "scan worker thread is not running"
        started = self._job_started
        if started is not None and time.monotonic() - started > after_s:
            return f"scan worker stuck in one job for {time.monotonic() - started:.0f} s"
        return None

    @property
    def idle(self) -> bool:
        """No job running and none waiting."""
        return not self._running and self._jobs.empty()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def stop(self, deadline: float | Deadline) -> bool:
        """Refuse what waits (``busy``), finish the job in hand, join until *deadline*."""
        self._thread.stopping.set()
        self._refuse_queued("service stopping")
        stopped = self._thread.stop(deadline)
        self._refuse_queued("service stopping")  # the wake-up sentinel, a late reopen
        return stopped

    def _wake(self) -> None:
        with contextlib.suppress(queue.Full):
            self._jobs.put_nowait(None)

    def _refuse_queued(self, why: str) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(CommandRejected("busy", why))

    # -- running jobs ------------------------------------------------------------------------

    def _loop(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            job = self._jobs.get()
            if job is None:
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            self._running = True
            self._job_started = time.monotonic()
            try:
                result = self.run(job)
            except BaseException as err:
                if not isinstance(err, HalError | CommandRejected):  # faults log themselves
                    self.errors.record(
                        f"{job.kind} ({job.source}) failed: {type(err).__name__}: {err}"
                    )
                job.future.set_exception(err)
                if not isinstance(err, Exception):
                    raise
            else:
                job.future.set_result(result)
            finally:
                self._running = False
                self._job_started = None

    def run(self, job: Job) -> JobResult:
        """Run one job on the calling thread (the worker's, or a test's)."""
        if job.kind == "reload":
            self.supervisor.close()
        engine = self.supervisor.engine()
        if engine is None:
            raise EdgeError(f"instrument unavailable: {self.supervisor.fault_text}")
        if job.kind in ("reopen", "reload"):
            return JobResult(job.kind, messages.utc_now())
        self.panel.show_busy()
        try:
            with self.gate.scanning() if self.gate else contextlib.nullcontext():
                if job.kind == "background":
                    result = self._background(engine, job)
                else:
                    result = self._scan(engine, job)
        except HalError as err:
            self.supervisor.fault(err)
            raise
        except BaseException:
            self._show_idle()
            raise
        shown = result.severity
        if result.status == "inconclusive" and shown != "alarm":
            shown = "inconclusive"  # its own pattern on the panel: confirm in the laboratory
        self.panel.show_outcome(
            shown,
            faulted=self.supervisor.faulted,
            alarm_active=self.alarm.active is not None,
        )
        return result

    def _show_idle(self) -> None:
        self.panel.show_idle(
            faulted=self.supervisor.faulted, alarm_active=self.alarm.active is not None
        )

    def _background(self, engine: ScanEngine, job: Job) -> JobResult:
        quality = engine.take_background()
        self.counters.backgrounds += 1
        log.info("new background taken (%s)", job.source)
        return JobResult(
            "background",
            messages.utc_now(),
            quality={k: float(v) for k, v in quality.items()} or None,
        )

    def _scan(self, engine: ScanEngine, job: Job) -> JobResult:
        scan = engine.scan(reference=job.consignment)
        ident = scan.decision
        scan_id = job.scan_id or messages.new_scan_id()
        extra = {"request_id": job.request_id} if job.request_id else None
        # the result is committed to the durable outbox first: it is what must never be lost
        try:
            submitted = self.courier.submit_result(
                ident, scan_id=scan_id, consignment=scan.reference, extra=extra
            )
        except OutboxError as err:  # a full disk: the space reserve is for this commit
            if self.make_room is None or not self.make_room(err):
                raise
            submitted = self.courier.submit_result(
                ident, scan_id=scan_id, consignment=scan.reference, extra=extra
            )
        self._archive(scan_id, scan, submitted.payload)
        self.counters.scans += 1
        alarm = messages.is_alarm(ident)
        if alarm:
            self.counters.alarms += 1
            self.alarm.raise_(alarm_from(ident, scan_id, scan.reference))
            self.publisher.publish_alarm()
        name = ident.substance.name if ident.substance else None
        log.info(
            "scan %s (%s): %s %s conf %.2f seq %d",
            scan_id,
            job.source,
            ident.status,
            name or "-",
            ident.confidence,
            submitted.seq,
        )
        return JobResult(
            "scan",
            messages.utc_now(),
            scan_id=scan_id,
            status=ident.status,
            severity="alarm" if alarm else ident.severity,
            consignment=scan.reference,
        )

    def _archive(self, scan_id: str, scan: ScanData, published: dict[str, Any]) -> None:
        """Keep the spectra with the signed result exactly as published."""
        record = ScanRecord(scan_id, self._wall_clock(), published, scan)
        try:
            self.archive.put(record)
        except ArchiveError as err:  # the result still goes out; only reach-back suffers
            self.counters.archive_errors += 1
            self.errors.record(f"archive: {err}")

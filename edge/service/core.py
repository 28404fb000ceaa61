"""The appliance's main loop (``spectra-edge run``).

Threads, each with one job and a bounded join at shutdown:

* **scan worker**: takes jobs (scan, background) from a bounded queue, one at a time:
  engine -> archive -> outbox (signed result) -> alarm. Button presses, remote commands and
  the demo all submit jobs here, so scanning is serialised and never waits on MQTT.
* **command worker** (:class:`edge.service.commands.Dispatcher`): runs remote commands.
* **housekeeping**: publishes ``health`` every ``mqtt.health_interval_s`` and retries a
  faulted instrument with capped, resetting backoff.
* paho's network thread and the outbox sender (:class:`edge.publish.Courier`).

Failures are classified at the boundary: an instrument fault (:class:`~hal.errors.HalError`)
turns the error light on and ``status`` to ``maintenance``, and the instrument is reopened
later; a broken command gets an error response; an archive error is logged (the result
still goes out). Nothing of that stops the service. SIGTERM: ``stopped`` is published and
every thread is joined within a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge import __version__
from edge.config.schema import Config
from edge.errors import EdgeError
from edge.publish import messages
from edge.publish.client import Command, MqttLink
from edge.publish.courier import Courier
from edge.publish.delivery import open_outbox
from edge.publish.signing import ALGORITHM, DeviceKey
from edge.publish.topics import COMMANDS as CONTRACT_COMMANDS
from edge.scan.engine import EngineScan, ScanEngine
from edge.service.alarm import ActiveAlarm, AlarmState, alarm_from
from edge.service.commands import (
    AckArgs,
    BackgroundArgs,
    CommandRejected,
    Dispatcher,
    GetSpectrumArgs,
    PingArgs,
    ScanArgs,
)
from edge.store.archive import Archive, ArchiveError, ScanNotFoundError, ScanRecord
from hal.errors import HalError

log = logging.getLogger(__name__)

#: scan, background, or reopen (after a fault: open the instrument again, acquire nothing).
JobKind = Literal["scan", "background", "reopen"]

#: Bounds of the retry delay after an instrument fault, s.
FAULT_RETRY_MIN_S = 1.0
FAULT_RETRY_MAX_S = 60.0


class PanelPort(Protocol):
    """What the service drives on the operator panel (:class:`hal.panel.Panel` has it)."""

    on_scan: Callable[[], None] | None
    on_background: Callable[[], None] | None

    def show_ready(self) -> None: ...
    def show_busy(self) -> None: ...
    def show_result(self, severity: Any) -> None: ...
    def show_error(self) -> None: ...
    def clear_alarm(self) -> None: ...


@dataclass(frozen=True)
class Job:
    """One unit of work for the scan worker."""

    kind: JobKind
    source: str
    consignment: str | None = None
    sample: str | None = None
    future: Future[dict[str, Any]] = field(default_factory=Future)


@dataclass
class Counters:
    """What the service has done since it started (for health and the demo)."""

    scans: int = 0
    backgrounds: int = 0
    faults: int = 0
    alarms: int = 0
    archive_errors: int = 0
    jobs_refused: int = 0


class Service:
    """The running appliance. ``start()``, then ``stop()`` (idempotent, bounded).

    *engine_factory* opens the instrument + identification (retried after a fault);
    *indicator* drives the operator panel; *link* defaults to the device MQTT link.
    """

    def __init__(
        self,
        cfg: Config,
        engine_factory: Callable[[], ScanEngine],
        *,
        panel: PanelPort | None = None,
        link: MqttLink | None = None,
        queue_size: int = 8,
    ) -> None:
        self.cfg = cfg
        self._engine_factory = engine_factory
        self._engine: ScanEngine | None = None
        self.panel = panel
        if panel is not None:
            panel.on_scan = self.press_short
            panel.on_background = self.press_long
        data_dir = cfg.device.data_dir.expanduser()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.key = DeviceKey.load_or_create(data_dir)
        self.archive = Archive.from_config(cfg)
        self.outbox = open_outbox(cfg)
        self.link = link or MqttLink(cfg, role="device")
        self.courier = Courier(cfg, self.link, self.outbox, self.key)
        self.alarm = AlarmState(data_dir)
        self.counters = Counters()
        self.dispatcher = Dispatcher(
            self.link.topics.prefix,
            {
                "scan": self._cmd_scan,
                "ack": self._cmd_ack,
                "background": self._cmd_background,
                "get_spectrum": self._cmd_get_spectrum,
                "ping": self._cmd_ping,
            },
            self._respond,
            device=cfg.device.id,
            post=cfg.device.post,
        )
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._started_at = time.monotonic()
        self._fault: str | None = None
        self._fault_retry_s = FAULT_RETRY_MIN_S
        self._next_retry = 0.0
        self.last_error: str | None = None
        self._started = False
        self._stopped = False
        self._running = False
        #: Called with each finished scan's signed result payload; runs on the scan worker.
        self.on_result: Callable[[dict[str, Any]], None] | None = None
        #: Simulator only: what lies on the crystal when the button is pressed (the demo's
        #: simulated officer sets it); None on a real box, where the officer places it.
        self.sample_source: Callable[[], str | None] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Open the instrument (a failure is a fault, not fatal), connect, start threads."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._open_engine()
        self.link.subscribe_commands(self._on_command)
        self.link.add_connect_listener(self._on_link_change)
        self._publish_info()
        self._publish_alarm()
        self._publish_health()
        self.courier.start()
        self.dispatcher.start()
        for name, target in (("scan-worker", self._scan_loop), ("housekeeping", self._house)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self._panel_idle(announce=True)
        log.info(
            "spectra-edge %s running as %s (broker %s:%s)",
            __version__,
            self.link.topics.prefix,
            self.cfg.mqtt.host,
            self.cfg.mqtt.port,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the job in hand, publish ``stopped``, join every thread; idempotent."""
        with self._lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        self._refuse_queued("service stopping")
        with contextlib.suppress(queue.Full):
            self._jobs.put_nowait(None)
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("thread %s did not stop in time", t.name)
        self.dispatcher.stop(max(0.1, deadline - time.monotonic()))
        self.courier.stop(max(0.5, deadline - time.monotonic()))  # publishes 'stopped'
        self._close_engine()
        if self.panel is not None:
            self.panel.on_scan = self.panel.on_background = None
        self.archive.close()
        self.outbox.close()
        log.info("spectra-edge stopped")

    def __enter__(self) -> Service:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_until(self, stop: threading.Event) -> None:
        """Block until *stop* is set (by a signal handler), then stop cleanly."""
        self.start()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()

    # -- submitting work ---------------------------------------------------------------

    def submit(
        self,
        kind: JobKind,
        *,
        source: str,
        consignment: str | None = None,
        sample: str | None = None,
    ) -> Future[dict[str, Any]]:
        """Queue a scan or background; the Future gets its summary. Never blocks.

        A full queue (someone is hammering the button) raises ``CommandRejected('busy')``.
        """
        job = Job(kind, source, consignment, sample)
        if self._stop.is_set():
            raise CommandRejected("busy", "service is stopping")
        try:
            self._jobs.put_nowait(job)
        except queue.Full as err:
            self.counters.jobs_refused += 1
            raise CommandRejected("busy", f"{self._jobs.maxsize} jobs already waiting") from err
        return job.future

    @property
    def idle(self) -> bool:
        """No job running and none waiting."""
        return not self._running and self._jobs.empty()

    def press_short(self) -> None:
        """Scan button, short press: scan what is on the crystal."""
        self._press("scan")

    def press_long(self) -> None:
        """Scan button, long press: take a new background."""
        self._press("background")

    def _press(self, kind: JobKind) -> None:
        sample = self.sample_source() if self.sample_source and kind == "scan" else None
        try:
            self.submit(kind, source="button", sample=sample)
        except CommandRejected as err:
            log.warning("button press ignored: %s", err)

    # -- the scan worker ---------------------------------------------------------------

    def _scan_loop(self) -> None:
        while not self._stop.is_set():
            job = self._jobs.get()
            if job is None:
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            self._running = True
            try:
                summary = self._run_job(job)
            except BaseException as err:
                if not isinstance(err, HalError | CommandRejected):  # faults log themselves
                    self._error(f"{job.kind} ({job.source}) failed: {type(err).__name__}: {err}")
                job.future.set_exception(err)
                if not isinstance(err, Exception):
                    raise
            else:
                job.future.set_result(summary)
            finally:
                self._running = False

    def _run_job(self, job: Job) -> dict[str, Any]:
        engine = self._engine or self._open_engine()
        if engine is None:
            raise EdgeError(f"instrument unavailable: {self._fault}")
        if job.kind == "reopen":
            return {}
        self._panel("show_busy")
        severity: str | None = None
        try:
            if job.kind == "background":
                quality = engine.take_background()
                self.counters.backgrounds += 1
                summary: dict[str, Any] = {"time": messages.utc_now()}
                if quality:
                    summary["quality"] = {k: float(v) for k, v in quality.items()}
                log.info("new background taken (%s)", job.source)
            else:
                summary = self._scan(engine, job)
                severity = summary.pop("_severity")
        except HalError as err:
            self._instrument_fault(err)
            raise
        except BaseException:
            self._panel_idle()
            raise
        self._panel_result(severity)
        return summary

    def _scan(self, engine: ScanEngine, job: Job) -> dict[str, Any]:
        result = engine.scan(job.sample)
        ident = result.identification
        scan_id = messages.new_scan_id()
        # the result is committed to the durable outbox first: it is what must never be lost
        submitted = self.courier.submit_result(ident, scan_id=scan_id, consignment=job.consignment)
        self._archive(scan_id, job, result, submitted.payload)
        self.counters.scans += 1
        if messages.is_alarm(ident):
            self.counters.alarms += 1
            self.alarm.raise_(alarm_from(ident, scan_id, job.consignment))
            self._publish_alarm()
        summary: dict[str, Any] = {
            "scan_id": scan_id,
            "status": ident.status,
            "_severity": "alarm"
            if messages.is_alarm(ident)
            else ("inconclusive" if ident.status == "inconclusive" else ident.severity),
        }
        if job.consignment:
            summary["consignment"] = job.consignment
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
        if self.on_result is not None:
            try:
                self.on_result(submitted.payload)
            except Exception:
                log.exception("on_result hook failed")
        return summary

    def _archive(
        self, scan_id: str, job: Job, result: EngineScan, published: dict[str, Any]
    ) -> None:
        """Keep the spectra with the signed result exactly as published."""
        record = ScanRecord(
            scan_id=scan_id,
            created=time.time(),
            result=published,
            wavenumbers=result.wavenumbers,
            spectrum=result.spectrum,
            reference=job.consignment,
            raw_wavenumbers=result.raw_wavenumbers,
            sample=result.sample,
            background=result.background,
            dark=result.dark,
        )
        try:
            self.archive.put(record)
        except ArchiveError as err:  # the result still goes out; only reach-back suffers
            self.counters.archive_errors += 1
            self._error(f"archive: {err}")

    # -- instrument faults -------------------------------------------------------------

    def _open_engine(self) -> ScanEngine | None:
        if self._engine is not None:
            return self._engine
        try:
            self._engine = self._engine_factory()
        except (HalError, EdgeError, OSError) as err:
            self._instrument_fault(err)
            return None
        if self._fault is not None:
            log.info("instrument back after fault: %s", self._fault)
            self._fault = None
            self._fault_retry_s = FAULT_RETRY_MIN_S
            self.link.publish_retained("status", self._status_payload())
            self._publish_info()
            self._panel("clear_alarm")  # the error blink
            self._panel_idle(announce=True)
        return self._engine

    def _instrument_fault(self, err: BaseException) -> None:
        first = self._fault is None
        self._fault = f"{type(err).__name__}: {err}"
        self.counters.faults += 1
        self._error(f"instrument: {self._fault}", loud=first)
        self._close_engine()
        self._next_retry = time.monotonic() + self._fault_retry_s
        self._fault_retry_s = min(FAULT_RETRY_MAX_S, self._fault_retry_s * 2)
        if first:
            self.link.publish_retained("status", self._status_payload())
        self._panel("show_error")

    def _close_engine(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            try:
                engine.close()
            except Exception as err:
                log.warning("closing the instrument failed: %s", err)

    def _error(self, message: str, loud: bool = True) -> None:
        self.last_error = message
        if loud:
            log.error("%s", message)
        else:
            log.debug("%s", message)

    # -- housekeeping ------------------------------------------------------------------

    def _house(self) -> None:
        interval = self.cfg.mqtt.health_interval_s
        next_health = time.monotonic() + interval
        while not self._stop.is_set():
            now = time.monotonic()
            wait = next_health - now
            if self._fault is not None:
                wait = min(wait, max(0.0, self._next_retry - now))
            self._wake.wait(max(0.05, min(wait, 1.0)))
            self._wake.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            if self._fault is not None and now >= self._next_retry and self._jobs.empty():
                with contextlib.suppress(queue.Full):
                    # reopening happens on the scan worker, which owns the instrument
                    self._jobs.put_nowait(Job("reopen", "fault-retry"))
                self._next_retry = now + self._fault_retry_s
            if now >= next_health:
                self._publish_health()
                next_health = now + interval

    def health(self) -> dict[str, Any]:
        """The ``health`` payload now (plus command counters)."""
        temp = age = None
        engine = self._engine
        if engine is not None:
            try:
                st = engine.state()
                temp, age = st.temperature_c, st.background_age_s
            except Exception as err:  # state is best effort; a fault shows on the next scan
                log.debug("engine state unavailable: %s", err)
        try:
            disk_free: int | None = shutil.disk_usage(self.data_dir).free
        except OSError:
            disk_free = None
        stats = self.outbox.stats()
        oldest = (
            None if stats.oldest_created is None else max(0.0, time.time() - stats.oldest_created)
        )
        payload = messages.health_payload(
            self.cfg.device.id,
            self.cfg.device.post,
            uptime_s=time.monotonic() - self._started_at,
            outbox={
                "waiting": stats.waiting,
                "alarms_waiting": stats.alarms_waiting,
                "dropped": stats.dropped,
                "oldest_age_s": oldest,
            },
            instrument_temperature_c=temp,
            background_age_s=age,
            last_error=self._fault or self.last_error or self.link.last_error,
            disk_free_bytes=disk_free,
        )
        payload["commands"] = self.dispatcher.snapshot()
        return payload

    def _publish_health(self) -> None:
        try:
            self.link.publish_retained("health", self.health())
        except Exception:
            log.exception("health not published")

    def _publish_info(self) -> None:
        identity = None
        if self._engine is not None:
            try:
                identity = self._engine.identity()
            except Exception as err:
                log.debug("instrument identity unavailable: %s", err)
        info = messages.info_payload(
            self.cfg.device.id,
            self.cfg.device.post,
            prefix=self.link.topics.prefix,
            public_key={"alg": ALGORITHM, "key_id": self.key.key_id, "value": self.key.public_b64},
            instrument=identity,
            commands=tuple(c for c in CONTRACT_COMMANDS if c in self.dispatcher.handlers),
        )
        self.link.publish_retained("info", info)

    def _alarm_payload(self, active: ActiveAlarm | None, by: str | None = None) -> dict[str, Any]:
        d, p = self.cfg.device.id, self.cfg.device.post
        if active is None:
            return messages.alarm_payload(d, p, active=False, acknowledged_by=by)
        return messages.alarm_payload(
            d,
            p,
            active=True,
            scan_id=active.scan_id,
            substance=active.substance,
            severity=active.severity,
            consignment=active.consignment,
        )

    def _publish_alarm(self, cleared: ActiveAlarm | None = None, by: str | None = None) -> None:
        active = self.alarm.active
        if active is None and cleared is not None:
            payload = self._alarm_payload(None, by)
            payload["scan_id"] = cleared.scan_id  # which alarm was cleared
        else:
            payload = self._alarm_payload(active)
        self.link.publish_retained("alarm", payload)

    def _status_payload(self) -> dict[str, Any]:
        state = "maintenance" if self._fault is not None else "online"
        return messages.status_payload(state, self.cfg.device.id, self.cfg.device.post)

    def _on_link_change(self, up: bool) -> None:
        # the link republishes 'online' on connect; a faulted instrument means maintenance
        if up and self._fault is not None:
            self.link.publish_retained("status", self._status_payload())

    # -- the operator panel ------------------------------------------------------------

    def _panel(self, method: str, *args: Any) -> None:
        if self.panel is None:
            return
        try:
            getattr(self.panel, method)(*args)
        except Exception:  # a broken LED must not stop scanning
            log.exception("panel: %s failed", method)

    def _panel_idle(self, announce: bool = False) -> None:
        """Ready (green), or the error blink while faulted; an active alarm stays red."""
        if self._fault is not None:
            self._panel("show_error")
        elif announce and self.alarm.active is not None:
            self._panel("show_result", "alarm")
        else:
            self._panel("show_ready")

    def _panel_result(self, severity: str | None) -> None:
        if severity is None:  # a background
            self._panel_idle()
        elif severity != "alarm" and self.alarm.active is not None:
            self._panel("show_ready")  # the earlier, unacknowledged alarm keeps its red light
        else:
            self._panel("show_result", severity)

    def _refuse_queued(self, why: str) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(CommandRejected("busy", why))

    # -- remote commands ---------------------------------------------------------------

    def _on_command(self, cmd: Command) -> None:
        # network thread: checks only, the work happens on the command worker
        self.dispatcher.submit(
            self.link.topics.cmd(cmd.name), cmd.payload, cmd.response_topic, cmd.correlation_data
        )

    def _respond(self, topic: str, payload: bytes, correlation: bytes | None) -> None:
        props = Properties(PacketTypes.PUBLISH)
        if correlation is not None:
            props.CorrelationData = correlation
        self.link.publish(topic, payload, qos=1, properties=props)

    def _cmd_scan(self, args: ScanArgs) -> Future[dict[str, Any]]:
        return self.submit("scan", source="remote", consignment=args.consignment)

    def _cmd_background(self, args: BackgroundArgs) -> Future[dict[str, Any]]:
        return self.submit("background", source="remote")

    def _cmd_ack(self, args: AckArgs) -> dict[str, Any]:
        cleared = self.alarm.acknowledge(args.scan_id)
        if cleared is not None:
            self._panel("clear_alarm")
            log.info("alarm of scan %s acknowledged by %s", cleared.scan_id, args.operator or "?")
            self._publish_alarm(cleared, args.operator or "remote")
        return {"cleared": cleared is not None, "scan_id": cleared.scan_id if cleared else None}

    def _cmd_get_spectrum(self, args: GetSpectrumArgs) -> dict[str, Any]:
        try:
            rec = self.archive.get(args.scan_id)
        except ScanNotFoundError as err:
            raise CommandRejected("not_found", str(err)) from err
        if args.kind == "processed":
            x, y, yu = rec.wavenumbers, rec.spectrum, "absorbance"
        else:
            if rec.sample is None or rec.raw_wavenumbers is None:
                raise CommandRejected("not_found", f"scan {args.scan_id!r} has no raw counts")
            x, y, yu = rec.raw_wavenumbers, rec.sample, "counts"
        return {
            "scan_id": rec.scan_id,
            "kind": args.kind,
            "x_unit": "1/cm",
            "y_unit": yu,
            "x": [round(float(v), 4) for v in x],
            "y": [float(f"{v:.7g}") for v in y],
        }

    def _cmd_ping(self, args: PingArgs) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uptime_s": time.monotonic() - self._started_at,
            "version": __version__,
        }
        if args.nonce is not None:
            out["nonce"] = args.nonce
        return out

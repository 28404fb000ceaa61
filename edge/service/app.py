"""The appliance (``spectra-edge run``): the composition root that wires the service's parts.

:class:`Service` builds every component, connects who tells whom, and starts and stops them
in order; the work happens in the parts, each in its own module:

* :class:`~edge.service.worker.ScanWorker` — the bounded job queue and its thread: scan ->
  outbox (signed result) -> archive -> alarm; background; reopen after a fault;
* :class:`~edge.service.supervisor.InstrumentSupervisor` — opens the scan engine, records
  faults, and schedules reopening with a :class:`~edge.service.supervisor.Backoff`;
* :class:`~edge.service.state.StatePublisher` — the retained ``status``, ``info``,
  ``health`` and ``alarm`` messages;
* :class:`~edge.service.commands.Dispatcher` with
  :class:`~edge.service.commands.handlers.CommandHandlers` — remote commands;
* :class:`~edge.service.housekeeping.Housekeeping` — periodic ``health``, fault retries;
* :class:`~edge.service.ota_state.OtaStatePublisher` — the retained, signed ``ota/state``
  (the updater's ``ota/state.json``, on change and on reconnect);
* :class:`~edge.service.panel.SafePanel` / :class:`~edge.service.panel.NullPanel` — the
  operator panel;
* :class:`~edge.publish.courier.Courier` — outbox -> broker (paho's thread under it);
* :class:`~edge.service.switch_gate.SwitchGate` — ``switch.lock``, held while a scan runs or
  an alarm is active (the updater defers its switch);
* :class:`~edge.service.readiness.Watchdog` with :class:`~edge.service.notify.Notifier` —
  systemd's ``READY=1`` (once the instrument and identifier are open, with
  ``<data_dir>/ready.json`` for the updater), ``STATUS=``, and ``WATCHDOG=1`` only while the
  scan worker and the MQTT loop are alive; :meth:`Service.reload` (SIGHUP) reopens the
  identifier after a data-only update.

An instrument fault turns the error light on and ``status`` to ``maintenance``, and the
instrument is reopened later; a broken command gets an error response; an archive error is
logged (the result still goes out). Nothing of that stops the service. SIGTERM: one
deadline (:data:`STOP_TIMEOUT_S`) is passed down to every join, ``stopped`` is published.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge import __version__
from edge.config.schema import Config
from edge.lifecycle import Clock, Deadline, SystemClock, deadline_of
from edge.ota.request import UpdateRequests
from edge.publish.client import STOP_OVERRUN_S, MqttLink
from edge.publish.courier import LINK_STOP_MIN_S, Courier
from edge.publish.delivery import open_outbox
from edge.publish.signing import DeviceKey
from edge.scan.engine import ScanEngine
from edge.service.alarm import AlarmState
from edge.service.commands.dispatcher import Dispatcher
from edge.service.commands.handlers import CommandHandlers
from edge.service.disk import DiskWatch
from edge.service.housekeeping import Housekeeping
from edge.service.notify import Notifier, watchdog_interval_s
from edge.service.ota_state import OtaStatePublisher
from edge.service.panel import NullPanel, PanelPort, PanelView, SafePanel
from edge.service.readiness import Watchdog, app_release_dir, write_ready
from edge.service.state import LastError, StatePublisher
from edge.service.supervisor import InstrumentSupervisor
from edge.service.switch_gate import SWITCH_LOCK, SwitchGate
from edge.service.worker import WEDGED_AFTER_S, ScanWorker
from edge.shipped import shipped_models_dir
from edge.store.archive import Archive
from edge.store.data_dir import prepare_data_dir
from edge.store.requests import RequestLog

log = logging.getLogger(__name__)

#: The stop deadline SIGTERM starts, passed down to every join, s.
STOP_TIMEOUT_S = 10.0
#: Longest a reload (SIGHUP) waits for the scan worker to reopen the identifier, s.
RELOAD_TIMEOUT_S = 120.0


def stop_budget_s(timeout: float = STOP_TIMEOUT_S) -> float:
    """The longest :meth:`Service.stop` can take with *timeout*: the deadline, plus what the
    MQTT link may overrun it by (the minimum it gets to publish ``stopped``, and paho's own
    unbounded join of its network thread). systemd's ``TimeoutStopSec`` must exceed it."""
    return timeout + LINK_STOP_MIN_S + STOP_OVERRUN_S


class Service:
    """The running appliance: ``start()``, then ``stop()`` (idempotent, bounded).

    *engine_factory* opens the instrument + identification (again after a fault); *panel*
    is the operator panel (None: none); *link* defaults to the device's MQTT link;
    *notifier* talks to systemd (default: ``$NOTIFY_SOCKET``, if any); a scan job running
    longer than *wedged_after_s* stops the watchdog pings.
    """

    def __init__(
        self,
        cfg: Config,
        engine_factory: Callable[[], ScanEngine],
        *,
        panel: PanelPort | None = None,
        link: MqttLink | None = None,
        queue_size: int = 8,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        wedged_after_s: float = WEDGED_AFTER_S,
    ) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        started_at = self.clock.monotonic()

        def uptime() -> float:
            return self.clock.monotonic() - started_at

        # made when missing, with its space reserve; a full disk is no reason to refuse
        self.data_dir = prepare_data_dir(cfg.device.data_dir)
        self.disk = DiskWatch(self.data_dir)
        # what is kept: the device key, the archive, the outbox, the alarm
        self.key = DeviceKey.load_or_create(self.data_dir)
        self.archive = Archive.from_config(cfg)
        self.outbox = open_outbox(cfg)
        self.alarm = AlarmState(self.data_dir)
        self.requests = RequestLog.for_data_dir(self.data_dir)
        self.gate = SwitchGate(self.data_dir / SWITCH_LOCK, lambda: self.alarm.active is not None)
        self.alarm.on_change.append(self.gate.refresh)
        # MQTT
        self.link = link or MqttLink(cfg, role="device")
        self.link.use_key(self.key)  # status, info, health, alarm and the will are signed
        self.courier = Courier(cfg, self.link, self.outbox, self.key, clock=self.clock)
        # the parts
        self.errors = LastError()
        self.panel: PanelView = SafePanel(panel) if panel is not None else NullPanel()
        self.supervisor = InstrumentSupervisor(engine_factory, errors=self.errors, clock=self.clock)
        self.publisher = StatePublisher(
            cfg,
            self.link,
            self.key,
            self.outbox,
            self.supervisor,
            self.alarm,
            self.errors,
            data_dir=self.data_dir,
            uptime=uptime,
        )
        self.worker = ScanWorker(
            self.supervisor,
            self.courier,
            self.archive,
            self.alarm,
            self.publisher,
            self.panel,
            self.errors,
            queue_size=queue_size,
            make_room=self.disk.make_room,
            gate=self.gate,
        )
        self.handlers = CommandHandlers(
            self.worker,
            self.alarm,
            self.archive,
            self.publisher,
            self.panel,
            uptime=uptime,
            requests=self.requests,
            courier=self.courier,
            updates=UpdateRequests(self.data_dir, cfg.ota.root),
            state_topic=f"{self.link.topics.prefix}/ota/state",
        )
        self.dispatcher = Dispatcher(
            self.link.topics.prefix,
            self.handlers.table(),
            self.link.respond,
            device=cfg.device.id,
            post=cfg.device.post,
            clock=self.clock,
        )
        self.publisher.commands = self.dispatcher
        self.handlers.count = self.dispatcher.count
        self.handlers.make_room = self.disk.make_room
        self.publisher.disk = self.disk
        self.ota_state = OtaStatePublisher(cfg, self.link, self.key)
        self.housekeeping = Housekeeping(
            cfg.mqtt.health_interval_s,
            self.publisher,
            self.supervisor,
            self.worker,
            disk=self.disk,
            clock=self.clock,
        )
        # who hears about what
        self.disk.on_change.append(self.publisher.on_disk_change)
        self.disk.on_change.append(lambda full: self.courier.wake())
        self.supervisor.on_fault.append(self.publisher.on_instrument_fault)
        self.supervisor.on_fault.append(lambda first: self.panel.show_error())
        self.supervisor.on_recover.append(self.publisher.on_instrument_recovered)
        self.supervisor.on_recover.append(
            lambda: self.panel.show_instrument_back(alarm_active=self.alarm.active is not None)
        )
        self.panel.bind(lambda: self.worker.press("scan"), lambda: self.worker.press("background"))
        # systemd and the updater
        self.notifier = notifier or Notifier()
        self.app_release = app_release_dir()
        self.ready = False
        self.supervisor.on_recover.append(self._announce_ready)
        interval = watchdog_interval_s()
        self.watchdog = (
            Watchdog(
                self.notifier,
                interval,
                [lambda: self.worker.wedged(wedged_after_s), self.link.loop_problem],
                self.status_line,
            )
            if interval is not None and self.notifier.enabled
            else None
        )
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False

    def start(self) -> None:
        """Open the instrument (a failure is a fault, not fatal), connect, start the threads."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self.gate.open()
        opened = self.supervisor.engine()  # no thread runs yet: this one may touch the instrument
        self.disk.check()  # before the first status/health, so they tell the truth
        self.link.subscribe_commands(self.dispatcher.on_message)
        self.link.add_connect_listener(self.publisher.on_link_change)
        self.publisher.publish_info()
        self.publisher.publish_alarm()
        self.publisher.publish_health()
        self.handlers.reconcile()  # before the courier may deliver what a kill left waiting
        self.ota_state.start()
        self.courier.start()
        self.dispatcher.start()
        self.worker.start()
        self.housekeeping.start()
        if opened is not None:
            self._announce_ready()
        else:
            self.notifier.status(f"waiting for the instrument: {self.supervisor.fault_text}")
        if self.watchdog is not None:
            self.watchdog.start()
        self.panel.show_idle(
            faulted=self.supervisor.faulted,
            alarm_active=self.alarm.active is not None,
            announce=True,
        )
        log.info(
            "spectra-edge %s running as %s (broker %s:%s)",
            __version__,
            self.link.topics.prefix,
            self.cfg.mqtt.host,
            self.cfg.mqtt.port,
        )

    def stop(self, deadline: float | Deadline = STOP_TIMEOUT_S) -> None:
        """Finish the job in hand, publish ``stopped``, join every thread until *deadline*
        (seconds, or a :class:`Deadline` passed down from the signal); idempotent.

        At most :func:`stop_budget_s` of *deadline* in all.
        """
        with self._lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
        until = deadline_of(deadline, self.clock)
        self.notifier.stopping()
        if self.watchdog is not None:
            self.watchdog.stop(until)
        self.housekeeping.stop(until)
        self.ota_state.stop(until)
        self.worker.stop(until)  # refuses what waits, finishes the job in hand
        self.dispatcher.stop(until)
        self.courier.stop(until)  # publishes 'stopped'
        self.supervisor.close()
        self.panel.bind(None, None)
        self.archive.close()
        self.requests.close()
        self.outbox.close(until)
        self.gate.close()
        log.info("spectra-edge stopped")

    # -- systemd and the updater -----------------------------------------------------------

    def status_line(self) -> str:
        """The one-line status systemd shows (``STATUS=``)."""
        c = self.worker.counters
        state = (
            f"instrument fault: {self.supervisor.fault_text}"
            if self.supervisor.faulted
            else "ready"
        )
        alarm = ", ALARM active" if self.alarm.active is not None else ""
        link = "connected" if self.link.connected else "broker unreachable"
        return (
            f"{state}{alarm}; {c.scans} scans, {c.alarms} alarms; MQTT {link}, "
            f"{len(self.outbox)} results waiting"
        )

    def data_release(self) -> Path:
        """The library + model directory the identifier loads (resolved: the data release)."""
        library = self.cfg.identify.library or shipped_models_dir() / "library"
        return Path(library).expanduser().resolve().parent

    def _announce_ready(self) -> None:
        """``ready.json`` for the updater, then ``READY=1`` with the status line."""
        from edge.ota.selftest import outbox_writable

        try:
            write_ready(
                self.data_dir,
                app_release=self.app_release,
                data_release=self.data_release(),
                outbox_problem=outbox_writable(self.data_dir),
            )
        except OSError as err:
            self.errors.record(f"ready.json not written: {err}")
        self.ready = True
        self.notifier.ready(self.status_line())
        log.info("ready (%s)", self.data_release())

    def reload(
        self, timeout: float = RELOAD_TIMEOUT_S, cancel: threading.Event | None = None
    ) -> bool:
        """Reopen the instrument and identifier (SIGHUP after a data-only update) on the scan
        worker, after the job in hand; ready again when done. True when reloaded. Stops
        waiting when *cancel* is set (SIGTERM meanwhile: the stop deadline runs)."""
        self.notifier.reloading()
        log.info("reloading the identifier")
        try:
            job = self.worker.submit_reload()
            until = deadline_of(timeout, self.clock)
            while not job.done():
                if (cancel is not None and cancel.is_set()) or until.expired():
                    raise TimeoutError("reload did not finish (stopping, or past its deadline)")
                time.sleep(0.05)
            job.result()
        except Exception as err:
            self.errors.record(f"reload failed: {type(err).__name__}: {err}")
            self.notifier.ready(f"reload failed: {err}")
            return False
        self._announce_ready()
        return True

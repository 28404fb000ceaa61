"""What the device tells the control room about itself: ``status``, ``info``, ``health`` and
``alarm``, all retained (:class:`StatePublisher`), and the last error health reports
(:class:`LastError`)."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from edge.config.schema import Config
from edge.publish import messages
from edge.publish.client import MqttLink
from edge.publish.outbox import Outbox
from edge.publish.signing import ALGORITHM, DeviceKey
from edge.scan.engine import EngineState
from edge.service.alarm import ActiveAlarm, AlarmState

log = logging.getLogger(__name__)


class LastError:
    """The most recent error of the service, for ``health.last_error``; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._message: str | None = None

    @property
    def message(self) -> str | None:
        """The last error recorded, None when there was none."""
        with self._lock:
            return self._message

    def record(self, message: str, *, loud: bool = True) -> None:
        """Remember *message*; log it as an error (*loud*) or at debug level (a repeat)."""
        with self._lock:
            self._message = message
        if loud:
            log.error("%s", message)
        else:
            log.debug("%s", message)


class InstrumentView(Protocol):
    """What the publisher reads of the instrument (:class:`InstrumentSupervisor` has it)."""

    @property
    def fault_text(self) -> str | None: ...

    @property
    def faulted(self) -> bool: ...

    def state(self) -> EngineState | None: ...

    def identity(self) -> dict[str, Any] | None: ...

    def identification(self) -> dict[str, Any] | None: ...


class CommandView(Protocol):
    """What the publisher reads of the command dispatcher."""

    @property
    def served(self) -> tuple[str, ...]: ...

    def snapshot(self) -> dict[str, int]: ...


class DiskView(Protocol):
    """What the publisher reads of the disk watch."""

    @property
    def full(self) -> bool: ...


class StatePublisher:
    """Builds and publishes the retained ``status``, ``info``, ``health`` and ``alarm``.

    ``commands`` (the dispatcher) is attached once it exists: ``info`` lists the commands it
    serves and ``health`` its counters.
    """

    def __init__(
        self,
        cfg: Config,
        link: MqttLink,
        key: DeviceKey,
        outbox: Outbox,
        instrument: InstrumentView,
        alarm: AlarmState,
        errors: LastError,
        *,
        data_dir: Path,
        uptime: Callable[[], float],
    ) -> None:
        self.cfg = cfg
        self.link = link
        self.key = key
        self.outbox = outbox
        self.instrument = instrument
        self.alarm = alarm
        self.errors = errors
        self.data_dir = data_dir
        self.uptime = uptime
        self.commands: CommandView | None = None
        #: The data directory's space (attached by the app): ``health.disk_full`` and the
        #: ``maintenance`` reason ``disk_full``.
        self.disk: DiskView | None = None

    # -- health ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The ``health`` payload now (with the command counters)."""
        state = self.instrument.state()
        try:
            disk_free: int | None = shutil.disk_usage(self.data_dir).free
        except OSError:
            disk_free = None
        payload = messages.health_payload(
            self.cfg.device.id,
            self.cfg.device.post,
            uptime_s=self.uptime(),
            outbox=self.outbox.stats().for_health(),
            instrument_temperature_c=state.temperature_c if state else None,
            background_age_s=state.background_age_s if state else None,
            last_error=(
                self.instrument.fault_text
                or self.errors.message
                or self.outbox.last_dead_letter
                or self.link.last_error
            ),
            disk_free_bytes=disk_free,
        )
        payload["disk_full"] = self.disk_full
        payload["identification"] = self.instrument.identification()
        payload["commands"] = self.commands.snapshot() if self.commands is not None else {}
        return payload

    def publish_health(self) -> None:
        """Publish ``health`` (a failure is logged: health is periodic, the next one comes)."""
        try:
            self.link.publish_retained("health", self.health())
        except Exception:
            log.exception("health not published")

    # -- info --------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The ``info`` payload: identity, key, instrument, commands served."""
        return messages.info_payload(
            self.cfg.device.id,
            self.cfg.device.post,
            prefix=self.link.topics.prefix,
            public_key={"alg": ALGORITHM, "key_id": self.key.key_id, "value": self.key.public_b64},
            instrument=self.instrument.identity(),
            commands=self.commands.served if self.commands is not None else (),
        )

    def publish_info(self) -> None:
        """Publish ``info``."""
        self.link.publish_retained("info", self.info())

    # -- status ------------------------------------------------------------------------------

    @property
    def disk_full(self) -> bool:
        """The data directory counts as full (see :mod:`edge.service.disk`)."""
        return self.disk is not None and self.disk.full

    def maintenance_reason(self) -> str | None:
        """Why the device is in ``maintenance`` (comma-separated), or None when it is not."""
        reasons = [
            name
            for name, why in (
                ("instrument_fault", self.instrument.faulted),
                ("disk_full", self.disk_full),
            )
            if why
        ]
        return ",".join(reasons) or None

    def status(self) -> dict[str, Any]:
        """``maintenance`` (with its reason) while the instrument is faulted or the disk is
        full, else ``online``."""
        reason = self.maintenance_reason()
        return messages.status_payload(
            "maintenance" if reason else "online",
            self.cfg.device.id,
            self.cfg.device.post,
            reason=reason,
        )

    def publish_status(self) -> None:
        """Publish ``status``."""
        self.link.publish_retained("status", self.status())

    def on_link_change(self, up: bool) -> None:
        """Link listener: the link republishes ``online`` on connect; a faulted instrument
        means ``maintenance``."""
        if up and self.maintenance_reason():
            self.publish_status()

    def on_instrument_fault(self, first: bool) -> None:
        """Supervisor listener: the first fault turns ``status`` to ``maintenance``."""
        if first:
            self.publish_status()

    def on_disk_change(self, full: bool) -> None:
        """Disk-watch listener: ``status`` and ``health`` say at once that the disk is full,
        and that it is not any more."""
        self.publish_status()
        self.publish_health()

    def on_instrument_recovered(self) -> None:
        """Supervisor listener: back ``online``, with the instrument's identity in ``info``."""
        self.publish_status()
        self.publish_info()

    # -- alarm -------------------------------------------------------------------------------

    def alarm_payload(
        self, active: ActiveAlarm | None, acknowledged_by: str | None = None
    ) -> dict[str, Any]:
        """The ``alarm`` payload for *active* (None: no alarm)."""
        d, p = self.cfg.device.id, self.cfg.device.post
        if active is None:
            return messages.alarm_payload(d, p, active=False, acknowledged_by=acknowledged_by)
        return messages.alarm_payload(
            d,
            p,
            active=True,
            scan_id=active.scan_id,
            substance=active.substance,
            severity=active.severity,
            consignment=active.consignment,
        )

    def publish_alarm(self, cleared: ActiveAlarm | None = None, by: str | None = None) -> None:
        """Publish the active alarm, or (*cleared*, *by*) which one was acknowledged by whom."""
        active = self.alarm.active
        if active is None and cleared is not None:
            payload = self.alarm_payload(None, by)
            payload["scan_id"] = cleared.scan_id  # which alarm was cleared
        else:
            payload = self.alarm_payload(active)
        self.link.publish_retained("alarm", payload)

"""The device's active alarm: raised by a scan, cleared by ``ack``, kept across restarts.

The alarm is the state behind the retained ``alarm`` topic and the red LED. It is written
atomically to ``<data_dir>/alarm.json`` so an unacknowledged alarm survives a reboot.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge.identify.result import Identification
from spectra_io.atomic import atomic_write_text

log = logging.getLogger(__name__)

ALARM_FILE = "alarm.json"


@dataclass(frozen=True)
class ActiveAlarm:
    """The alarm being shown: which scan raised it and what was found."""

    scan_id: str
    substance: dict[str, Any] | None
    severity: str
    consignment: str | None = None


def alarm_from(
    identification: Identification, scan_id: str, consignment: str | None
) -> ActiveAlarm:
    """The alarm a result raises (the caller decides *whether* it raises one)."""
    sub = identification.substance
    substance: dict[str, Any] | None = None
    if sub is not None:
        substance = {
            "name": sub.name,
            "category": sub.category,
            "family": sub.family,
            "severity": sub.severity,
            "cas": sub.cas,
        }
    else:  # a mixture: the most severe component names the alarm
        for m in identification.mixture:
            if m.severity == "alarm":
                substance = {
                    "name": m.name,
                    "category": m.category or "unknown",
                    "family": None,
                    "severity": "alarm",
                    "cas": None,
                }
                break
    return ActiveAlarm(scan_id, substance, "alarm", consignment)


class AlarmState:
    """The one active alarm (or none); thread-safe, persisted in *data_dir*."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / ALARM_FILE
        self._lock = threading.Lock()
        self._active: ActiveAlarm | None = self._load()
        #: Called (no arguments, outside the lock) after the alarm is raised or cleared.
        self.on_change: list[Callable[[], None]] = []

    def _changed(self) -> None:
        for callback in self.on_change:
            try:
                callback()
            except Exception:
                log.exception("alarm listener failed")

    def _load(self) -> ActiveAlarm | None:
        try:
            data = json.loads(self.path.read_text("utf-8"))
            return ActiveAlarm(**data) if data else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as err:
            log.error("alarm state %s unreadable (%s); starting without an alarm", self.path, err)
            return None

    def _save(self, alarm: ActiveAlarm | None) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(asdict(alarm) if alarm else None))
        except OSError as err:  # the alarm still shows; it just would not survive a reboot
            log.error("could not persist alarm state to %s: %s", self.path, err)

    @property
    def active(self) -> ActiveAlarm | None:
        """The active alarm, if any."""
        with self._lock:
            return self._active

    def raise_(self, alarm: ActiveAlarm) -> None:
        """Make *alarm* the active one (a newer alarm replaces an older one)."""
        with self._lock:
            self._active = alarm
            self._save(alarm)
        self._changed()

    def acknowledge(self, scan_id: str | None) -> ActiveAlarm | None:
        """Clear the active alarm if *scan_id* is None or names it; returns what was cleared.

        An ack for another scan (an older alarm already replaced) clears nothing.
        """
        with self._lock:
            current = self._active
            if current is None or (scan_id is not None and scan_id != current.scan_id):
                return None
            self._active = None
            self._save(None)
        self._changed()
        return current

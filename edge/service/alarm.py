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
from spectra_io.sealed import seal, seal_problem

log = logging.getLogger(__name__)

ALARM_FILE = "alarm.json"
#: Member of alarm.json holding the sha256 of the rest (spectra_io.sealed).
_SEAL_KEY = "sha256"


@dataclass(frozen=True)
class ActiveAlarm:
    """The alarm being shown: which scan raised it and what was found.

    ``scan_id`` is None only for the fail-safe alarm of a damaged state file (see
    :meth:`AlarmState._load`); an ``ack`` without a scan id clears it.
    """

    scan_id: str | None
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
        """The persisted alarm. A damaged file fails safe: an alarm that says so stays on
        until acknowledged, because it may have held an unacknowledged alarm."""
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return None
        except OSError as err:
            return self._damaged(f"unreadable: {err}")
        try:
            doc = json.loads(text)
            if doc is None:  # written before the checksum existed: no alarm
                return None
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            if _SEAL_KEY not in doc:  # written before the checksum existed
                return ActiveAlarm(**doc) if doc else None
            problem = seal_problem(doc, _SEAL_KEY)
            if problem is not None:
                raise ValueError(problem)
            body = doc.get("alarm")
            return ActiveAlarm(**body) if body else None
        except (ValueError, TypeError) as err:
            return self._damaged(str(err))

    def _damaged(self, why: str) -> ActiveAlarm:
        log.error(
            "alarm state %s damaged (%s): keeping an alarm on until acknowledged", self.path, why
        )
        return ActiveAlarm(
            scan_id=None,
            substance={
                "name": "alarm state damaged: check the control room for open alarms",
                "category": "unknown",
                "family": None,
                "severity": "alarm",
                "cas": None,
            },
            severity="alarm",
            consignment=None,
        )

    def _save(self, alarm: ActiveAlarm | None) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            doc = seal({"alarm": asdict(alarm) if alarm else None}, _SEAL_KEY)
            atomic_write_text(self.path, json.dumps(doc))
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

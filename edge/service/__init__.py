"""The appliance service (``spectra-edge run``) and the demo (``spectra-edge demo``).

* :mod:`edge.service.core` — :class:`Service`: scan worker, commands, health, lifecycle.
* :mod:`edge.scan.engine` — the :class:`ScanEngine` seam to instrument + identification.
* :mod:`edge.service.alarm` — the active alarm, raised by scans, cleared by ``ack``.
"""

from __future__ import annotations

from edge.scan.engine import EngineScan, EngineState, ScanEngine
from edge.service.alarm import ActiveAlarm, AlarmState
from edge.service.core import Job, Service

__all__ = [
    "ActiveAlarm",
    "AlarmState",
    "EngineScan",
    "EngineState",
    "Job",
    "ScanEngine",
    "Service",
]

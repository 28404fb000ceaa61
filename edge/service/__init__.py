"""The appliance service (``spectra-edge run``) and the demo (``spectra-edge demo``).

* :mod:`edge.service.app` — :class:`Service`, the composition root: wires the parts, starts
  and stops them;
* :mod:`edge.service.worker` — :class:`ScanWorker`: the job queue, scans, backgrounds;
* :mod:`edge.service.supervisor` — :class:`InstrumentSupervisor`: open, fault, backoff;
* :mod:`edge.service.state` — :class:`StatePublisher`: status, info, health, alarm;
* :mod:`edge.service.commands` — remote commands: contract, dispatcher, handlers;
* :mod:`edge.service.housekeeping` — periodic health and fault retries;
* :mod:`edge.service.panel` — the operator panel, typed and failure-proof;
* :mod:`edge.service.alarm` — the active alarm, raised by scans, cleared by ``ack``;
* :mod:`edge.service.run`, :mod:`edge.service.demo` — the process, and the demo.

The scan engine seam (:class:`~edge.scan.engine.ScanEngine`) belongs to :mod:`edge.scan`.
"""

from __future__ import annotations

from edge.service.alarm import ActiveAlarm, AlarmState
from edge.service.app import STOP_TIMEOUT_S, Service, stop_budget_s
from edge.service.worker import Job, JobResult, ScanWorker

__all__ = [
    "STOP_TIMEOUT_S",
    "ActiveAlarm",
    "AlarmState",
    "Job",
    "JobResult",
    "ScanWorker",
    "Service",
    "stop_budget_s",
]

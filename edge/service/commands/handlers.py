"""The service's remote-command handlers: one method per command of the contract.

Each takes the validated arguments model and returns the response's ``result``: a dict, or
a Future of one for the commands that queue a job (``scan``, ``background``), answered when
the job ends. A refusal is a :class:`CommandRejected` (``busy``, ``not_found``). ``update``
only writes a request file for the root updater (:mod:`edge.ota.request`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from edge import __version__
from edge.errors import UpdateError
from edge.ota.request import UpdateRequests
from edge.service.alarm import AlarmState
from edge.service.commands.contract import (
    AckArgs,
    BackgroundArgs,
    CommandRejected,
    GetSpectrumArgs,
    PingArgs,
    ScanArgs,
    UpdateArgs,
)
from edge.service.commands.dispatcher import Handler
from edge.service.panel import PanelView
from edge.service.state import StatePublisher
from edge.service.worker import JobResult, ScanWorker
from edge.store.archive import Archive, ScanNotFoundError

log = logging.getLogger(__name__)


def _responded(job: Future[JobResult]) -> Future[dict[str, Any]]:
    """A future of the job's command response, settled when the job ends."""
    out: Future[dict[str, Any]] = Future()

    def settle(done: Future[JobResult]) -> None:
        if done.cancelled():
            out.cancel()
        elif (err := done.exception()) is not None:
            out.set_exception(err)
        else:
            out.set_result(done.result().response())

    job.add_done_callback(settle)
    return out


class CommandHandlers:
    """``scan``, ``ack``, ``background``, ``get_spectrum``, ``ping`` and ``update`` for one
    service (*updates*: where ``update`` hands its request to the root updater)."""

    def __init__(
        self,
        worker: ScanWorker,
        alarm: AlarmState,
        archive: Archive,
        publisher: StatePublisher,
        panel: PanelView,
        *,
        uptime: Callable[[], float],
        updates: UpdateRequests | None = None,
        state_topic: str | None = None,
    ) -> None:
        self.worker = worker
        self.alarm = alarm
        self.archive = archive
        self.publisher = publisher
        self.panel = panel
        self.uptime = uptime
        self.updates = updates
        self.state_topic = state_topic

    def table(self) -> dict[str, Handler]:
        """Command name -> handler, for the dispatcher."""
        return {
            "scan": self.scan,
            "ack": self.ack,
            "background": self.background,
            "get_spectrum": self.get_spectrum,
            "ping": self.ping,
            "update": self.update,
        }

    def scan(self, args: ScanArgs) -> Future[dict[str, Any]]:
        """Queue a scan with the consignment reference; answered when it is done."""
        return _responded(self.worker.submit("scan", source="remote", consignment=args.consignment))

    def background(self, args: BackgroundArgs) -> Future[dict[str, Any]]:
        """Queue a new background; answered when it is taken."""
        return _responded(self.worker.submit("background", source="remote"))

    def ack(self, args: AckArgs) -> dict[str, Any]:
        """Clear the active alarm (when *scan_id* names it, or none is given)."""
        cleared = self.alarm.acknowledge(args.scan_id)
        if cleared is not None:
            self.panel.clear_alarm()
            log.info("alarm of scan %s acknowledged by %s", cleared.scan_id, args.operator or "?")
            self.publisher.publish_alarm(cleared, args.operator or "remote")
        return {"cleared": cleared is not None, "scan_id": cleared.scan_id if cleared else None}

    def get_spectrum(self, args: GetSpectrumArgs) -> dict[str, Any]:
        """A stored scan's processed spectrum or raw sample counts, from the archive."""
        try:
            scan = self.archive.get(args.scan_id).data
        except ScanNotFoundError as err:
            raise CommandRejected("not_found", str(err)) from err
        if args.kind == "processed":
            x, y, yu = scan.wavenumbers, scan.spectrum, "absorbance"
        else:
            if scan.sample is None or scan.raw_wavenumbers is None:
                raise CommandRejected("not_found", f"scan {args.scan_id!r} has no raw counts")
            x, y, yu = scan.raw_wavenumbers, scan.sample, "counts"
        return {
            "scan_id": args.scan_id,
            "kind": args.kind,
            "x_unit": "1/cm",
            "y_unit": yu,
            "x": [round(float(v), 4) for v in x],
            "y": [float(f"{v:.7g}") for v in y],
        }

    def ping(self, args: PingArgs) -> dict[str, Any]:
        """Uptime and version, echoing the nonce."""
        out: dict[str, Any] = {"uptime_s": self.uptime(), "version": __version__}
        if args.nonce is not None:
            out["nonce"] = args.nonce
        return out

    def update(self, args: UpdateArgs) -> dict[str, Any]:
        """Hand an update request to the root updater (the service cannot write the releases);
        ``busy`` while a request waits or an update runs."""
        if self.updates is None:
            raise CommandRejected("failed", "over-the-air updates are not set up on this device")
        try:
            request = self.updates.submit(args.repository, args.target, "remote")
        except UpdateError as err:
            if err.reason == "busy":
                raise CommandRejected("busy", str(err)) from err
            raise CommandRejected("bad_request", str(err)) from err
        except OSError as err:
            raise CommandRejected("failed", f"update request not written: {err}") from err
        log.info("update requested from %s (%s)", args.repository, args.target or "newest")
        out: dict[str, Any] = {
            "accepted": True,
            "request_id": request.id,
            "repository": request.repository,
        }
        if request.target:
            out["target"] = request.target
        if self.state_topic:
            out["state_topic"] = self.state_topic
        return out

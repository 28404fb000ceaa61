"""The service's remote-command handlers: one method per command of the contract.

Each takes the validated arguments model and returns the response's ``result``: a dict, or
a Future of one for the commands that queue a job (``scan``, ``background``), answered when
the job ends. A refusal is a :class:`CommandRejected` (``busy``, ``not_found``).

A ``scan`` with a ``request_id`` runs at most once: the id is recorded on disk
(:class:`~edge.store.requests.RequestLog`) before the scan starts, and a request with an id
seen before is answered with the first one's response, never scanned again. ``replay``
resends archived results, as signed, through the outbox. ``update`` only writes a request
file for the root updater (:mod:`edge.ota.request`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from edge import __version__
from edge.errors import OutboxError, UpdateError
from edge.ota.request import UpdateRequests
from edge.publish import messages
from edge.publish.courier import Courier
from edge.publish.signing import canonical_json
from edge.service.alarm import AlarmState
from edge.service.commands.contract import (
    AckArgs,
    BackgroundArgs,
    CommandRejected,
    GetSpectrumArgs,
    PingArgs,
    ReplayArgs,
    ScanArgs,
    UpdateArgs,
)
from edge.service.commands.dispatcher import Handler
from edge.service.panel import PanelView
from edge.service.state import StatePublisher
from edge.service.worker import JobResult, ScanWorker
from edge.store.archive import Archive, ArchiveError, ScanNotFoundError
from edge.store.requests import RequestLog, RequestLogError, SeenRequest

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


def _stored(response: dict[str, Any]) -> dict[str, Any]:
    """The response a request log entry holds, as a handler's outcome (or its refusal)."""
    if response.get("ok"):
        return dict(response.get("result") or {})
    error = response.get("error") or {}
    raise CommandRejected(error.get("code", "failed"), str(error.get("message", "")))


class CommandHandlers:
    """``scan``, ``ack``, ``background``, ``get_spectrum``, ``replay``, ``ping`` and ``update``
    for one service. *requests* records remote scan request ids; *courier* resends for
    ``replay``; *updates* is where ``update`` hands its request to the root updater."""

    def __init__(
        self,
        worker: ScanWorker,
        alarm: AlarmState,
        archive: Archive,
        publisher: StatePublisher,
        panel: PanelView,
        *,
        uptime: Callable[[], float],
        requests: RequestLog | None = None,
        courier: Courier | None = None,
        updates: UpdateRequests | None = None,
        state_topic: str | None = None,
    ) -> None:
        self.worker = worker
        self.alarm = alarm
        self.archive = archive
        self.publisher = publisher
        self.panel = panel
        self.uptime = uptime
        self.requests = requests
        self.courier = courier
        #: Requests answered from the log instead of scanning again; results resent.
        self.repeated_requests = 0
        self.replayed = 0
        #: After a write failed: frees the space reserve when the disk is full (the app
        #: wires :meth:`edge.service.disk.DiskWatch.make_room`).
        self.make_room: Callable[[BaseException], bool] | None = None
        #: Counts a handler's own outcomes into ``health.commands`` (the app wires it).
        self.count: Callable[[str], None] = lambda _key: None
        self._running: dict[str, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.updates = updates
        self.state_topic = state_topic

    def table(self) -> dict[str, Handler]:
        """Command name -> handler, for the dispatcher."""
        return {
            "scan": self.scan,
            "ack": self.ack,
            "background": self.background,
            "get_spectrum": self.get_spectrum,
            "replay": self.replay,
            "ping": self.ping,
            "update": self.update,
        }

    def scan(self, args: ScanArgs) -> Future[dict[str, Any]] | dict[str, Any]:
        """Queue a scan with the consignment reference; answered when it is done. A request
        id seen before is answered with its first response (or joins it while it runs)."""
        if args.request_id is None or self.requests is None:
            return _responded(
                self.worker.submit("scan", source="remote", consignment=args.consignment)
            )
        rid = args.request_id
        with self._lock:
            running = self._running.get(rid)
            if running is not None:
                self.repeated_requests += 1
                self.count("repeated_request")
                log.info("scan request %s repeated while it runs: answered once it ends", rid)
                return running
            scan_id = messages.new_scan_id()
            try:
                seen = self._begin(rid, scan_id)
            except RequestLogError as err:
                raise CommandRejected("failed", f"cannot record request id: {err}") from err
            if seen is not None:
                self.repeated_requests += 1
                self.count("repeated_request")
                log.info("scan request %s seen before (scan %s): not run again", rid, seen.scan_id)
                return self._answer_seen(seen)
            try:
                job = self.worker.submit(
                    "scan",
                    source="remote",
                    consignment=args.consignment,
                    scan_id=scan_id,
                    request_id=rid,
                )
            except CommandRejected as err:
                self._record(rid, {"ok": False, "error": {"code": err.code, "message": str(err)}})
                raise
            out = _responded(job)
            self._running[rid] = out
        out.add_done_callback(lambda done: self._settled(rid, done))
        return out

    def _begin(self, rid: str, scan_id: str) -> SeenRequest | None:
        """:meth:`RequestLog.begin`; on a full disk once more after releasing the reserve."""
        assert self.requests is not None
        try:
            return self.requests.begin(rid, scan_id)
        except RequestLogError as err:
            if self.make_room is None or not self.make_room(err):
                raise
            return self.requests.begin(rid, scan_id)

    def _settled(self, rid: str, done: Future[dict[str, Any]]) -> None:
        with self._lock:
            self._running.pop(rid, None)
        if done.cancelled():
            response: dict[str, Any] = {
                "ok": False,
                "error": {"code": "failed", "message": "cancelled"},
            }
        elif (err := done.exception()) is not None:
            code = err.code if isinstance(err, CommandRejected) else "failed"
            response = {"ok": False, "error": {"code": code, "message": str(err)[:500]}}
        else:
            response = {"ok": True, "result": done.result()}
        self._record(rid, response)

    def _record(self, rid: str, response: dict[str, Any]) -> None:
        if self.requests is None:
            return
        try:
            self.requests.finish(rid, response)
        except RequestLogError as err:  # the started entry still prevents a second run
            log.warning("scan request %s: response not recorded: %s", rid, err)

    def _answer_seen(self, seen: SeenRequest) -> dict[str, Any]:
        response = seen.response
        if response is None:  # the service was killed while it ran
            response = self.resolve(seen)
            self._record(seen.request_id, response)
        return _stored(response)

    def resolve(self, seen: SeenRequest) -> dict[str, Any]:
        """The response of a request whose scan was interrupted by a restart: its result
        when it was committed (archive or outbox), else an error. Never a second scan."""
        result: dict[str, Any] | None = None
        try:
            result = self.archive.get(seen.scan_id).result
        except (ScanNotFoundError, ArchiveError):
            payload = self.courier.outbox.payload_by_key(seen.scan_id) if self.courier else None
            if payload is not None:
                try:
                    result = json.loads(payload)
                except ValueError:
                    result = None
        if isinstance(result, dict):
            out: dict[str, Any] = {"scan_id": seen.scan_id, "status": result.get("status")}
            if result.get("consignment"):
                out["consignment"] = result["consignment"]
            return {"ok": True, "result": out}
        return {
            "ok": False,
            "error": {
                "code": "failed",
                "message": (
                    f"interrupted by a restart before scan {seen.scan_id} was recorded here; "
                    "not run again (if it was committed, scan/result carries it)"
                ),
            },
        }

    def reconcile(self) -> int:
        """Settle the requests a kill interrupted (call before the courier starts, while the
        outbox still holds every committed, undelivered result); returns how many."""
        if self.requests is None:
            return 0
        try:
            unfinished = self.requests.unfinished()
        except RequestLogError as err:
            log.warning("request log unreadable: %s", err)
            return 0
        for seen in unfinished:
            self._record(seen.request_id, self.resolve(seen))
        if unfinished:
            log.info("settled %d scan request(s) interrupted by a restart", len(unfinished))
        return len(unfinished)

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

    def replay(self, args: ReplayArgs) -> dict[str, Any]:
        """Resend the archived results from_seq..to_seq, exactly as signed, flagged
        ``historical``, through the outbox; ``missing`` counts those no longer held. ``busy``
        when the outbox has no room for them (a resend never pushes out a waiting result)."""
        if self.courier is None:
            raise CommandRejected("failed", "replay needs the outbox")
        try:
            found = self.archive.results_by_seq(args.from_seq, args.to_seq)
        except ArchiveError as err:
            raise CommandRejected("failed", f"archive: {err}") from err
        topic = self.courier.link.topics.result
        resend: list[tuple[str, bytes, bool, str | None]] = []
        for seq in sorted(found):
            doc = dict(found[seq])
            doc["historical"] = True  # not covered by the signature
            alarm = doc.get("severity") == "alarm"
            resend.append((topic, canonical_json(doc), alarm, str(doc.get("scan_id") or "")))
        stats = self.courier.outbox.stats()
        if stats.waiting + len(resend) > stats.max_messages:  # never push out a waiting result
            raise CommandRejected(
                "busy",
                f"outbox has room for {max(0, stats.max_messages - stats.waiting)} of "
                f"{len(resend)} results; ask again later or for a shorter range",
            )
        try:
            sent = self.courier.outbox.submit_resend(resend)
        except OutboxError as err:
            raise CommandRejected("failed", f"outbox: {err}") from err
        self.courier.wake()
        self.replayed += sent
        span = args.to_seq - args.from_seq + 1
        log.info(
            "replay %d-%d: %d resent, %d missing", args.from_seq, args.to_seq, sent, span - sent
        )
        return {
            "from_seq": args.from_seq,
            "to_seq": args.to_seq,
            "sent": sent,
            "missing": span - sent,
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

"""Remote commands: ``<prefix>/cmd/<name>`` in, ``<prefix>/cmd/<name>/response`` out.

The control room sends a JSON object to ``<prefix>/cmd/<name>``; the device answers on the
MQTT 5 *response topic* of the request (or ``<prefix>/cmd/<name>/response``), echoing the
request's *correlation data* and its optional ``request_id``.

Commands: ``scan`` (remote trigger, with a consignment ``reference``), ``ack`` (acknowledge the
active alarm by ``scan_id``), ``background`` (take a new background), ``get_spectrum`` (a
stored scan's spectrum, from the archive) and ``ping``.

Hostile input never reaches a handler and never blocks the caller. :meth:`Dispatcher.submit`
is what the MQTT network thread calls; it does only cheap checks, in this order:

1. the topic must be exactly ``<our prefix>/cmd/<name>``: anything else is dropped
   (``foreign_topic``), never acted on;
2. a token bucket caps the request rate: excess requests are dropped (``rate_limited``)
   without an answer, so a flood cannot make us flood back;
3. size cap (``too_large``), JSON object (``malformed``), known name (``unknown_command``),
   arguments against a strict pydantic model (``invalid``): an error response;
4. the request goes on a bounded queue (full: ``busy`` error response) that one worker
   thread drains; handlers run there, never on the network thread.

Every outcome is counted (:attr:`Dispatcher.counters`), and ``health`` reports the counters.
A handler may return a dict (answered at once) or a :class:`concurrent.futures.Future`
(answered when it completes, e.g. a scan that waits its turn).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.errors import CommandError

log = logging.getLogger(__name__)

#: Largest request payload accepted, bytes.
MAX_PAYLOAD_BYTES = 4096
#: Longest response topic accepted from a request, characters.
MAX_RESPONSE_TOPIC = 256

ErrorCode = Literal[
    "too_large", "malformed", "unknown_command", "invalid", "busy", "failed", "bad_response_topic"
]

# -- request models ---------------------------------------------------------------------

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_REF = r"^[A-Za-z0-9][A-Za-z0-9 _./:-]{0,63}$"


class CommandArgs(BaseModel):
    """Base of every command's arguments: strict types, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    request_id: str | None = Field(
        None, max_length=128, description="Caller's id, echoed in the response."
    )


class ScanArgs(CommandArgs):
    """``scan``: take a scan now, as if the officer pressed the button."""

    reference: str | None = Field(
        None, pattern=_REF, description="Consignment or container reference, carried in result."
    )
    sample: str | None = Field(
        None,
        max_length=256,
        description="Simulator only: what is on the crystal, NAME[:FRACTION],...",
    )


class AckArgs(CommandArgs):
    """``ack``: acknowledge the active alarm raised by scan ``scan_id``."""

    scan_id: str = Field(pattern=_ID, description="Scan whose alarm is acknowledged.")
    operator: str | None = Field(None, max_length=64, description="Who acknowledged it.")


class BackgroundArgs(CommandArgs):
    """``background``: take a new background (crystal must be clean)."""


class GetSpectrumArgs(CommandArgs):
    """``get_spectrum``: a stored scan's spectrum, for reach-back by a chemist."""

    scan_id: str = Field(pattern=_ID, description="Scan to return.")
    raw: bool = Field(False, description="Also return raw sample/background/dark counts.")


class PingArgs(CommandArgs):
    """``ping``: liveness; answers with the device time and uptime."""


#: Every command and the model of its arguments.
COMMANDS: dict[str, type[CommandArgs]] = {
    "scan": ScanArgs,
    "ack": AckArgs,
    "background": BackgroundArgs,
    "get_spectrum": GetSpectrumArgs,
    "ping": PingArgs,
}

Handler = Callable[[Any], "dict[str, Any] | Future[dict[str, Any]]"]
#: ``respond(topic, payload, correlation_data)``: publish one response (QoS 1).
Responder = Callable[[str, bytes, bytes | None], None]


@dataclass(frozen=True)
class Request:
    """A command that passed every check and waits for its handler."""

    name: str
    args: CommandArgs
    response_topic: str
    correlation_data: bytes | None
    received: float


class CommandRejected(CommandError):
    """A request refused before its handler ran; ``code`` says why (an :data:`ErrorCode`)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code: ErrorCode = code
        super().__init__(message)


class TokenBucket:
    """Allows *rate* events per second on average, bursts up to *burst*. Thread-safe."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"bad token bucket: rate={rate} burst={burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take one token; False when the bucket is empty."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Dispatcher:
    """Checks, queues and runs remote commands for one device prefix.

    *handlers* maps command names to callables taking the validated arguments model. Only
    names in both :data:`COMMANDS` and *handlers* are served. *respond* publishes a response.
    """

    def __init__(
        self,
        prefix: str,
        handlers: Mapping[str, Handler],
        respond: Responder,
        *,
        device: str = "",
        max_payload: int = MAX_PAYLOAD_BYTES,
        rate: float = 10.0,
        burst: int = 20,
        queue_size: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        if not self.prefix or any(c in self.prefix for c in "+#"):
            raise ValueError(f"bad command prefix {prefix!r}")
        self._cmd_root = f"{self.prefix}/cmd/"
        unknown = set(handlers) - set(COMMANDS)
        if unknown:
            raise ValueError(f"handlers for unknown commands: {sorted(unknown)}")
        self.handlers = dict(handlers)
        self.device = device
        self.max_payload = max_payload
        self._respond = respond
        self._bucket = TokenBucket(rate, burst, clock)
        self._clock = clock
        self._queue: queue.Queue[Request | None] = queue.Queue(maxsize=queue_size)
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Outcome counters: received, ok, failed, and one per rejection reason.
        self.counters: Counter[str] = Counter()

    @property
    def subscription(self) -> str:
        """The topic filter to subscribe to: ``<prefix>/cmd/+``."""
        return f"{self._cmd_root}+"

    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    def snapshot(self) -> dict[str, int]:
        """The counters as a plain dict (for ``health``)."""
        with self._lock:
            return dict(self.counters)

    # -- the network-thread side -----------------------------------------------------

    def command_name(self, topic: str) -> str | None:
        """The command name if *topic* is exactly ``<prefix>/cmd/<name>``, else None."""
        if not topic.startswith(self._cmd_root):
            return None
        name = topic[len(self._cmd_root) :]
        if not name or "/" in name or "+" in name or "#" in name:
            return None
        return name

    def submit(
        self,
        topic: str,
        payload: bytes,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> str:
        """Check one incoming request and queue it; never blocks, never raises.

        Returns the outcome: ``queued``, or the reason it was dropped or refused.
        """
        try:
            return self._submit(topic, payload, response_topic, correlation_data)
        except Exception:  # a bug here must not kill the network thread
            log.exception("command dispatch failed on %s", topic)
            self._count("internal_error")
            return "internal_error"

    def _submit(
        self,
        topic: str,
        payload: bytes,
        response_topic: str | None,
        correlation_data: bytes | None,
    ) -> str:
        name = self.command_name(topic)
        if name is None:
            self._count("foreign_topic")
            log.warning("ignored command on foreign topic %r", topic[:200])
            return "foreign_topic"
        self._count("received")
        if not self._bucket.take():
            self._count("rate_limited")
            return "rate_limited"
        reply_to = f"{self._cmd_root}{name}/response"
        if response_topic:
            if not self._response_topic_ok(response_topic):
                self._count("bad_response_topic")
                log.warning("refused response topic %r", response_topic[:200])
                # answer on our own response topic rather than where we were told
                self._error(
                    reply_to,
                    name,
                    correlation_data,
                    "bad_response_topic",
                    "response topic not allowed",
                    None,
                )
                return "bad_response_topic"
            reply_to = response_topic
        if correlation_data is not None and len(correlation_data) > 256:
            correlation_data = None
        try:
            args = self.parse(name, payload)
        except CommandRejected as err:
            code = err.code
            self._count(code)
            self._error(reply_to, name, correlation_data, code, str(err), None)
            return code
        request = Request(name, args, reply_to, correlation_data, self._clock())
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self._count("busy")
            self._error(
                reply_to, name, correlation_data, "busy", "command queue full", args.request_id
            )
            return "busy"
        return "queued"

    def _response_topic_ok(self, topic: str) -> bool:
        if len(topic) > MAX_RESPONSE_TOPIC or any(c in topic for c in "+#\x00"):
            return False
        # never let a requester aim our answer at our own state topics (status, alarm, ...)
        own = self.prefix + "/"
        return not topic.startswith(own) or (
            topic.startswith(self._cmd_root) and topic.endswith("/response")
        )

    def parse(self, name: str, payload: bytes) -> CommandArgs:
        """Validate one request body for command *name*; raises :class:`CommandRejected`.

        The error carries ``code``: too_large, malformed, unknown_command or invalid.
        """
        if len(payload) > self.max_payload:
            raise _command_error(
                "too_large", f"payload of {len(payload)} bytes exceeds {self.max_payload}"
            )
        model = COMMANDS.get(name)
        if model is None or name not in self.handlers:
            raise _command_error("unknown_command", f"unknown command {name[:64]!r}")
        try:
            body = json.loads(payload.decode("utf-8")) if payload.strip() else {}
        except (UnicodeDecodeError, ValueError) as err:
            raise _command_error("malformed", f"not JSON: {err}") from err
        if not isinstance(body, dict):
            raise _command_error("malformed", "request must be a JSON object")
        try:
            return model.model_validate(body)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
                for e in err.errors()[:5]
            )
            raise _command_error("invalid", problems) from err

    # -- responses ---------------------------------------------------------------------

    def _send(self, topic: str, body: dict[str, Any], correlation: bytes | None) -> None:
        try:
            payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as err:
            log.error("response to %s not serialisable: %s", body.get("command"), err)
            self._count("response_error")
            return
        try:
            self._respond(topic, payload, correlation)
        except Exception as err:  # the link may be down; the request is not retried
            log.warning("could not send response on %s: %s", topic, err)
            self._count("response_error")

    def _envelope(self, name: str, request_id: str | None, ok: bool) -> dict[str, Any]:
        return {
            "command": name,
            "ok": ok,
            "request_id": request_id,
            "device": self.device,
            "time": _now_rfc3339(),
        }

    def _error(
        self,
        topic: str,
        name: str,
        correlation: bytes | None,
        code: str,
        message: str,
        request_id: str | None,
    ) -> None:
        body = self._envelope(name[:64], request_id, False)
        body["error"] = {"code": code, "message": message[:500]}
        self._send(topic, body, correlation)

    def _ok(self, req: Request, result: dict[str, Any]) -> None:
        body = self._envelope(req.name, req.args.request_id, True)
        body["result"] = result
        self._count("ok")
        self._send(req.response_topic, body, req.correlation_data)

    def _failed(self, req: Request, err: BaseException) -> None:
        log.warning("command %s failed: %s", req.name, err)
        self._count("failed")
        self._error(
            req.response_topic,
            req.name,
            req.correlation_data,
            "failed",
            str(err) or type(err).__name__,
            req.args.request_id,
        )

    # -- the worker side ---------------------------------------------------------------

    def execute(self, req: Request) -> None:
        """Run one request's handler and answer it (what the worker does per request)."""
        try:
            out = self.handlers[req.name](req.args)
        except Exception as err:
            self._failed(req, err)
            return
        if isinstance(out, Future):
            out.add_done_callback(lambda fut: self._finish(req, fut))
        else:
            self._ok(req, out)

    def _finish(self, req: Request, fut: Future[dict[str, Any]]) -> None:
        err = fut.exception() if not fut.cancelled() else CommandError("cancelled")
        if err is not None:
            self._failed(req, err)
        else:
            self._ok(req, fut.result())

    def _run(self) -> None:
        while True:
            req = self._queue.get()
            if req is None:
                return
            self.execute(req)

    def run_pending(self) -> int:
        """Run every queued request on the calling thread (tests without a worker)."""
        n = 0
        while True:
            try:
                req = self._queue.get_nowait()
            except queue.Empty:
                return n
            if req is not None:
                self.execute(req)
                n += 1

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="commands", daemon=True)
            self._worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker after the request in hand; bounded wait. Idempotent."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        while True:  # make room for the sentinel: queued requests are dropped
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
        worker.join(timeout)
        if worker.is_alive():
            log.warning("command worker did not stop within %.1f s", timeout)


def _command_error(code: ErrorCode, message: str) -> CommandRejected:
    return CommandRejected(code, message)

"""Remote commands: ``<prefix>/cmd/<name>`` in, ``<prefix>/cmd/<name>/response`` out.

The control room sends a JSON object to ``<prefix>/cmd/<name>``; the device answers on the
MQTT 5 *response topic* of the request (or ``<prefix>/cmd/<name>/response``), echoing the
request's *correlation data*. Requests and responses follow the contract in
``edge/publish/schemas/cmd-*.json`` (docs/mqtt.md).

Commands: ``scan`` (remote trigger, with a consignment ``reference``), ``ack`` (acknowledge the
active alarm by ``scan_id``), ``background`` (take a new background), ``get_spectrum`` (a
stored scan's spectrum, from the archive) and ``ping``.

Hostile input never reaches a handler and never blocks the caller. :meth:`Dispatcher.submit`
is what the MQTT network thread calls; it does only cheap checks, in this order:

1. the topic must be exactly ``<our prefix>/cmd/<name>``: anything else is dropped
   (``foreign_topic``), never acted on;
2. a token bucket caps the request rate: excess requests are dropped (``rate_limited``)
   without an answer, so a flood cannot make us flood back;
3. size cap (``too_large``), JSON object (``bad_json``), known name (``unknown_command``),
   body against the request's JSON Schema, then into a typed model (``bad_request``): an
   error response;
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
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.errors import CommandError
from edge.publish import messages

log = logging.getLogger(__name__)

#: Largest request payload accepted, bytes.
MAX_PAYLOAD_BYTES = 4096
#: Longest response topic accepted from a request, characters.
MAX_RESPONSE_TOPIC = 256
#: Longest correlation data echoed, bytes (longer is dropped, the response still sent).
MAX_CORRELATION_BYTES = 256

#: Error codes of the contract (``error.code`` in every ``cmd-*-response`` schema).
ErrorCode = Literal[
    "bad_json",
    "bad_request",
    "unknown_command",
    "too_large",
    "rate_limited",
    "busy",
    "not_found",
    "failed",
]

# -- request models ---------------------------------------------------------------------
# Each mirrors edge/publish/schemas/cmd-<name>-request.json, which is checked first; the
# models give the handlers typed, frozen arguments.

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class CommandArgs(BaseModel):
    """Base of every command's arguments: strict types, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ScanArgs(CommandArgs):
    """``scan``: take a scan now, as if the officer pressed the button."""

    consignment: str = Field(
        min_length=1, max_length=64, description="Consignment/container reference, in the result."
    )


class AckArgs(CommandArgs):
    """``ack``: acknowledge the active alarm (of scan ``scan_id`` when given)."""

    scan_id: str | None = Field(None, pattern=_ID, description="Scan whose alarm is acknowledged.")
    operator: str | None = Field(None, max_length=64, description="Who acknowledged it.")


class BackgroundArgs(CommandArgs):
    """``background``: take a new background (crystal must be clean)."""


class GetSpectrumArgs(CommandArgs):
    """``get_spectrum``: a stored scan's spectrum, for reach-back by a chemist."""

    scan_id: str = Field(pattern=_ID, description="Scan to return.")
    kind: Literal["raw", "processed"] = Field(
        "processed", description="processed: absorbance on the grid; raw: sample counts."
    )


class PingArgs(CommandArgs):
    """``ping``: liveness; answers with uptime and version, echoing ``nonce``."""

    nonce: str | None = Field(None, max_length=64, description="Echoed in the response.")


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


class Dispatcher:
    """Checks, queues and runs remote commands for one device prefix.

    *handlers* maps command names to callables taking the validated arguments model and
    returning the response's ``result`` (a dict, or a Future of one); a handler raises
    :class:`CommandRejected` (e.g. ``not_found``) or any exception (``failed``). Only names in
    both :data:`COMMANDS` and *handlers* are served. *respond* publishes one response.
    """

    def __init__(
        self,
        prefix: str,
        handlers: Mapping[str, Handler],
        respond: Responder,
        *,
        device: str,
        post: str,
        max_payload: int = MAX_PAYLOAD_BYTES,
        rate: float = 10.0,
        burst: int = 20,
        queue_size: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix.strip("/")
        if not self.prefix or any(c in self.prefix for c in "+#"):
            raise ValueError(f"bad command prefix {prefix!r}")
        self._cmd_root = f"{self.prefix}/cmd/"
        unknown = set(handlers) - set(COMMANDS)
        if unknown:
            raise ValueError(f"handlers for unknown commands: {sorted(unknown)}")
        self.handlers = dict(handlers)
        self.device = device
        self.post = post
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

    def _log_once(self, key: str, msg: str, *args: object) -> None:
        """Count *key*; warn on its first occurrence only (a flood must not flood the log)."""
        with self._lock:
            self.counters[key] += 1
            first = self.counters[key] == 1
        if first:
            log.warning(msg + " (further ones only counted, see health)", *args)
        else:
            log.debug(msg, *args)

    def snapshot(self) -> dict[str, int]:
        """The counters as a plain dict (for ``health`` and logs)."""
        with self._lock:
            return dict(self.counters)

    @property
    def dropped(self) -> int:
        """Requests dropped without an answer (foreign topic, rate limit)."""
        with self._lock:
            return self.counters["foreign_topic"] + self.counters["rate_limited"]

    # -- the network-thread side -----------------------------------------------------

    def command_name(self, topic: str) -> str | None:
        """The command name if *topic* is exactly ``<prefix>/cmd/<name>``, else None."""
        if not topic.startswith(self._cmd_root):
            return None
        name = topic[len(self._cmd_root) :]
        if not name or any(c in name for c in "/+#\x00"):
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
            log.exception("command dispatch failed on %s", topic[:200])
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
            self._log_once("foreign_topic", "ignored command on foreign topic %r", topic[:200])
            return "foreign_topic"
        self._count("received")
        if not self._bucket.take():
            self._log_once("rate_limited", "command flood: requests beyond the rate dropped")
            return "rate_limited"
        if correlation_data is not None and len(correlation_data) > MAX_CORRELATION_BYTES:
            correlation_data = None
        reply_to = f"{self._cmd_root}{name}/response"
        if response_topic:
            if not self._response_topic_ok(response_topic):
                # answer on our own response topic rather than where we were told
                self._log_once(
                    "bad_response_topic", "refused response topic %r", response_topic[:200]
                )
                self._error(
                    reply_to, name, correlation_data, "bad_request", "response topic not allowed"
                )
                return "bad_response_topic"
            reply_to = response_topic
        try:
            args = self.parse(name, payload)
        except CommandRejected as err:
            self._count(err.code)
            self._error(reply_to, name, correlation_data, err.code, str(err))
            return err.code
        try:
            self._queue.put_nowait(Request(name, args, reply_to, correlation_data, self._clock()))
        except queue.Full:
            self._count("busy")
            self._error(reply_to, name, correlation_data, "busy", "command queue full")
            return "busy"
        return "queued"

    def _response_topic_ok(self, topic: str) -> bool:
        if len(topic) > MAX_RESPONSE_TOPIC or any(c in topic for c in "+#\x00"):
            return False
        # never let a requester aim our answer at our own state topics (status, alarm, ...)
        # nor at any device's command topic (our answer would arrive there as a request)
        levels = topic.split("/")
        if "cmd" in levels[:-1] and levels[-1] != "response":
            return False
        if not topic.startswith(self.prefix + "/"):
            return True
        return topic.startswith(self._cmd_root) and topic.endswith("/response")

    def parse(self, name: str, payload: bytes) -> CommandArgs:
        """Validate one request body for command *name*; raises :class:`CommandRejected`.

        The error's ``code`` is too_large, bad_json, unknown_command or bad_request.
        """
        if len(payload) > self.max_payload:
            raise CommandRejected(
                "too_large", f"payload of {len(payload)} bytes exceeds {self.max_payload}"
            )
        model = COMMANDS.get(name)
        if model is None or name not in self.handlers:
            raise CommandRejected("unknown_command", f"unknown command {name[:64]!r}")
        try:
            body = json.loads(payload.decode("utf-8")) if payload.strip() else {}
        except (UnicodeDecodeError, ValueError) as err:
            raise CommandRejected("bad_json", f"not JSON: {err}") from err
        if not isinstance(body, dict):
            raise CommandRejected("bad_json", "request must be a JSON object")
        try:
            messages.validate(f"cmd-{name}-request", body)
        except jsonschema.ValidationError as err:
            where = "/".join(str(p) for p in err.absolute_path) or "(body)"
            raise CommandRejected("bad_request", f"{where}: {err.message}"[:300]) from err
        try:
            return model.model_validate(body)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
                for e in err.errors()[:5]
            )
            raise CommandRejected("bad_request", problems) from err

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
            log.warning("could not send response on %s: %s", topic[:200], err)
            self._count("response_error")

    def _error(
        self, topic: str, name: str, correlation: bytes | None, code: ErrorCode, message: str
    ) -> None:
        body = messages.response_payload(
            name[:64], self.device, self.post, error=(code, message[:500])
        )
        self._send(topic, body, correlation)

    def _ok(self, req: Request, result: dict[str, Any]) -> None:
        self._count("ok")
        body = messages.response_payload(req.name, self.device, self.post, result=result)
        self._send(req.response_topic, body, req.correlation_data)

    def _failed(self, req: Request, err: BaseException) -> None:
        code: ErrorCode = err.code if isinstance(err, CommandRejected) else "failed"
        log.warning("command %s failed (%s): %s", req.name, code, err)
        self._count(code)
        self._error(
            req.response_topic,
            req.name,
            req.correlation_data,
            code,
            str(err) or type(err).__name__,
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
        err = CommandRejected("failed", "cancelled") if fut.cancelled() else fut.exception()
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
        """Stop the worker after the request in hand; bounded wait. Idempotent.

        Requests still queued are dropped (the requester times out; commands are not durable).
        """
        worker, self._worker = self._worker, None
        if worker is None:
            return
        while True:
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
        worker.join(timeout)
        if worker.is_alive():
            log.warning("command worker did not stop within %.1f s", timeout)

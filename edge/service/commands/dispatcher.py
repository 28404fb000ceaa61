"""Checking, queueing and running remote commands: ``<prefix>/cmd/<name>`` in, responses out.

The control room sends a JSON object to ``<prefix>/cmd/<name>``; the device answers on
``<prefix>/cmd/<name>/response`` (the request topic + ``/response``, the one response topic
the post broker lets a device publish on), echoing the request's *correlation data*. The
contract is :mod:`edge.service.commands.contract`.

Hostile input never reaches a handler and never blocks the caller. :meth:`Dispatcher.submit`
is what the MQTT network thread calls; it does only cheap checks, in this order:

1. the topic must be exactly ``<our prefix>/cmd/<name>`` (:meth:`Topics.command_name`, the
   one topic parser): anything else is dropped (``foreign_topic``), never acted on;
2. rate limits: MQTT 5 gives no sender identity, so each *requester* (the MQTT 5 response
   topic it names, which a requester chooses and a flood cannot share with others) has its
   own token bucket, and one global bucket caps the sum. A request beyond either is dropped
   (``rate_limited``) without an answer, so a flood cannot make us flood back, and one
   flooding requester cannot use up another's budget;
3. a request naming a response topic other than ours is answered on ours, never where it
   asked, and counted (``response_topic_redirected``);
4. size cap (``too_large``), known name (``unknown_command``), JSON object no deeper than
   :data:`~edge.service.commands.contract.MAX_JSON_DEPTH` (``bad_json``), the body into its
   typed model (``bad_request``): an error response;
5. the request goes on a bounded queue (full: ``busy`` error response) that one worker
   thread drains; handlers run there, never on the network thread.

Every outcome is counted (:meth:`Dispatcher.snapshot`), and ``health`` reports the counters.
A handler may return a dict (answered at once) or a :class:`concurrent.futures.Future`
(answered when it completes, e.g. a scan that waits its turn).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from edge.lifecycle import Clock, Deadline, SystemClock, Worker
from edge.publish import messages
from edge.publish.client import CommandMessage
from edge.publish.topics import Topics
from edge.service.commands.contract import (
    MAX_CORRELATION_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_RESPONSE_TOPIC,
    CommandArgs,
    CommandRejected,
    ErrorCode,
    parse_request,
    served,
)

log = logging.getLogger(__name__)

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


class TokenBucket:
    """Allows *rate* events per second on average, bursts up to *burst*. Thread-safe."""

    def __init__(self, rate: float, burst: int, clock: Clock | None = None) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"bad token bucket: rate={rate} burst={burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock or SystemClock()
        self._tokens = float(burst)
        self._last = self._clock.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take one token; False when the bucket is empty."""
        with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


#: Requester key of a request without a response topic.
ANONYMOUS = "-"


class RequesterBuckets:
    """One :class:`TokenBucket` per requester key (at most *max_keys*, least recently used
    forgotten first) under one global bucket that caps them all. Thread-safe."""

    def __init__(
        self,
        rate: float,
        burst: int,
        global_rate: float,
        global_burst: int,
        *,
        max_keys: int = 64,
        clock: Clock | None = None,
    ) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._clock = clock or SystemClock()
        TokenBucket(rate, burst, self._clock)  # ValueError for bad numbers, now
        self._global = TokenBucket(global_rate, global_burst, self._clock)
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> bool:
        """One token from *key*'s bucket and one from the global bucket; False if either is
        empty (the requester's bucket is spent first, so a flooder cannot drain the global
        one beyond its own rate)."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = TokenBucket(self.rate, self.burst, self._clock)
                self._buckets[key] = bucket
                while len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
        return bucket.take() and self._global.take()


class Dispatcher:
    """Checks, queues and runs remote commands for one device prefix.

    *handlers* maps command names to callables taking the validated arguments model and
    returning the response's ``result`` (a dict, or a Future of one); a handler raises
    :class:`CommandRejected` (e.g. ``not_found``) or any exception (``failed``). Every name
    must be a command of the contract; only those names are served. *respond* publishes one
    response. *rate*/*burst* bound each requester, *global_rate*/*global_burst* all of them.
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
        rate: float = 5.0,
        burst: int = 10,
        global_rate: float = 20.0,
        global_burst: int = 40,
        queue_size: int = 16,
        clock: Clock | None = None,
    ) -> None:
        prefix = prefix.strip("/")
        if not prefix or any(c in prefix for c in "+#"):
            raise ValueError(f"bad command prefix {prefix!r}")
        self.topics = Topics(prefix)
        self.served = served(tuple(handlers))  # ValueError for a name outside the contract
        self.handlers = dict(handlers)
        self.device = device
        self.post = post
        self.max_payload = max_payload
        self._respond = respond
        self._clock = clock or SystemClock()
        self._buckets = RequesterBuckets(rate, burst, global_rate, global_burst, clock=self._clock)
        self._queue: queue.Queue[Request | None] = queue.Queue(maxsize=queue_size)
        self._worker = Worker("commands", self._run, wake=self._wake_worker)
        self._lock = threading.Lock()
        #: Outcome counters: received, ok, failed, and one per rejection reason.
        self.counters: Counter[str] = Counter()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    def count(self, key: str) -> None:
        """Count one *key* outcome decided by a handler (e.g. ``repeated_request``)."""
        self._count(key)

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

    # -- the network-thread side -----------------------------------------------------

    def on_message(self, message: CommandMessage) -> str:
        """The link's command handler: :meth:`submit` of one received message."""
        return self.submit(
            message.topic, message.payload, message.response_topic, message.correlation_data
        )

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
        name = self.topics.command_name(topic)
        if name is None:
            self._log_once("foreign_topic", "ignored command on foreign topic %r", topic[:200])
            return "foreign_topic"
        self._count("received")
        requester = (response_topic or ANONYMOUS)[:MAX_RESPONSE_TOPIC]
        if not self._buckets.take(requester):
            self._log_once("rate_limited", "command flood: requests beyond the rate dropped")
            return "rate_limited"
        if correlation_data is not None and len(correlation_data) > MAX_CORRELATION_BYTES:
            correlation_data = None
        # the one response topic: never where a request asks (another device's alarm...)
        reply_to = self.topics.cmd_response(name)
        if response_topic and response_topic != reply_to:
            self._log_once(
                "response_topic_redirected",
                "request named response topic %r; answered on %s instead",
                response_topic[:200],
                reply_to,
            )
        try:
            args = self.parse(name, payload)
        except CommandRejected as err:
            self._count(err.code)
            self._error(reply_to, name, correlation_data, err.code, str(err))
            return err.code
        request = Request(name, args, reply_to, correlation_data, self._clock.monotonic())
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self._count("busy")
            self._error(reply_to, name, correlation_data, "busy", "command queue full")
            return "busy"
        return "queued"

    def parse(self, name: str, payload: bytes) -> CommandArgs:
        """Validate one request body for command *name*; raises :class:`CommandRejected`.

        The error's ``code`` is too_large, unknown_command (also for a command of the
        contract this dispatcher does not serve), bad_json or bad_request.
        """
        if len(payload) <= self.max_payload and name not in self.handlers:
            raise CommandRejected("unknown_command", f"unknown command {name[:64]!r}")
        return parse_request(name, payload, self.max_payload)

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

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            req = self._queue.get()
            if req is None:
                return
            self.execute(req)

    def _wake_worker(self) -> None:
        """Put the stop sentinel on the queue, making room for it when it is full."""
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()

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
        self._worker.start()

    def stop(self, deadline: float | Deadline = 5.0) -> None:
        """Stop the worker after the request in hand, joined until *deadline*; idempotent.

        Requests still queued are dropped (the requester times out; commands are not durable).
        """
        self._worker.stop(deadline)

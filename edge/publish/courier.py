"""The courier: moves messages from the durable outbox to the broker, in order.

One sender thread reads waiting rows oldest first and hands up to the broker's Receive
Maximum of them to paho; a PUBACK (paho's ``on_publish``) marks a row delivered, and the
sender deletes acknowledged rows in batches. The mid of a message is known only when
``publish()`` returns, yet its PUBACK may already have arrived on the network thread: both
sides go through one lock and PUBACKs for mids not yet recorded are parked until they are.

``historical``: a result goes out with ``historical: false`` only when it was submitted by
this process during the current connection; everything else (submitted while offline, left
over from an earlier run, or resent after a reconnect) goes out with ``historical: true``.
Messages that paho itself had in flight when the link dropped are retransmitted by paho on
reconnect (MQTT DUP flag) with their original payload.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paho.mqtt.enums import MQTTErrorCode

from edge.config.schema import Config
from edge.errors import OutboxError
from edge.identify.result import Identification
from edge.lifecycle import Clock, Deadline, SystemClock, Worker, deadline_of
from edge.publish.client import MqttLink
from edge.publish.messages import is_alarm, new_scan_id, result_payload
from edge.publish.outbox import Outbox, OutboxRow, SubmitItem
from edge.publish.signing import DeviceKey, canonical_json

log = logging.getLogger(__name__)

#: Longest time the sender sleeps when idle; it also picks up rows other processes added.
IDLE_POLL_S = 0.5
#: Delivery marks are committed in batches: at this many, or after this long.
ACK_BATCH = 256
ACK_INTERVAL_S = 0.05
#: Rows the sender reads from the outbox per query.
READ_AHEAD = 256
#: Shortest time :meth:`Courier.stop` leaves the link to publish ``stopped``, s.
LINK_STOP_MIN_S = 0.5


@dataclass(frozen=True)
class Submitted:
    """What :meth:`Courier.submit_result` committed."""

    row_id: int
    scan_id: str
    seq: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class ResultItem:
    """One ``scan/result`` ready to commit: the outbox item, and the signed payload its
    ``build`` leaves in ``built["payload"]`` once the outbox allocated the ``seq``."""

    item: SubmitItem
    built: dict[str, Any]

    def submitted(self, row_id: int, seq: int) -> Submitted:
        """What was committed, once the outbox returned the row id and seq."""
        return Submitted(row_id, self.item.key or "", seq, self.built["payload"])


class Courier:
    """Outbox + link + sender thread. ``start()``/``stop()``; submit from any thread."""

    def __init__(
        self,
        cfg: Config,
        link: MqttLink,
        outbox: Outbox,
        key: DeviceKey,
        *,
        live_before_first_connect: bool = False,
        clock: Clock | None = None,
    ) -> None:
        """*live_before_first_connect*: results this courier commits before its first
        connection still go out as live (not historical) on that connection; one-shot
        commands use it, since they commit first and connect afterwards."""
        self.cfg = cfg
        self.link = link
        self.outbox = outbox
        self.key = key
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._sender = Worker("outbox-sender", self._run, wake=self._wake.set)
        self._started = False
        self._mid_to_row: dict[int, int] = {}
        self._inflight_rows: set[int] = set()
        self._early: dict[int, bool] = {}  # PUBACKs that beat the mid bookkeeping
        self._publishing = False
        self._timer: threading.Timer | None = None
        self._acked: list[int] = []
        self._cursor = 0  # highest row id handed to paho in this epoch
        self._ahead: deque[OutboxRow] = deque()  # rows read ahead, past the cursor
        self._epoch = -1
        self._fresh_after = 0  # rows with id > this were submitted during this connection
        self._live_early = live_before_first_connect
        self._start_id: int | None = None  # last row id when the courier started
        self.sent = 0
        self.delivered = 0
        self.rejected = 0
        link.add_publish_listener(self._on_puback)
        link.add_connect_listener(self._on_link_change)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the link and the sender thread (idempotent; not restartable)."""
        if self._started:
            return
        self._started = True
        if self._live_early:
            self._start_id = self.outbox.last_id()
        self.link.start()
        self._sender.start()

    def stop(self, deadline: float | Deadline = 5.0) -> None:
        """Stop the sender, commit pending delivery marks, stop the link (idempotent).

        Bounded by *deadline* (seconds or a :class:`Deadline` passed down), except that the
        link always gets :data:`LINK_STOP_MIN_S` to publish ``stopped``.
        """
        until = deadline_of(deadline, self.clock)
        self._sender.stop(until)
        self.link.stop(max(LINK_STOP_MIN_S, until.remaining()))
        self._commit_acks()

    def wake(self) -> None:
        """Make the sender look at the outbox now (after rows were committed elsewhere)."""
        self._wake.set()

    # -- submitting --------------------------------------------------------------------------

    def result_item(
        self,
        identification: Identification,
        *,
        scan_id: str | None = None,
        time: str | None = None,
        consignment: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ResultItem:
        """One signed ``scan/result`` as an outbox item (built and signed once its ``seq`` is
        allocated, inside :meth:`Outbox.submit_batch`)."""
        scan_id = scan_id or new_scan_id()
        built: dict[str, Any] = {}

        def build(seq: int) -> bytes:
            payload = result_payload(
                identification,
                device=self.cfg.device.id,
                post=self.cfg.device.post,
                seq=seq,
                scan_id=scan_id,
                time=time,
                consignment=consignment,
                extra=extra,
            )
            built["payload"], data = self.key.sign_canonical(payload)
            return data

        item = SubmitItem(self.link.topics.result, build, is_alarm(identification), scan_id)
        return ResultItem(item, built)

    def submit_result(
        self,
        identification: Identification,
        *,
        scan_id: str | None = None,
        time: str | None = None,
        consignment: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Submitted:
        """Build, sign and commit one ``scan/result`` (seq allocated atomically), then send.

        Returns once the result is durable (one fsync); safe to tell the officer it is kept.
        """
        result = self.result_item(
            identification, scan_id=scan_id, time=time, consignment=consignment, extra=extra
        )
        ((row_id, seq),) = self.outbox.submit_batch([result.item])
        self._wake.set()
        return result.submitted(row_id, seq)

    # -- waiting -----------------------------------------------------------------------------

    def wait_delivered(self, row_ids: set[int] | None = None, timeout: float = 10.0) -> bool:
        """Wait until *row_ids* (default: everything waiting) are acknowledged and removed."""
        deadline = Deadline(self.clock, timeout)
        while True:
            self._wake.set()
            waiting = len(self.outbox) if row_ids is None else self.outbox.count_of(row_ids)
            if waiting == 0:
                return True
            if deadline.expired():
                return False
            self.clock.sleep(min(0.02, deadline.remaining()))

    # -- network-thread callback -------------------------------------------------------------

    def _on_puback(self, mid: int, ok: bool) -> None:
        with self._lock:
            row = self._mid_to_row.pop(mid, None)
            if row is None:
                if self._publishing:  # possibly ours, racing the bookkeeping in _send
                    self._early[mid] = ok
                return  # otherwise a retained/response message of the link
            self._settle(row, ok)
            # wake the sender to refill once half the window is free (one refill per many
            # PUBACKs under load, at once when idle) or when a batch of marks is ready
            wake = (
                len(self._inflight_rows) <= self.link.window // 2 or len(self._acked) >= ACK_BATCH
            )
        if wake:
            self._wake.set()

    def _settle(self, row: int, ok: bool) -> None:
        """Record a PUBACK for *row* (lock held)."""
        self._inflight_rows.discard(row)
        if ok:
            self._acked.append(row)
        else:
            self.rejected += 1  # left in the outbox; retried after the next reconnect

    def _on_link_change(self, up: bool) -> None:
        if up:  # rows committed before this instant go out as historical
            try:
                if self._live_early and self._start_id is not None:
                    self._fresh_after, self._start_id = self._start_id, None
                else:
                    self._fresh_after = self.outbox.last_id()
            except OutboxError:
                log.exception("outbox unreadable at connect")
        self._wake.set()

    # -- sender thread -----------------------------------------------------------------------

    def _run(self, stopping: threading.Event) -> None:
        last_commit = self.clock.monotonic()
        failing: str | None = None  # the sender's current outbox failure, logged once
        while not stopping.is_set():
            self._wake.wait(IDLE_POLL_S)
            self._wake.clear()
            try:
                now = self.clock.monotonic()
                with self._lock:
                    n_acked = len(self._acked)
                if n_acked >= ACK_BATCH or (n_acked and now - last_commit >= ACK_INTERVAL_S):
                    if self._commit_acks(wait=False):
                        last_commit = now
                    else:
                        self._kick_later(0.005)
                elif n_acked:
                    self._kick_later(ACK_INTERVAL_S)
                if self.link.connected:
                    self._fill_window()
            except OutboxError as err:
                # a full disk fails every second until space returns: one traceback, then
                # a quiet retry (the service's health reports the disk meanwhile)
                if str(err) != failing:
                    log.exception("outbox failure in the sender; retrying every second")
                    failing = str(err)
                else:
                    log.debug("outbox failure in the sender persists: %s", err)
                stopping.wait(1.0)
            else:
                if failing is not None:
                    log.info("outbox sender recovered (was: %s)", failing)
                    failing = None

    def _kick_later(self, delay: float) -> None:
        """Make sure the sender wakes within *delay* s to commit parked delivery marks."""
        if self._timer is None or not self._timer.is_alive():
            self._timer = threading.Timer(delay, self._wake.set)
            self._timer.daemon = True
            self._timer.start()

    def _commit_acks(self, wait: bool = True) -> bool:
        """Commit parked delivery marks; with ``wait=False`` give up (keeping them) while a
        submission holds the database, so sending is never held up behind an fsync."""
        with self._lock:
            acked, self._acked = self._acked, []
        if not acked:
            return True
        try:
            removed = self.outbox.mark_delivered(acked, wait=wait)
        except BaseException:
            with self._lock:
                self._acked[:0] = acked
            raise
        if removed is None:
            with self._lock:
                self._acked[:0] = acked
            return False
        self.delivered += removed
        return True

    def _fill_window(self) -> None:
        epoch = self.link.epoch
        if epoch != self._epoch:
            self._epoch = epoch
            self._cursor = 0
            self._ahead.clear()
        stopping = self._sender.stopping
        while not stopping.is_set() and self.link.connected and self.link.epoch == epoch:
            with self._lock:
                room = self.link.window - len(self._inflight_rows)
                inflight = set(self._inflight_rows)
            if room <= 0:
                return
            if not self._ahead:
                # read ahead: one query per READ_AHEAD rows, not one per freed window slot
                after = self._cursor
                rows = self.outbox.pending(limit=READ_AHEAD, after_id=after)
                if not rows:
                    return
                self._ahead.extend(rows)
            batch: list[OutboxRow] = []
            while self._ahead and len(batch) < room:
                row = self._ahead.popleft()
                # rows paho still holds from before a reconnect are resent by paho itself
                if row.id not in inflight:
                    batch.append(row)
                else:
                    self._cursor = row.id
            if batch and not self._send(batch):
                return

    def _send(self, rows: list[OutboxRow]) -> bool:
        """Hand *rows* to paho in order; False when the link refused one (the rest wait)."""
        sent: list[tuple[OutboxRow, int]] = []
        # Never hold our lock while calling paho: paho runs on_publish under its own
        # message lock, so the opposite order here would deadlock. PUBACKs arriving before
        # the mids are recorded are parked in _early (see _on_puback).
        with self._lock:
            self._publishing = True
        ok_all = True
        try:
            for row in rows:
                payload = row.payload
                if row.id <= self._fresh_after:
                    payload = _as_historical(payload)
                info = self.link.publish(row.topic, payload, qos=row.qos)
                sent.append((row, info.mid))
                # NO_CONN: paho keeps the message queued and sends it after reconnecting;
                # its PUBACK still settles the row through the mapping below.
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    ok_all = False
                    break
        finally:
            settled = False
            with self._lock:  # one critical section: no PUBACK can fall between the two
                self._publishing = False
                early, self._early = self._early, {}
                for row, mid in sent:
                    self._cursor = row.id
                    self.sent += 1
                    ok = early.get(mid)
                    if ok is not None:
                        self._settle(row.id, ok)
                        settled = True
                    else:
                        self._mid_to_row[mid] = row.id
                        self._inflight_rows.add(row.id)
            if settled:
                self._wake.set()
        if not ok_all:
            self._ahead.clear()  # re-read from the cursor next time
        return ok_all


def _as_historical(payload: bytes) -> bytes:
    """Same message with ``historical: true`` (a member the signature does not cover)."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(doc, dict) or "historical" not in doc or doc["historical"] is True:
        return payload
    doc["historical"] = True
    return canonical_json(doc)

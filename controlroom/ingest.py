"""The ingester: every device message from the broker into the database, acknowledged only
after its commit.

One paho client (MQTT 5, persistent session, manual acknowledgements) per ingester:

* results through a **shared subscription** ``$share/<group>/<filter>/scan/result``, so
  several ingesters split them (failover; on two cores not speed, see docs/deploy.md);
* retained ``status``/``info``/``health``/``alarm`` and command responses through ordinary
  subscriptions: shared subscriptions never receive retained messages.

paho's network thread only queues messages. The writer thread takes them in batches, writes
a batch in one transaction (:class:`controlroom.archive.MessageWriter`), commits, and then
sends the PUBACKs in arrival order. A message whose commit failed is never acknowledged, so
the broker redelivers it; a database that is down is retried with capped backoff and nothing
is lost. A PUBACK is only sent on the connection the message arrived on (after a reconnect
the broker redelivers, and the duplicate is ignored by ``scan_id``).

:class:`controlroom.gaps.GapWatcher` runs beside it and asks devices to ``replay`` missing
``seq`` numbers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.exc import DBAPIError, OperationalError

from controlroom.archive import Incoming, MessageWriter, WriteReport
from controlroom.db import Database
from controlroom.errors import ControlRoomError
from controlroom.keys import KeyRegistry
from controlroom.topics import TopicFilter
from edge.publish.client import stop_loop

log = logging.getLogger(__name__)

#: Largest batch written in one transaction.
MAX_BATCH = 500
#: Messages the broker may have in flight to us (our MQTT 5 Receive Maximum).
RECEIVE_MAXIMUM = 2000
#: Session kept at the broker while the ingester is away (restarts, upgrades), seconds.
SESSION_EXPIRY_S = 7 * 24 * 3600
#: Longest wait between two database retries, seconds.
RETRY_MAX_S = 5.0
#: How often the key registry is reloaded from the database, seconds.
REGISTRY_RELOAD_S = 5.0


@dataclass(frozen=True)
class IngestSettings:
    """Where to connect and what to take."""

    host: str = "127.0.0.1"
    port: int = 1883
    filter: str = "customs/+/+"
    share_group: str = "spectra-console"
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    #: Take results (shared); False: only retained state and responses.
    results: bool = True


@dataclass(frozen=True)
class _Pending:
    mid: int
    qos: int
    epoch: int
    message: Incoming


class IngestStats:
    """Counters of one ingester (thread-safe enough: one writer increments them)."""

    def __init__(self) -> None:
        self.received = 0
        self.batches = 0
        self.results_new = 0
        self.results_duplicate = 0
        self.rejected = 0
        self.db_errors = 0
        self.acked = 0


class Ingester:
    """Broker -> database, acknowledged after commit. ``start()``, then ``stop()``."""

    def __init__(
        self,
        settings: IngestSettings,
        db: Database,
        registry: KeyRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.filter = TopicFilter(settings.filter)
        self.registry = registry or KeyRegistry()
        self.writer = MessageWriter(self.filter, self.registry)
        self.stats = IngestStats()
        self.client_id = settings.client_id or f"spectra-console-ingest-{uuid.uuid4().hex[:8]}"
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._stop = threading.Event()
        self._epoch = 0
        self._epoch_lock = threading.Lock()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._listeners: list[Callable[[WriteReport], None]] = []
        self._thread: threading.Thread | None = None
        self._registry_loaded = time.monotonic()
        self.client = self._make_client()

    # -- MQTT ---------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.reconnect_delay_set(1, 5)
        if self.settings.username:
            client.username_pw_set(self.settings.username, self.settings.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def subscriptions(self) -> list[str]:
        """Every topic filter this ingester subscribes to."""
        subs = list(self.filter.state)
        if self.settings.results:
            subs.insert(0, self.filter.shared_results(self.settings.share_group))
        return subs

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.error("ingester: broker refused the connection: %s", reason)
            return
        with self._epoch_lock:
            self._epoch += 1
        self.connected.set()
        opts = SubscribeOptions(qos=1)
        client.subscribe([(t, opts) for t in self.subscriptions()])
        log.info(
            "ingester %s connected (session present: %s)",
            self.client_id,
            getattr(flags, "session_present", "?"),
        )

    def _on_subscribe(self, *_args: Any) -> None:
        self.subscribed.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        corr = getattr(msg.properties, "CorrelationData", None) if msg.properties else None
        with self._epoch_lock:
            epoch = self._epoch
        self._queue.put(
            _Pending(
                msg.mid,
                msg.qos,
                epoch,
                Incoming(msg.topic, bytes(msg.payload), bool(msg.retain), corr),
            )
        )

    def start(self, *, wait_s: float = 10.0) -> None:
        """Connect and start the writer; raises if the broker is not reached in *wait_s*."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        try:
            self.client.connect_async(
                self.settings.host,
                self.settings.port,
                keepalive=30,
                clean_start=False,
                properties=props,
            )
        except (OSError, ValueError) as err:
            raise ControlRoomError(f"ingester: broker {self._where()}: {err}") from err
        with self.db.session() as s:
            self.registry.load(s)
        self._thread = threading.Thread(target=self._run, name="console-ingest", daemon=True)
        self._thread.start()
        self.client.loop_start()
        if wait_s and not (self.connected.wait(wait_s) and self.subscribed.wait(wait_s)):
            self.stop()
            raise ControlRoomError(f"ingester: broker {self._where()} not reached in {wait_s} s")

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def add_listener(self, callback: Callable[[WriteReport], None]) -> None:
        """Call *callback* with each committed batch's report (new result ids, alarms)."""
        self._listeners.append(callback)

    def stop(self, *, leave_group: bool = False, timeout_s: float = 10.0) -> None:
        """Write what is queued, then disconnect.

        *leave_group*: scale down for good: unsubscribe from the share group first, write and
        acknowledge what already arrived, then end the broker session (expiry 0), so no share
        of the results is left waiting in an orphaned session.
        """
        if leave_group and self.connected.is_set() and self.settings.results:
            self.client.unsubscribe(self.filter.shared_results(self.settings.share_group))
            time.sleep(0.2)
        deadline = time.monotonic() + timeout_s
        while not self._queue.empty() and time.monotonic() < deadline and self._thread:
            time.sleep(0.02)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()))
        props = None
        if leave_group:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        stop_loop(self.client)

    # -- the writer ---------------------------------------------------------------------

    def _take_batch(self) -> list[_Pending]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            batch = self._take_batch()
            if not batch:
                continue
            report = self._write_with_retry(batch)
            if report is None:  # stopping with the database down: the broker redelivers
                return
            self._ack(batch)
            for cb in self._listeners:
                try:
                    cb(report)
                except Exception:  # a listener's bug must not stop ingestion
                    log.exception("ingest listener failed")

    def _write_with_retry(self, batch: list[_Pending]) -> WriteReport | None:
        delay = 0.2
        while True:
            try:
                return self._write(batch)
            except (OperationalError, DBAPIError) as err:
                if not isinstance(err, OperationalError) and len(batch) > 1:
                    log.warning("ingester: batch failed (%s); writing one by one", err.orig)
                    return self._write_singly(batch)
                self.stats.db_errors += 1
                log.error("ingester: database unavailable (%s); retrying in %.1f s", err, delay)
                if self._stop.wait(delay):
                    return None
                delay = min(RETRY_MAX_S, delay * 2)

    def _write(self, batch: list[_Pending]) -> WriteReport:
        if time.monotonic() - self._registry_loaded > REGISTRY_RELOAD_S:
            with self.db.session() as s:  # an approved key may have been rejected since
                self.registry.load(s)
            self._registry_loaded = time.monotonic()
        with self.db.session() as s:
            report = self.writer.write(s, [p.message for p in batch])
        self.stats.batches += 1
        self.stats.received += len(batch)
        self.stats.results_new += report.results_new
        self.stats.results_duplicate += report.results_duplicate
        self.stats.rejected += report.rejected
        return report

    def _write_singly(self, batch: list[_Pending]) -> WriteReport:
        total = WriteReport()
        for p in batch:
            try:
                r = self._write([p])
            except DBAPIError as err:  # this message cannot be stored: keep it as rejected
                log.error("ingester: message on %s not storable: %s", p.message.topic, err.orig)
                with self.db.session() as s:
                    self.writer.reject(s, p.message, f"not storable: {err.orig}"[:300], total)
                continue
            total.results_new += r.results_new
            total.new_result_ids += r.new_result_ids
            total.new_alarm_ids += r.new_alarm_ids
            if r.max_result_id is not None:
                total.max_result_id = max(total.max_result_id or 0, r.max_result_id)
        return total

    def _ack(self, batch: list[_Pending]) -> None:
        with self._epoch_lock:
            epoch = self._epoch
        for p in batch:  # arrival order
            if p.qos > 0 and p.epoch == epoch:
                self.client.ack(p.mid, p.qos)
                self.stats.acked += 1

"""The courier's bookkeeping with a scripted link: PUBACK races, rejections, historical."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from helpers_mqtt import make_config, make_identification
from paho.mqtt.enums import MQTTErrorCode

from edge.publish import Courier, DeviceKey, Outbox
from edge.publish.topics import Topics


class ScriptedLink:
    """Stands in for MqttLink; ``ack`` decides what happens to each publish."""

    def __init__(self) -> None:
        self.topics = Topics("customs/post-1/dev-1")
        self.connected = False
        self.epoch = 0
        self.window = 10
        self.sent: list[tuple[int, dict[str, Any]]] = []
        self._pub: list[Callable[[int, bool], None]] = []
        self._conn: list[Callable[[bool], None]] = []
        self._mid = 0
        self.lock = threading.Lock()
        # "inline": PUBACK delivered inside publish() before it returns (the race);
        # "reject": PUBACK with a failure reason code; "hold": no PUBACK.
        self.ack = "inline"

    def add_publish_listener(self, cb: Callable[[int, bool], None]) -> None:
        self._pub.append(cb)

    def add_connect_listener(self, cb: Callable[[bool], None]) -> None:
        self._conn.append(cb)

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 5.0) -> None:
        pass

    def connect(self) -> None:
        self.epoch += 1
        for cb in self._conn:
            cb(True)
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False
        for cb in self._conn:
            cb(False)

    def puback(self, mid: int, ok: bool = True) -> None:
        for cb in self._pub:
            cb(mid, ok)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, **_: Any) -> Any:
        with self.lock:
            self._mid = self._mid % 65535 + 1
            mid = self._mid
            self.sent.append((mid, json.loads(payload)))
        if self.ack == "inline":
            self.puback(mid, True)
        elif self.ack == "reject":
            self.puback(mid, False)
        return SimpleNamespace(mid=mid, rc=MQTTErrorCode.MQTT_ERR_SUCCESS)


def _courier(tmp_path: Path) -> tuple[Courier, ScriptedLink]:
    cfg = make_config(tmp_path, 1)
    link = ScriptedLink()
    courier = Courier(
        cfg,
        link,
        Outbox(tmp_path / "o.db"),
        DeviceKey.generate(),  # type: ignore[arg-type]
    )
    return courier, link


def _until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_puback_before_publish_returns_is_not_lost(tmp_path: Path) -> None:
    courier, link = _courier(tmp_path)
    link.connect()
    courier.start()
    try:
        for i in range(50):
            courier.submit_result(make_identification(i))
        _until(lambda: len(courier.outbox) == 0)
    finally:
        courier.stop()
    assert len(link.sent) == 50
    assert courier.delivered == 50
    courier.outbox.close()


def test_foreign_puback_does_not_settle_a_later_row(tmp_path: Path) -> None:
    courier, link = _courier(tmp_path)
    link.ack = "hold"
    link.connect()
    courier.start()
    try:
        link.puback(1, True)  # e.g. the PUBACK of a retained 'status' with mid 1
        courier.submit_result(make_identification())
        _until(lambda: len(link.sent) == 1)
        assert link.sent[0][0] == 1  # the result got mid 1 too
        time.sleep(0.2)
        assert len(courier.outbox) == 1  # ...and was not taken as acknowledged
        link.puback(1, True)
        _until(lambda: len(courier.outbox) == 0)
    finally:
        courier.stop()
        courier.outbox.close()


def test_rejected_message_stays_and_is_resent_after_reconnect(tmp_path: Path) -> None:
    courier, link = _courier(tmp_path)
    link.ack = "reject"
    link.connect()
    courier.start()
    try:
        done = courier.submit_result(make_identification())
        _until(lambda: courier.rejected == 1)
        time.sleep(0.2)
        assert len(courier.outbox) == 1 and len(link.sent) == 1  # not resent in a loop
        link.ack = "inline"
        link.disconnect()
        link.connect()
        _until(lambda: len(courier.outbox) == 0)
    finally:
        courier.stop()
        courier.outbox.close()
    assert [p["scan_id"] for _, p in link.sent] == [done.scan_id, done.scan_id]
    assert [p["historical"] for _, p in link.sent] == [False, True]


def test_historical_flag_and_order(tmp_path: Path) -> None:
    courier, link = _courier(tmp_path)
    courier.start()
    try:
        early = [courier.submit_result(make_identification(i)) for i in range(3)]  # offline
        link.connect()
        _until(lambda: len(courier.outbox) == 0)
        live = courier.submit_result(make_identification(9))
        _until(lambda: len(courier.outbox) == 0)
    finally:
        courier.stop()
        courier.outbox.close()
    got = [(p["scan_id"], p["historical"], p["seq"]) for _, p in link.sent]
    assert got == [(e.scan_id, True, e.seq) for e in early] + [(live.scan_id, False, 4)]


def test_window_limits_messages_in_flight(tmp_path: Path) -> None:
    courier, link = _courier(tmp_path)
    link.ack = "hold"
    link.window = 7
    link.connect()
    courier.start()
    try:
        for i in range(20):
            courier.submit_result(make_identification(i))
        _until(lambda: len(link.sent) == 7)
        time.sleep(0.2)
        assert len(link.sent) == 7
        for mid, _ in list(link.sent):
            link.puback(mid)
        _until(lambda: len(link.sent) == 14)
        assert [p["seq"] for _, p in link.sent] == list(range(1, 15))
    finally:
        courier.stop()
        courier.outbox.close()


def test_one_shot_results_before_first_connect_stay_live(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, 1)
    outbox = Outbox(tmp_path / "o.db")
    key = DeviceKey.generate()
    old = Courier(cfg, ScriptedLink(), outbox, key)  # type: ignore[arg-type]
    left_over = old.submit_result(make_identification(0))  # from an earlier process
    link = ScriptedLink()
    courier = Courier(
        cfg,
        link,
        outbox,
        key,
        live_before_first_connect=True,  # type: ignore[arg-type]
    )
    courier.start()
    try:
        mine = courier.submit_result(make_identification(1))  # committed before connecting
        link.connect()
        _until(lambda: len(outbox) == 0)
    finally:
        courier.stop()
        outbox.close()
    got = [(p["scan_id"], p["historical"]) for _, p in link.sent]
    assert got == [(left_over.scan_id, True), (mine.scan_id, False)]


def test_a_persistent_outbox_failure_is_logged_once_then_recovery(
    tmp_path: Path, caplog: Any
) -> None:
    """A full disk fails the sender every second: one traceback, quiet retries, and a line
    when it recovers (the journal of a full device must not fill with repeats)."""
    import logging

    from edge.errors import OutboxError

    courier, link = _courier(tmp_path)
    real_pending = courier.outbox.pending
    failures = {"left": 3}

    def pending(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise OutboxError("database or disk is full")
        return real_pending(*args, **kwargs)

    courier.outbox.pending = pending  # type: ignore[method-assign]
    link.connect()
    caplog.set_level(logging.DEBUG, logger="edge.publish.courier")
    courier.start()
    try:
        courier.submit_result(make_identification())
        _until(lambda: len(courier.outbox) == 0)  # delivered once the failure is over
    finally:
        courier.stop()
        courier.outbox.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert sum("persists" in r.getMessage() for r in caplog.records) == 2
    assert any("recovered" in r.getMessage() for r in caplog.records)

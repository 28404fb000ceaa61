"""The service against a real mosquitto: scans, alarms, commands (hostile ones too), faults.

The instrument + identification stack is replaced by a small test engine (the scan package's
``ScanEngine`` seam) with a fake crystal the test, as the officer, places samples on;
everything else is real: MQTT link, outbox, archive, signing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_mqtt import (
    Requester,
    Subscriber,
    make_config,
    validate_message,
    wait_commands_ready,
)
from mosquitto_broker import Broker, BrokerFactory
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from service_fakes import FakeEngine

from edge.preprocess.grid import STANDARD_GRID
from edge.publish.signing import load_public_key, verify
from edge.service import Service
from hal.errors import InstrumentTimeoutError
from hal.panel import Panel

PREFIX = "customs/post-1/dev-1"


@pytest.fixture
def broker(mosquitto: Broker) -> Broker:
    return mosquitto


def make_panel() -> Panel:
    return Panel(
        scan_button=17,
        ready_led=5,
        busy_led=6,
        alarm_led=13,
        buzzer=19,
        long_press_s=0.3,
        pin_factory="mock",
    )


def press(panel: Panel, seconds: float) -> None:
    """Press the (mock) scan button for *seconds*."""
    pin = panel.factory.pin(17)
    pin.drive_low()
    time.sleep(seconds)
    pin.drive_high()


def start_service(
    tmp_path: Path, port: int, engine: FakeEngine, **cfg: Any
) -> tuple[Service, Panel]:
    config = make_config(
        tmp_path / "data", port, mqtt={"health_interval_s": cfg.pop("health", 60.0)}, **cfg
    )
    panel = make_panel()
    svc = Service(config, lambda: engine, panel=panel)
    svc.start()
    assert svc.link.wait_connected(10)
    wait_commands_ready(port)
    return svc, panel


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def watcher(broker: Broker) -> Iterator[Subscriber]:
    sub = Subscriber(broker.port, [f"{PREFIX}/#"])
    sub.wait_subscribed()
    yield sub
    sub.close()


@pytest.fixture
def requester(broker: Broker) -> Iterator[Requester]:
    r = Requester(broker.port)
    yield r
    r.close()


def results(sub: Subscriber, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    return [m.json() for m in sub.wait_count(f"{PREFIX}/scan/result", n, timeout)]


def retained_json(
    sub: Subscriber, kind: str, predicate: Any, timeout: float = 10.0, after: int = 0
) -> Any:
    """The last message on <prefix>/<kind> matching *predicate*, among messages[after:]."""
    topic = f"{PREFIX}/{kind}"
    msgs = sub.wait_for(
        lambda ms: any(m.topic == topic and predicate(m.json()) for m in ms[after:]), timeout
    )
    return [m.json() for m in msgs[after:] if m.topic == topic and predicate(m.json())][-1]


def test_button_press_scan_reaches_the_broker_signed_and_archived(
    tmp_path: Path, broker: Broker, watcher: Subscriber, requester: Requester
) -> None:
    engine = FakeEngine()
    svc, panel = start_service(tmp_path, broker.port, engine)
    try:
        assert panel.ready_led.is_lit and not panel.busy_led.is_lit
        press(panel, 0.02)  # short press on the mock button: a scan
        (res,) = results(watcher, 1)
        validate_message(f"{PREFIX}/scan/result", res)
        info = retained_json(watcher, "info", lambda b: True)
        validate_message(f"{PREFIX}/info", info)
        assert info["instrument"]["serial"] == "T-1"
        key = load_public_key(info["public_key"]["value"])
        assert verify(res, key)
        tampered = dict(res, confidence=0.01)
        assert not verify(tampered, key)
        assert res["historical"] is False and res["seq"] == 1
        assert wait_until(lambda: panel.state == "info")  # green, one beep
        assert panel.ready_led.is_lit and not panel.alarm_led.is_lit
        assert engine.scans == [None] and engine.backgrounds == 0

        press(panel, 0.6)  # long press: a new background, no scan
        assert wait_until(lambda: engine.backgrounds == 1)
        time.sleep(0.2)
        assert engine.scans == [None]

        # the spectrum is archived and comes back through get_spectrum
        requester.send("get_spectrum", {"scan_id": res["scan_id"]}, b"gs-1")
        body = requester.response(b"gs-1")
        assert body["ok"] and body["result"]["kind"] == "processed"
        rec = svc.archive.get(res["scan_id"]).data
        np.testing.assert_allclose(body["result"]["y"], rec.spectrum, rtol=1e-6)
        assert len(body["result"]["x"]) == STANDARD_GRID.size
        requester.send("get_spectrum", {"scan_id": res["scan_id"], "kind": "raw"}, b"gs-2")
        raw = requester.response(b"gs-2")["result"]
        np.testing.assert_allclose(raw["y"], rec.sample, rtol=1e-6)
        requester.send("get_spectrum", {"scan_id": "no-such-scan"}, b"gs-3")
        assert requester.response(b"gs-3")["error"]["code"] == "not_found"
    finally:
        svc.stop()
        panel.close()
    status = retained_json(watcher, "status", lambda b: b["state"] == "stopped")
    validate_message(f"{PREFIX}/status", status)


def test_responses_go_only_to_the_request_topic_response_never_where_asked(
    tmp_path: Path, broker: Broker, requester: Requester
) -> None:
    other = "customs/post-1/dev-2"
    spy = Subscriber(broker.port, [f"{other}/#", f"{PREFIX}/alarm", requester.reply_topic])
    spy.wait_subscribed()
    svc, panel = start_service(tmp_path, broker.port, FakeEngine())
    try:
        before = svc.dispatcher.snapshot().get("response_topic_redirected", 0)
        requester.send("ping", {"nonce": "n-42"}, b"\x00\xffping")
        body = requester.response(b"\x00\xffping")
        assert body["ok"] is True and body["result"]["nonce"] == "n-42"
        got = requester.sub.on(f"{PREFIX}/cmd/ping/response")
        assert got and getattr(got[-1].properties, "CorrelationData", None) == b"\x00\xffping"
        # aimed at another device's alarm and at our own: answered on ours, nowhere else
        for i, aim in enumerate([f"{other}/alarm", f"{other}/scan/result", f"{PREFIX}/alarm"]):
            corr = f"aim-{i}".encode()
            requester.client.publish(
                f"{PREFIX}/cmd/ack", b"{}", qos=1, properties=_response_to(aim, corr)
            )
            assert requester.response(corr)["ok"] is True
        requester.send("ping", {}, b"default-topic", reply=False)
        requester.response(b"default-topic")
        time.sleep(0.3)  # a stray publish would have arrived by now
        assert spy.on(requester.reply_topic) == []
        assert [m for m in spy.messages if m.topic.startswith(other)] == []
        assert [m.json()["active"] for m in spy.on(f"{PREFIX}/alarm")] == [False]  # retained
        after = svc.dispatcher.snapshot()["response_topic_redirected"]
        assert after - before == 4  # the reply topic of the first ping, and the three aims
    finally:
        svc.stop()
        panel.close()
        spy.close()


def _response_to(topic: str, corr: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = topic
    props.CorrelationData = corr
    return props


def test_remote_scan_with_consignment_and_ack_clears_the_alarm(
    tmp_path: Path, broker: Broker, watcher: Subscriber, requester: Requester
) -> None:
    engine = FakeEngine()
    svc, panel = start_service(tmp_path, broker.port, engine)
    try:
        requester.send("scan", {"consignment": "MSKU 1234567"}, b"scan-1")
        body = requester.response(b"scan-1")
        assert body["ok"] and body["result"]["consignment"] == "MSKU 1234567"
        (res,) = results(watcher, 1)
        assert res["consignment"] == "MSKU 1234567" and res["scan_id"] == body["result"]["scan_id"]

        engine.samples.place("cocaine")
        fut = svc.worker.submit("scan", source="test")
        alarm_scan = fut.result(timeout=10).scan_id
        alarm = retained_json(watcher, "alarm", lambda b: b["active"])
        validate_message(f"{PREFIX}/alarm", alarm)
        assert alarm["scan_id"] == alarm_scan
        assert alarm["substance"]["name"] == "cocaine hydrochloride"
        assert panel.state == "alarm" and panel.alarm_led.is_lit  # red light, beeps
        # a benign scan meanwhile leaves the unacknowledged alarm's red light on
        engine.samples.place("lactose")
        assert svc.worker.submit("scan", source="test").result(10).severity == "info"
        assert panel.alarm_led.is_lit and panel.ready_led.is_lit

        requester.send("ack", {"scan_id": "some-other-scan"}, b"ack-0")
        assert requester.response(b"ack-0")["result"] == {"cleared": False, "scan_id": None}
        assert svc.alarm.active is not None

        requester.send("ack", {"scan_id": alarm_scan, "operator": "officer 7"}, b"ack-1")
        assert requester.response(b"ack-1")["result"] == {"cleared": True, "scan_id": alarm_scan}
        cleared = retained_json(
            watcher, "alarm", lambda b: not b["active"] and b["acknowledged_by"]
        )
        validate_message(f"{PREFIX}/alarm", cleared)
        assert cleared["acknowledged_by"] == "officer 7"
        assert not panel.alarm_led.is_lit and panel.ready_led.is_lit
    finally:
        svc.stop()
        panel.close()
    # a late subscriber sees the cleared alarm (retained)
    late = Subscriber(broker.port, [f"{PREFIX}/alarm"])
    try:
        msgs = late.wait_count(f"{PREFIX}/alarm", 1)
        assert msgs[-1].retain and msgs[-1].json()["active"] is False
    finally:
        late.close()


def test_unacknowledged_alarm_survives_a_restart(tmp_path: Path, broker: Broker) -> None:
    engine = FakeEngine()
    engine.samples.place("cocaine")
    svc, panel = start_service(tmp_path, broker.port, engine)
    try:
        scan_id = svc.worker.submit("scan", source="t").result(10).scan_id
    finally:
        svc.stop()
        panel.close()
    svc2, panel2 = start_service(tmp_path, broker.port, FakeEngine())
    try:
        assert svc2.alarm.active is not None and svc2.alarm.active.scan_id == scan_id
        assert panel2.alarm_led.is_lit
    finally:
        svc2.stop()
        panel2.close()


def test_hostile_commands_are_answered_or_counted_and_scanning_goes_on(
    tmp_path: Path, broker: Broker, watcher: Subscriber, requester: Requester
) -> None:
    engine = FakeEngine()
    svc, panel = start_service(tmp_path, broker.port, engine)
    before = svc.dispatcher.snapshot()
    try:
        cases = [
            ("ping", b"{oops", "bad_json"),
            ("ack", b'{"scan_id": 7}', "bad_request"),
            ("scan", b'{"consignment": ""}', "bad_request"),
            ("selfdestruct", b"{}", "unknown_command"),
            ("ping", b'{"nonce": "' + b"x" * 5000 + b'"}', "too_large"),
            ("background", b"\x00" * 1_000_000, "too_large"),
        ]
        for i, (name, payload, _) in enumerate(cases):
            requester.send(name, payload, f"h-{i}".encode())
        for i, (_, _, code) in enumerate(cases):
            body = requester.response(f"h-{i}".encode())
            assert body["ok"] is False and body["error"]["code"] == code, body

        # a command on another device's topic is never acted on
        requester.send(
            "scan", {"consignment": "X"}, b"other", topic="customs/post-1/dev-2/cmd/scan"
        )
        # a flood: far more than the bucket allows
        for i in range(300):
            requester.send("ping", {}, f"f-{i}".encode())
        press(panel, 0.02)  # scanning still works during and after all that
        (res,) = results(watcher, 1, timeout=15)
        assert res["status"] == "identified"
        deadline = time.monotonic() + 10
        while (
            svc.dispatcher.snapshot()["received"] - before["received"] < 306
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        counts = svc.dispatcher.snapshot()
        # 6 hostile + 300 flood; the other device's: none (readiness pings came before)
        assert counts["received"] - before["received"] == 306
        assert counts["rate_limited"] >= 250
        assert counts["ok"] - before["ok"] <= 25  # the burst plus refill, no more
        assert engine.scans == [None]  # the other device's scan did not run here
        svc.publisher.publish_health()
        health = retained_json(
            watcher, "health", lambda b: b.get("commands", {}).get("rate_limited")
        )
        validate_message(f"{PREFIX}/health", health)
        assert health["commands"]["bad_json"] == 1 and health["commands"]["too_large"] == 2
        time.sleep(0.3)
        assert not any(
            getattr(m.properties, "CorrelationData", None) == b"other"
            for m in requester.sub.messages
        )
    finally:
        svc.stop()
        panel.close()


def test_instrument_fault_shows_maintenance_and_recovers(
    tmp_path: Path, broker: Broker, watcher: Subscriber
) -> None:
    engine = FakeEngine(fail=[InstrumentTimeoutError("data-ready never came")])
    svc, panel = start_service(tmp_path, broker.port, engine)
    try:
        fut = svc.worker.submit("scan", source="test")
        with pytest.raises(InstrumentTimeoutError):
            fut.result(10)
        assert panel.state == "error" and not panel.ready_led.is_lit  # the error light
        status = retained_json(watcher, "status", lambda b: b["state"] == "maintenance")
        validate_message(f"{PREFIX}/status", status)
        seen = len(watcher.messages)
        # the housekeeping thread reopens the instrument (backoff starts at 1 s)
        back = retained_json(
            watcher, "status", lambda b: b["state"] == "online", timeout=15, after=seen
        )
        assert back["state"] == "online"
        assert wait_until(lambda: panel.state == "ready" and panel.ready_led.is_lit)
        assert svc.worker.submit("scan", source="test").result(10).status == "identified"
        svc.publisher.publish_health()
        health = retained_json(watcher, "health", lambda b: b["last_error"])
        assert "InstrumentTimeoutError" in health["last_error"]
        assert svc.supervisor.faults == 1
        assert engine.backgrounds == 0  # reopening acquired nothing behind the officer's back
    finally:
        svc.stop()
        panel.close()


def test_instrument_absent_at_start_does_not_kill_the_service(
    tmp_path: Path, broker: Broker, requester: Requester
) -> None:
    def no_instrument() -> FakeEngine:
        raise InstrumentTimeoutError("no answer on spidev0.0")

    config = make_config(tmp_path / "data", broker.port)
    svc = Service(config, no_instrument)
    svc.start()
    try:
        assert svc.link.wait_connected(10)
        wait_commands_ready(broker.port)
        requester.send("ping", {}, b"alive")
        assert requester.response(b"alive")["ok"] is True
        requester.send("scan", {"consignment": "C-1"}, b"scan-x")
        err = requester.response(b"scan-x")
        assert err["ok"] is False and err["error"]["code"] == "failed"
        assert "instrument unavailable" in err["error"]["message"]
    finally:
        svc.stop()


def test_stop_is_bounded_and_idempotent(tmp_path: Path, broker: Broker) -> None:
    svc, panel = start_service(tmp_path, broker.port, FakeEngine())
    t0 = time.monotonic()
    svc.stop(5)
    svc.stop()
    panel.close()
    assert time.monotonic() - t0 < 6
    assert not [t for t in threading.enumerate() if t.name in ("scan-worker", "housekeeping")]


def test_health_is_published_periodically_and_validates(
    tmp_path: Path, broker: Broker, watcher: Subscriber
) -> None:
    svc, panel = start_service(tmp_path, broker.port, FakeEngine(), health=0.2)
    try:
        msgs = watcher.wait_count(f"{PREFIX}/health", 4, timeout=10)
    finally:
        svc.stop()
        panel.close()
    bodies = [m.json() for m in msgs]
    for b in bodies:
        validate_message(f"{PREFIX}/health", b)
    last = bodies[-1]
    assert last["instrument_temperature_c"] == 31.5 and last["background_age_s"] == 12.0
    assert last["disk_free_bytes"] > 0 and last["outbox"]["waiting"] == 0
    assert last["commands"]["ok"] >= 1  # the readiness ping
    assert bodies[-1]["uptime_s"] > bodies[0]["uptime_s"]


def test_scans_while_the_broker_is_down_arrive_later_flagged_historical(
    tmp_path: Path, mosquitto_factory: BrokerFactory
) -> None:
    broker = mosquitto_factory(persistence=True)
    room = Subscriber(broker.port, [f"{PREFIX}/scan/result"], persistent=True, client_id="room")
    room.wait_subscribed()
    svc, panel = start_service(tmp_path, broker.port, FakeEngine())
    try:
        broker.stop()  # clean stop: the room's persistent session is saved
        assert wait_until(lambda: not svc.link.connected)
        ids = [svc.worker.submit("scan", source="t").result(10).scan_id for _ in range(3)]
        assert svc.outbox.stats().waiting == 3  # committed, waiting for the broker
        broker.start()
        msgs = room.wait_count(f"{PREFIX}/scan/result", 3, timeout=20)
        got = [m.json() for m in msgs]
        assert [r["scan_id"] for r in got] == ids  # all, in order
        assert all(r["historical"] is True for r in got)
        for r in got:
            validate_message(f"{PREFIX}/scan/result", r)
        assert wait_until(lambda: svc.outbox.stats().waiting == 0, timeout=10)
    finally:
        svc.stop()
        panel.close()
        room.close()


def test_a_failing_scan_is_logged_and_the_next_one_works(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine(fail=[KeyError("'unobtainium' is not in the library")])
    svc, panel = start_service(tmp_path, broker.port, engine)
    try:
        with pytest.raises(KeyError):
            svc.worker.submit("scan", source="test").result(10)
        assert svc.errors.message is not None and "unobtainium" in svc.errors.message
        assert "scan (test) failed" in caplog.text
        assert svc.supervisor.faults == 0  # not an instrument fault: no maintenance, no retry
        assert panel.ready_led.is_lit and not panel.busy_led.is_lit
        assert svc.worker.submit("scan", source="test").result(10).status == "identified"
    finally:
        svc.stop()
        panel.close()


def test_archive_keeps_the_signed_result_as_published(
    tmp_path: Path, broker: Broker, watcher: Subscriber
) -> None:
    svc, panel = start_service(tmp_path, broker.port, FakeEngine())
    try:
        scan_id = svc.worker.submit("scan", source="t", consignment="C-9").result(10).scan_id
        (res,) = results(watcher, 1)
        stored = svc.archive.get(scan_id)
        assert stored.result == res  # same bytes of meaning, signature included
        assert stored.reference == "C-9" and stored.status == "identified"
    finally:
        svc.stop()
        panel.close()


def test_a_hung_scan_cannot_hold_the_stop_past_its_deadline(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    from edge.service import stop_budget_s

    release = threading.Event()
    engine = FakeEngine()
    original = engine.scan

    def hung(reference: str | None = None) -> Any:
        release.wait(60)  # a front end that never answers, with no timeout of its own
        return original(reference)

    engine.scan = hung  # type: ignore[method-assign]
    svc, panel = start_service(tmp_path, broker.port, engine)
    try:
        svc.worker.submit("scan", source="test")
        assert wait_until(lambda: not svc.worker.idle and svc.worker._jobs.empty())
        t0 = time.monotonic()
        svc.stop(1.0)  # one deadline for every join
        took = time.monotonic() - t0
        assert took < stop_budget_s(1.0) + 0.5, took
        assert "scan-worker did not stop" in caplog.text  # abandoned, not waited for
    finally:
        release.set()
        panel.close()

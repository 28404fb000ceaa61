"""Signed state against a real mosquitto: the service signs ``status``, ``info``, ``health``
and ``alarm`` with its device key, and a forged or tampered one does not verify.

Everything is real but the instrument (the scan package's ``ScanEngine`` seam, as in
test_service.py): MQTT link, signing, the retained messages as a subscriber receives them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from helpers_mqtt import (
    Requester,
    Subscriber,
    make_config,
    validate_message,
    wait_commands_ready,
)
from mosquitto_broker import Broker
from paho.mqtt.enums import CallbackAPIVersion
from service_fakes import FakeEngine

from edge.publish import messages
from edge.publish.signing import DeviceKey, verify
from edge.service import Service

PREFIX = "customs/post-1/dev-1"
STATE = ("status", "info", "health", "alarm")


def _publish(port: int, topic: str, body: dict[str, Any], *, retain: bool = True) -> None:
    """Publish *body* as any client on the broker could (no ACL in this test)."""
    forger = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    forger.connect("127.0.0.1", port)
    forger.loop_start()
    try:
        forger.publish(topic, json.dumps(body), qos=1, retain=retain).wait_for_publish(5)
    finally:
        forger.disconnect()
        forger.loop_stop()


def test_every_state_message_is_signed_and_forgeries_do_not_verify(
    tmp_path: Path, mosquitto: Broker
) -> None:
    watcher = Subscriber(mosquitto.port, [f"{PREFIX}/{k}" for k in STATE])
    watcher.wait_subscribed()
    engine = FakeEngine()
    svc = Service(make_config(tmp_path / "data", mosquitto.port), lambda: engine)
    svc.start()
    try:
        assert svc.link.wait_connected(10)
        wait_commands_ready(mosquitto.port)
        engine.samples.place("cocaine")
        alarm_scan = svc.worker.submit("scan", source="test").result(timeout=10).scan_id
        watcher.wait_for(
            lambda ms: any(
                m.topic.endswith("/alarm") and m.json().get("scan_id") == alarm_scan for m in ms
            )
        )
        svc.publisher.publish_health()
        # command responses are signed too: a good one and an error
        req = Requester(mosquitto.port, PREFIX)
        try:
            req.send("ping", {}, corr=b"p")
            req.send("ack", {"scan_id": "no-such-scan", "operator": "x"}, corr=b"a")
            answers = [req.response(b"p"), req.response(b"a")]
        finally:
            req.close()
    finally:
        svc.stop()
    assert answers[0]["ok"] is True and answers[1]["command"] == "ack"
    for a in answers:
        assert a["signature"]["key_id"] == svc.key.key_id and verify(a, svc.key.public)
        forged = dict(a, ok=not a["ok"])
        assert not verify(forged, svc.key.public)
    msgs = watcher.wait_for(
        lambda ms: any(m.topic.endswith("/status") and m.json()["state"] == "stopped" for m in ms)
    )
    watcher.close()
    public = svc.key.public
    kinds = {m.topic.rsplit("/", 1)[1] for m in msgs}
    assert kinds == set(STATE)
    for m in msgs:
        body = m.json()
        validate_message(m.topic, body)
        assert body["signature"]["key_id"] == svc.key.key_id
        assert verify(body, public), m.topic
    states = [m.json()["state"] for m in msgs if m.topic.endswith("/status")]
    assert states[0] == "online" and states[-1] == "stopped"
    genuine = next(m.json() for m in msgs if m.topic.endswith("/alarm") and m.json()["active"])

    # forgeries as any client on the broker could publish them: none verifies
    unsigned = {k: v for k, v in genuine.items() if k != "signature"}
    other_key = DeviceKey.generate().sign(unsigned)
    tampered = dict(genuine, substance=dict(genuine["substance"], name="lactose"))
    cleared = messages.alarm_payload("dev-1", "post-1", active=False, scan_id=alarm_scan)
    cleared_claiming_key = dict(cleared, signature=genuine["signature"])  # a copied signature
    forged_offline = messages.status_payload("offline", "dev-1", "post-1")
    late = Subscriber(mosquitto.port, [f"{PREFIX}/alarm", f"{PREFIX}/status"])
    late.wait_subscribed()
    try:
        for body in (unsigned, other_key, tampered, cleared_claiming_key):
            _publish(mosquitto.port, f"{PREFIX}/alarm", body)
        _publish(mosquitto.port, f"{PREFIX}/status", forged_offline)
        got = late.wait_for(lambda ms: sum(not m.retain for m in ms) >= 5)
    finally:
        late.close()
    forged = [m.json() for m in got if not m.retain]
    assert [f.get("substance", {}) and f["substance"]["name"] for f in forged[:3]] == [
        "cocaine hydrochloride",
        "cocaine hydrochloride",
        "lactose",
    ]
    for body in forged:
        messages.validate("alarm" if "active" in body else "status", body)  # well-formed...
        assert not verify(body, public)  # ...but not the device's


def test_monitor_pins_the_device_key_and_a_forged_info_moves_no_trust(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """Issue 8 item 8: with a forged retained ``info`` announcing another key, forged results
    show INVALID, the genuine device's results stay valid, and the key change is shown."""
    from rich.console import Console

    from controlroom.monitor import MonitorState, connect_monitor
    from controlroom.pins import KeyPins

    keys_file = tmp_path / "monitor-keys.json"
    engine = FakeEngine()
    svc = Service(make_config(tmp_path / "data", mosquitto.port), lambda: engine)
    svc.start()
    forger = DeviceKey.generate()
    try:
        assert svc.link.wait_connected(10)
        wait_commands_ready(mosquitto.port)
        # first monitor run: pins the genuine key from the retained info (trust on first use)
        first = MonitorState("customs/+/+", KeyPins(keys_file))
        client = connect_monitor(first, "127.0.0.1", mosquitto.port)
        try:
            _wait(lambda: KeyPins(keys_file).get(PREFIX) is not None)
        finally:
            client.disconnect()
            client.loop_stop()
        # a forger replaces the retained info with its own, well-signed, key
        forged_info = forger.sign(dict(svc.publisher.info(), public_key=_pub(forger)))
        _publish(mosquitto.port, f"{PREFIX}/info", forged_info)
        st = MonitorState("customs/+/+", KeyPins(keys_file))
        client = connect_monitor(st, "127.0.0.1", mosquitto.port)
        try:
            _wait(lambda: PREFIX in st.snapshot() and st.snapshot()[PREFIX].key_changed_to)
            # a forged result, signed by the key the forged info announces
            engine.samples.place("lactose")
            genuine_benign = svc.worker.submit("scan", source="test").result(timeout=10)
            forged = forger.sign(
                dict(
                    svc.archive.get(genuine_benign.scan_id).result,  # a real result's shape
                    scan_id="00000000-0000-4000-8000-000000000001",
                )
            )
            _publish(mosquitto.port, f"{PREFIX}/scan/result", forged, retain=False)
            _wait(lambda: st.snapshot()[PREFIX].invalid == 1)
            assert st.snapshot()[PREFIX].signature == "INVALID"
            # the genuine device's alarm result keeps showing valid
            engine.samples.place("cocaine")
            real = svc.worker.submit("scan", source="test").result(timeout=10)
            _wait(lambda: (st.snapshot()[PREFIX].last_result or {}).get("scan_id") == real.scan_id)
            view = st.snapshot()[PREFIX]
            assert view.signature == "valid" and view.invalid == 1
            _wait(lambda: st.snapshot()[PREFIX].alarm_active)
        finally:
            client.disconnect()
            client.loop_stop()
    finally:
        svc.stop()
    console = Console(record=True, width=300)
    console.print(st.render())
    text = console.export_text()
    assert view.key_changed_to == forger.key_id
    assert f"KEY CHANGED: {PREFIX} announces key {forger.key_id}, pinned {svc.key.key_id}" in text
    assert "cocaine hydrochloride" in text and "valid" in text
    assert KeyPins(keys_file).get(PREFIX).key_id == svc.key.key_id  # type: ignore[union-attr]


def _pub(key: DeviceKey) -> dict[str, str]:
    return {"alg": "Ed25519", "key_id": key.key_id, "value": key.public_b64}


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)

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
from helpers_mqtt import Requester, Subscriber, make_config, validate_message
from mosquitto_broker import Broker
from paho.mqtt.enums import CallbackAPIVersion
from service_fakes import FakeEngine

from edge.publish import messages
from edge.publish.signing import DeviceKey, verify
from edge.service import Service

PREFIX = "customs/post-1/dev-1"
STATE = ("status", "info", "health", "alarm")


def _wait_ready(port: int, timeout: float = 10.0) -> None:
    """Ping until the service answers (its command subscription is in place)."""
    probe = Requester(port)
    try:
        deadline = time.monotonic() + timeout
        for i in range(10_000):
            corr = f"ready-{i}".encode()
            probe.send("ping", {}, corr)
            try:
                probe.response(corr, timeout=0.3)
                return
            except TimeoutError:
                assert time.monotonic() < deadline, "service never answered ping"
    finally:
        probe.close()


def _publish(port: int, topic: str, body: dict[str, Any]) -> None:
    """Publish *body* retained as any client on the broker could (no ACL in this test)."""
    forger = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    forger.connect("127.0.0.1", port)
    forger.loop_start()
    try:
        forger.publish(topic, json.dumps(body), qos=1, retain=True).wait_for_publish(5)
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
        _wait_ready(mosquitto.port)
        engine.samples.place("cocaine")
        alarm_scan = svc.worker.submit("scan", source="test").result(timeout=10).scan_id
        watcher.wait_for(
            lambda ms: any(
                m.topic.endswith("/alarm") and m.json().get("scan_id") == alarm_scan for m in ms
            )
        )
        svc.publisher.publish_health()
    finally:
        svc.stop()
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

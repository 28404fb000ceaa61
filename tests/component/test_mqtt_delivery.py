"""Results reach a real mosquitto, validate against their schemas and carry valid signatures."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
from helpers_mqtt import Subscriber, make_config, make_identification, validate_message
from mosquitto_broker import Broker

from edge.publish import Courier, DeviceKey, MqttLink, Outbox, deliver_result, verify
from edge.publish.messages import info_payload
from edge.publish.signing import load_public_key

PREFIX = "customs/post-1/dev-1"


def _courier(tmp_path: Path, port: int) -> Courier:
    cfg = make_config(tmp_path / "data", port)
    key = DeviceKey.load_or_create(cfg.device.data_dir)
    return Courier(cfg, MqttLink(cfg), Outbox.for_data_dir(cfg.device.data_dir), key)


def test_result_arrives_valid_and_signed(tmp_path: Path, mosquitto: Broker) -> None:
    sub = Subscriber(mosquitto.port, [f"{PREFIX}/#"])
    sub.wait_subscribed()
    courier = _courier(tmp_path, mosquitto.port)
    try:
        courier.link.publish_retained(
            "info",
            info_payload(
                "dev-1",
                "post-1",
                prefix=PREFIX,
                public_key={
                    "alg": "Ed25519",
                    "key_id": courier.key.key_id,
                    "value": courier.key.public_b64,
                },
            ),
        )
        courier.start()
        assert courier.link.wait_connected(10)
        done = courier.submit_result(make_identification(1, alarm=True), consignment="MSKU1234567")
        results = sub.wait_count(f"{PREFIX}/scan/result", 1)
        sub.wait_count(f"{PREFIX}/info", 1)
        sub.wait_for(lambda ms: any(m.topic == f"{PREFIX}/status" for m in ms))
    finally:
        courier.stop()
        sub.close()

    for m in sub.messages:  # every published message matches its schema
        validate_message(m.topic, m.json())
    assert len(results) == 1
    got = results[0].json()
    assert got["scan_id"] == done.scan_id
    assert got["seq"] == 1
    assert got["historical"] is False
    assert got["consignment"] == "MSKU1234567"
    assert got["substance"]["cas"] == "53-21-4"
    assert got["versions"]["model"] == "m-1"

    info = sub.on(f"{PREFIX}/info")[-1].json()
    public = load_public_key(info["public_key"]["value"])
    assert info["public_key"]["key_id"] == got["signature"]["key_id"]
    assert verify(got, public)
    # historical is not signed: flipping it keeps the signature valid
    late = dict(got, historical=True)
    assert verify(late, public)
    # any change to signed content breaks it
    for path, value in (("confidence", 0.5), ("seq", 2), ("consignment", "OTHER")):
        tampered = copy.deepcopy(got)
        tampered[path] = value
        assert not verify(tampered, public), path
    tampered = copy.deepcopy(got)
    tampered["substance"]["name"] = "sucrose"
    assert not verify(tampered, public)
    # a different device's key does not verify it
    assert not verify(got, DeviceKey.generate().public)
    # the outbox is empty once the broker acknowledged
    assert len(courier.outbox) == 0
    assert courier.outbox.stats().delivered == 1
    courier.outbox.close()

    statuses = [m.json()["state"] for m in sub.on(f"{PREFIX}/status")]
    assert statuses[0] == "online"
    assert statuses[-1] == "stopped"


def test_deliver_result_one_shot(tmp_path: Path, mosquitto: Broker) -> None:
    sub = Subscriber(mosquitto.port, [f"{PREFIX}/scan/result"])
    sub.wait_subscribed()
    cfg = make_config(tmp_path / "data", mosquitto.port)
    try:
        report = deliver_result(cfg, make_identification(), consignment="C-1")
        first = sub.wait_count(f"{PREFIX}/scan/result", 1)[0].json()
        report2 = deliver_result(cfg, make_identification())
        second = sub.wait_count(f"{PREFIX}/scan/result", 2)[1].json()
    finally:
        sub.close()
    assert report.delivered and report.waiting == 0
    assert first["scan_id"] == report.scan_id and first["historical"] is False
    validate_message(f"{PREFIX}/scan/result", first)
    assert (report.seq, report2.seq) == (1, 2)  # seq persists across processes
    assert second["seq"] == 2
    # no status is published by one-shot commands (they must not disturb the service)
    assert not sub.on(f"{PREFIX}/status")


def test_deliver_result_without_broker_queues_within_bound(tmp_path: Path) -> None:
    from mosquitto_broker import free_port

    cfg = make_config(tmp_path / "data", free_port(), outbox={"flush_timeout_s": 1.5})
    t0 = time.monotonic()
    report = deliver_result(cfg, make_identification())
    elapsed = time.monotonic() - t0
    assert not report.delivered
    assert report.waiting == 1
    assert "queued" in report.describe()
    assert elapsed < 1.5 + 3.0, elapsed  # bounded wait plus a prompt shutdown
    with Outbox.for_data_dir(cfg.device.data_dir) as outbox:
        rows = outbox.pending()
    assert len(rows) == 1 and rows[0].key == report.scan_id


@pytest.mark.parametrize("role", ["device", "oneshot"])
def test_stop_is_prompt_without_broker(tmp_path: Path, role: str) -> None:
    from mosquitto_broker import free_port

    cfg = make_config(tmp_path / "data", free_port(), mqtt={"reconnect_max_s": 30.0})
    link = MqttLink(cfg, role=role)
    link.start()
    time.sleep(1.0)  # let the backoff grow
    assert not link.connected
    t0 = time.monotonic()
    link.stop()
    assert time.monotonic() - t0 < 2.5
    link.stop()  # idempotent

"""Durability against a real mosquitto: broker outages, SIGKILLed publishers, last will."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers_mqtt import Subscriber, make_config, make_identification, validate_message
from mosquitto_broker import Broker, BrokerFactory
from paths import SUPPORT

from edge.publish import Courier, DeviceKey, MqttLink, Outbox, flush_outbox
from edge.publish.messages import alarm_payload, info_payload
from edge.publish.signing import verify

PREFIX = "customs/post-1/dev-1"
RESULT = f"{PREFIX}/scan/result"
HELPER = SUPPORT / "helpers_mqtt.py"


def _courier(data_dir: Path, port: int) -> Courier:
    cfg = make_config(data_dir, port)
    return Courier(
        cfg, MqttLink(cfg), Outbox.for_data_dir(data_dir), DeviceKey.load_or_create(data_dir)
    )


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def test_500_results_during_outage_arrive_in_order_historical(
    tmp_path: Path, mosquitto_factory: BrokerFactory
) -> None:
    broker = mosquitto_factory(persistence=True)
    sub = Subscriber(broker.port, [RESULT], persistent=True, client_id="control-room")
    sub.wait_subscribed()
    courier = _courier(tmp_path / "data", broker.port)
    courier.start()
    try:
        assert courier.link.wait_connected(10)
        broker.stop()  # clean stop: the broker keeps the control room's session
        _wait(lambda: not courier.link.connected, 10, "link noticed the outage")
        for i in range(500):
            courier.submit_result(make_identification(i), consignment=f"N{i}")
        assert len(courier.outbox) == 500  # all committed while the broker was down
        broker.start()
        got = sub.wait_count(RESULT, 500, timeout=60)
        _wait(lambda: len(courier.outbox) == 0, 10, "outbox drained")
    finally:
        courier.stop()
        sub.close()
    payloads = [m.json() for m in got]
    assert len(payloads) == 500, "no duplicates expected: nothing was in flight"
    assert [p["seq"] for p in payloads] == list(range(1, 501))
    assert [p["consignment"] for p in payloads] == [f"N{i}" for i in range(500)]
    assert all(p["historical"] is True for p in payloads)
    for p in payloads:
        validate_message(RESULT, p)
    courier.outbox.close()


def test_retained_state_republished_after_broker_restart(tmp_path: Path, mosquitto: Broker) -> None:
    courier = _courier(tmp_path / "data", mosquitto.port)
    key = courier.key
    courier.link.publish_retained(
        "info",
        info_payload(
            "dev-1",
            "post-1",
            prefix=PREFIX,
            public_key={"alg": "Ed25519", "key_id": key.key_id, "value": key.public_b64},
        ),
    )
    courier.start()
    try:
        assert courier.link.wait_connected(10)
        courier.link.publish_retained(
            "alarm",
            alarm_payload(
                "dev-1",
                "post-1",
                active=True,
                scan_id="s-1",
                substance={
                    "name": "x",
                    "category": "narcotic",
                    "family": None,
                    "severity": "alarm",
                    "cas": None,
                },
                severity="alarm",
            ),
        )
        epoch = courier.link.epoch
        mosquitto.restart()  # no persistence: the broker forgets every retained message
        _wait(lambda: courier.link.epoch > epoch and courier.link.connected, 15, "reconnect")
        sub = Subscriber(mosquitto.port, [f"{PREFIX}/+"])
        try:
            msgs = sub.wait_for(
                lambda ms: (
                    {m.topic for m in ms}
                    >= {f"{PREFIX}/status", f"{PREFIX}/info", f"{PREFIX}/alarm"}
                ),
                timeout=10,
            )
        finally:
            sub.close()
    finally:
        courier.stop()
        courier.outbox.close()
    by_topic = {m.topic: m for m in msgs}
    assert all(m.retain for m in by_topic.values())
    assert by_topic[f"{PREFIX}/status"].json()["state"] == "online"
    assert by_topic[f"{PREFIX}/alarm"].json()["active"] is True
    for m in msgs:
        validate_message(m.topic, m.json())


def _spawn(mode: str, data_dir: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HELPER), mode, str(data_dir), str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_sigkill_at_random_points_loses_nothing(tmp_path: Path, mosquitto: Broker) -> None:
    rng = random.Random(20261129)
    data_dir = tmp_path / "data"
    sub = Subscriber(mosquitto.port, [RESULT])
    sub.wait_subscribed()
    committed: set[int] = set()
    next_n = 0
    kills = 0
    try:
        while kills < 22:
            child = _spawn("publish", data_dir, mosquitto.port, str(next_n))
            lines: list[str] = []
            reader = threading.Thread(
                target=lambda c=child, out=lines: out.extend(c.stdout or []), daemon=True
            )
            reader.start()
            # wait until it publishes, then kill it at a random instant
            _wait(lambda out=lines: len(out) > 0, 20, "child started publishing")
            time.sleep(rng.uniform(0.0, 0.4))
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
            reader.join(10)
            kills += 1
            numbers = [int(x) for x in lines if x.strip().isdigit()]
            committed.update(numbers)
            next_n = max(numbers) + 1
        # after the last restart, deliver what is left
        cfg = make_config(data_dir, mosquitto.port)
        report = flush_outbox(cfg, timeout=30)
        assert report.connected and report.stats.waiting == 0
        want = {f"N{n}" for n in committed}
        sub.wait_for(
            lambda ms: want <= {m.json()["consignment"] for m in ms if m.topic == RESULT},
            timeout=30,
        )
    finally:
        sub.close()
    received = [m.json() for m in sub.on(RESULT)]
    got = {p["consignment"] for p in received}
    lost = want - got
    assert kills >= 20
    assert len(committed) > 100, len(committed)
    assert not lost, f"{len(lost)} results lost"
    assert not list(data_dir.glob("*.corrupt-*")), "outbox was never corrupted"
    # every message is valid; duplicates are allowed and share a scan_id
    for p in received:
        validate_message(RESULT, p)
    seq_of: dict[str, set[int]] = {}
    for p in received:
        seq_of.setdefault(p["scan_id"], set()).add(p["seq"])
    assert all(len(s) == 1 for s in seq_of.values()), "a duplicate is the same message"
    seqs = [next(iter(s)) for s in seq_of.values()]
    assert len(set(seqs)) == len(seqs), "seq is never reused across restarts"
    print(
        f"kills={kills} committed={len(committed)} received={len(received)} "
        f"distinct={len({p['scan_id'] for p in received})}"
    )


def test_last_will_turns_status_offline(tmp_path: Path, mosquitto: Broker) -> None:
    sub = Subscriber(mosquitto.port, [f"{PREFIX}/status"])
    sub.wait_subscribed()
    child = _spawn("hold", tmp_path / "data", mosquitto.port)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "connected"
        sub.wait_for(lambda ms: any(m.json()["state"] == "online" for m in ms), 10)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        msgs = sub.wait_for(lambda ms: ms[-1].json()["state"] == "offline", 10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
        sub.close()
    assert [m.json()["state"] for m in msgs] == ["online", "offline"]
    device_key = DeviceKey.load_or_create(tmp_path / "data")
    for m in msgs:
        validate_message(m.topic, m.json())
        # the will was signed when armed: it proves who set it (docs/mqtt.md, "Signed state")
        assert verify(m.json(), device_key.public), m.payload
    assert "time" in msgs[1].json()
    # and it is retained: a late subscriber sees 'offline'
    late = Subscriber(mosquitto.port, [f"{PREFIX}/status"])
    try:
        seen = late.wait_count(f"{PREFIX}/status", 1, timeout=10)
    finally:
        late.close()
    assert seen[0].retain and seen[0].json()["state"] == "offline"

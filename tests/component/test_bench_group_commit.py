"""The benchmark's group-commit writer (bench/group_commit.py): order, seqs, and nothing lost
at stop. It left the device code (only bench_mqtt.py uses it) but its figures must stay true."""

from __future__ import annotations

from pathlib import Path

from group_commit import GroupCommitWriter
from helpers_mqtt import Subscriber, make_config, make_identification
from mosquitto_broker import Broker, free_port

from edge.publish import Courier, DeviceKey, MqttLink, Outbox

PREFIX = "customs/post-1/dev-1"


def _courier(tmp_path: Path, port: int) -> Courier:
    cfg = make_config(tmp_path / "data", port)
    key = DeviceKey.load_or_create(cfg.device.data_dir)
    return Courier(cfg, MqttLink(cfg), Outbox.for_data_dir(cfg.device.data_dir), key)


def test_group_commit_path_delivers_in_order(tmp_path: Path, mosquitto: Broker) -> None:
    sub = Subscriber(mosquitto.port, [f"{PREFIX}/scan/result"])
    sub.wait_subscribed()
    courier = _courier(tmp_path, mosquitto.port)
    writer = GroupCommitWriter(courier)
    courier.start()
    writer.start()
    try:
        assert courier.link.wait_connected(10)
        futures = [writer.submit(make_identification(i), consignment=f"N{i}") for i in range(300)]
        done = [f.result(timeout=30) for f in futures]
        got = sub.wait_count(f"{PREFIX}/scan/result", 300, timeout=30)
    finally:
        writer.stop()
        courier.stop()
        courier.outbox.close()
        sub.close()
    assert [d.seq for d in done] == list(range(1, 301))
    payloads = [m.json() for m in got]
    assert [p["consignment"] for p in payloads] == [f"N{i}" for i in range(300)]
    assert [p["scan_id"] for p in payloads] == [d.scan_id for d in done]
    assert all(p["historical"] is False for p in payloads)


def test_stop_commits_queued_results(tmp_path: Path) -> None:
    courier = _courier(tmp_path, free_port())  # no broker: everything stays queued
    writer = GroupCommitWriter(courier)
    courier.start()
    writer.start()
    futures = [writer.submit(make_identification(i)) for i in range(50)]
    assert writer.stop(10.0)
    courier.stop()
    assert all(f.done() and f.exception() is None for f in futures)
    assert len(courier.outbox) == 50
    courier.outbox.close()

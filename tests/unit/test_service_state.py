"""StatePublisher: status, info, health (with OutboxStats) and alarm payloads, each checked
against its JSON Schema by the fake link."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_mqtt import make_config, make_identification
from service_fakes import FakeEngine, FakeLink

from edge.publish.outbox import Outbox
from edge.publish.signing import DeviceKey
from edge.service.alarm import AlarmState, alarm_from
from edge.service.commands import Dispatcher
from edge.service.state import LastError, StatePublisher
from edge.service.supervisor import InstrumentSupervisor
from hal.clock import FakeClock
from hal.errors import InstrumentTimeoutError


class Parts:
    def __init__(self, tmp_path: Path) -> None:
        self.link = FakeLink()
        self.outbox = Outbox(tmp_path / "outbox.sqlite3")
        self.alarm = AlarmState(tmp_path)
        self.errors = LastError()
        self.key = DeviceKey.generate()
        self.engine = FakeEngine()
        self.supervisor = InstrumentSupervisor(
            lambda: self.engine, errors=self.errors, clock=FakeClock()
        )
        self.publisher = StatePublisher(
            make_config(tmp_path, 1883),
            self.link,  # type: ignore[arg-type]
            self.key,
            self.outbox,
            self.supervisor,
            self.alarm,
            self.errors,
            data_dir=tmp_path,
            uptime=lambda: 42.0,
        )


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    p = Parts(tmp_path)
    yield p
    p.outbox.close()


def test_health_reports_instrument_outbox_disk_errors_and_commands(parts: Parts) -> None:
    parts.supervisor.engine()
    for i in range(3):
        parts.outbox.submit("t", b"{}", alarm=i == 0)
    dispatcher = Dispatcher(
        parts.link.topics.prefix, {"ping": lambda a: {}}, lambda *a: None, device="d", post="p"
    )
    dispatcher.submit(f"{parts.link.topics.prefix}/cmd/ping", b"{nope")
    parts.publisher.commands = dispatcher
    parts.publisher.publish_health()
    h = parts.link.last("health")
    assert h["uptime_s"] == 42.0
    assert h["instrument_temperature_c"] == 31.5 and h["background_age_s"] == 12.0
    assert h["outbox"]["waiting"] == 3 and h["outbox"]["alarms_waiting"] == 1
    same = parts.outbox.stats().for_health()  # the publisher reuses OutboxStats
    assert h["outbox"].keys() == same.keys() and h["outbox"]["dropped"] == same["dropped"] == 0
    assert 0.0 <= h["outbox"]["oldest_age_s"] < 60.0
    assert h["disk_free_bytes"] > 0 and h["last_error"] is None
    assert h["outbox"]["dead_letters"] == 0 and h["outbox"]["quarantined"] is None
    assert h["commands"] == {"received": 1, "bad_json": 1}
    assert h["identification"]["calibration"] == "default"  # what the engine says


def test_health_last_error_prefers_the_fault_then_the_last_error(parts: Parts) -> None:
    parts.link.last_error = "broker unreachable"
    assert parts.publisher.health()["last_error"] == "broker unreachable"
    parts.outbox.last_dead_letter = "outbox: row(s) 7 moved to dead letters (checksum)"
    assert parts.publisher.health()["last_error"].startswith("outbox: row(s) 7")
    parts.errors.record("archive: disk full", loud=False)
    assert parts.publisher.health()["last_error"] == "archive: disk full"
    parts.supervisor.fault(InstrumentTimeoutError("gone"))
    health = parts.publisher.health()
    assert health["last_error"] == "InstrumentTimeoutError: gone"
    assert health["instrument_temperature_c"] is None  # no engine while faulted
    assert health["commands"] == {}  # no dispatcher attached
    assert health["identification"] is None  # nor what identification runs on


def test_info_lists_what_the_dispatcher_serves_and_the_key(parts: Parts) -> None:
    parts.supervisor.engine()
    parts.publisher.commands = Dispatcher(
        parts.link.topics.prefix,
        {"ping": lambda a: {}, "scan": lambda a: {}},
        lambda *a: None,
        device="d",
        post="p",
    )
    parts.publisher.publish_info()
    info = parts.link.last("info")
    assert info["commands"] == ["scan", "ping"]
    assert info["public_key"]["value"] == parts.key.public_b64
    assert info["instrument"]["serial"] == "T-1" and info["prefix"] == parts.link.topics.prefix


def test_status_follows_the_instrument_and_the_link(parts: Parts) -> None:
    parts.supervisor.on_fault.append(parts.publisher.on_instrument_fault)
    parts.supervisor.on_recover.append(parts.publisher.on_instrument_recovered)
    parts.supervisor.engine()
    assert parts.publisher.status()["state"] == "online"
    parts.supervisor.fault(InstrumentTimeoutError("gone"))
    parts.supervisor.fault(InstrumentTimeoutError("still gone"))
    assert [s["state"] for s in parts.link.retained["status"]] == ["maintenance"]  # once
    parts.publisher.on_link_change(True)  # a reconnect while faulted: maintenance again
    parts.publisher.on_link_change(False)
    assert [s["state"] for s in parts.link.retained["status"]] == ["maintenance"] * 2
    parts.supervisor.engine()
    assert parts.link.last("status")["state"] == "online"
    assert "info" in parts.link.retained  # the identity is published again on recovery
    parts.publisher.on_link_change(True)  # online again: the link itself says so
    assert len(parts.link.retained["status"]) == 3


def test_alarm_active_and_cleared(parts: Parts) -> None:
    parts.publisher.publish_alarm()
    assert parts.link.last("alarm")["active"] is False
    alarm = alarm_from(make_identification(1, alarm=True), "scan-1", "MSKU 1")
    parts.alarm.raise_(alarm)
    parts.publisher.publish_alarm()
    active = parts.link.last("alarm")
    assert active["active"] and active["scan_id"] == "scan-1" and active["consignment"] == "MSKU 1"
    cleared = parts.alarm.acknowledge("scan-1")
    parts.publisher.publish_alarm(cleared, "officer 7")
    last = parts.link.last("alarm")
    assert last["active"] is False and last["acknowledged_by"] == "officer 7"
    assert last["scan_id"] == "scan-1"

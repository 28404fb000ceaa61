"""The service and systemd (notify protocol on a fake notify socket) and the updater's files:
READY=1 once the engine is open, ready.json, WATCHDOG=1 only while the scan worker and the
MQTT loop are alive, STATUS= kept current, switch.lock held while scanning or while an alarm is
active, and a reload (SIGHUP) that reopens the identifier. Real mosquitto, real outbox."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_mqtt import make_config
from mosquitto_broker import Broker
from notify_socket import NotifySocket
from service_fakes import FakeEngine

from edge.ota import control, updater
from edge.service import Service, readiness, switch_gate

INTERVAL_US = 100_000  # WatchdogSec=0.1 s: the service pings every 0.05 s


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock.path))
    monkeypatch.setenv("WATCHDOG_USEC", str(INTERVAL_US))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    yield sock
    sock.close()


def start(tmp_path: Path, broker: Broker, engine: FakeEngine, **kw: Any) -> Service:
    cfg = make_config(tmp_path / "data", broker.port)
    svc = Service(cfg, lambda: engine, **kw)
    svc.start()
    assert svc.link.wait_connected(10)
    return svc


def lock_free(path: Path) -> bool:
    """True when the updater could take switch.lock now (exclusive, non-blocking)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_the_updater_and_the_service_agree_on_file_names() -> None:
    assert readiness.READY_FILE == control.READY_FILE
    assert switch_gate.SWITCH_LOCK == updater.SWITCH_LOCK


def test_ready_after_the_engine_opens_with_ready_json(
    tmp_path: Path, mosquitto: Broker, notify: NotifySocket
) -> None:
    t0 = time.time()
    svc = start(tmp_path, mosquitto, FakeEngine())
    try:
        ready = notify.wait_for(lambda m: m.get("READY") == "1", 10)
        assert ready["STATUS"].startswith("ready; 0 scans")
        doc = json.loads((tmp_path / "data" / "ready.json").read_text())
        assert doc["pid"] == os.getpid() and doc["time_epoch"] >= t0
        assert doc["outbox_writable"] is True and doc["outbox_problem"] is None
        assert doc["data_release"] == str(svc.data_release())
        assert doc["app_release"] is None  # a source tree, not an installed release
        # the updater's own check of that file (unit state aside)
        probe = control.SystemdControl("x.service", tmp_path / "data")
        probe._systemctl = lambda *a: "active\n"  # type: ignore[method-assign]
        assert probe.ready_problem(t0, None, svc.data_release()) is None
        assert "runs data_release" in (probe.ready_problem(t0, None, tmp_path) or "")
        assert "not reported ready" in (probe.ready_problem(time.time() + 5, None, None) or "")
    finally:
        svc.stop(5)
    assert notify.wait_for(lambda m: m.get("STOPPING") == "1", 5)


def test_no_ready_until_the_instrument_opens(
    tmp_path: Path, mosquitto: Broker, notify: NotifySocket
) -> None:
    from hal.errors import InstrumentTimeoutError

    engine = FakeEngine()
    attempts = [InstrumentTimeoutError("front end silent")]

    def factory() -> FakeEngine:
        if attempts:
            raise attempts.pop()
        return engine

    cfg = make_config(tmp_path / "data", mosquitto.port)
    svc = Service(cfg, factory)
    svc.start()
    try:
        notify.wait_for(lambda m: "waiting for the instrument" in m.get("STATUS", ""), 5)
        assert not any(m.get("READY") for m in notify.snapshot())
        assert not (tmp_path / "data" / "ready.json").exists()
        svc.worker.request_reopen()
        notify.wait_for(lambda m: m.get("READY") == "1", 10)
        assert (tmp_path / "data" / "ready.json").exists()
    finally:
        svc.stop(5)


def test_a_wedged_scan_worker_stops_the_watchdog_pings(
    tmp_path: Path, mosquitto: Broker, notify: NotifySocket
) -> None:
    release = threading.Event()
    engine = FakeEngine()
    original = engine.scan

    def hung(reference: str | None = None) -> Any:
        release.wait(30)  # a front end that never answers
        return original(reference)

    engine.scan = hung  # type: ignore[method-assign]
    svc = start(tmp_path, mosquitto, engine, wedged_after_s=0.5)
    lock = tmp_path / "data" / "switch.lock"
    try:
        t_alive = time.monotonic()
        time.sleep(0.5)
        assert sum(m.get("WATCHDOG") == "1" for m in notify.since(t_alive)) >= 3
        assert lock_free(lock)
        svc.worker.submit("scan", source="test")
        notify.wait_for(lambda m: "scan worker stuck" in m.get("STATUS", ""), 10)
        assert not lock_free(lock)  # a scan runs: the updater would defer its switch
        t_wedged = time.monotonic()
        time.sleep(1.0)  # 20 watchdog intervals
        assert not any(m.get("WATCHDOG") for m in notify.since(t_wedged))
        assert svc.watchdog is not None and "scan worker stuck" in svc.watchdog.failing[0]
        release.set()  # the scan ends: pings come back
        t_back = time.monotonic()
        notify.wait_for(lambda m: m.get("WATCHDOG") == "1", 10, after=t_back)
        assert wait_until(lambda: lock_free(lock))
    finally:
        release.set()
        svc.stop(5)


def test_pings_stop_when_the_mqtt_loop_dies(
    tmp_path: Path, mosquitto: Broker, notify: NotifySocket
) -> None:
    svc = start(tmp_path, mosquitto, FakeEngine())
    try:
        notify.wait_for(lambda m: m.get("WATCHDOG") == "1", 5)
        svc.link._client.loop_stop()  # paho's network thread ends (as if it had crashed)
        notify.wait_for(lambda m: "MQTT network loop" in m.get("STATUS", ""), 5)
        t = time.monotonic()
        time.sleep(0.5)
        assert not any(m.get("WATCHDOG") for m in notify.since(t))
    finally:
        svc.stop(5)


def test_broker_down_is_not_a_reason_to_stop_pinging(
    tmp_path: Path, mosquitto: Broker, notify: NotifySocket
) -> None:
    svc = start(tmp_path, mosquitto, FakeEngine())
    try:
        mosquitto.kill()
        assert wait_until(lambda: not svc.link.connected)
        notify.wait_for(lambda m: "broker unreachable" in m.get("STATUS", ""), 5)
        t = time.monotonic()
        notify.wait_for(lambda m: m.get("WATCHDOG") == "1", 5, after=t)
    finally:
        svc.stop(5)


def test_the_switch_lock_is_held_while_an_alarm_is_active(
    tmp_path: Path, mosquitto: Broker, notify: NotifySocket
) -> None:
    engine = FakeEngine()
    svc = start(tmp_path, mosquitto, engine)
    lock = tmp_path / "data" / "switch.lock"
    try:
        engine.samples.place("cocaine")
        svc.worker.submit("scan", source="test").result(10)
        assert svc.alarm.active is not None and not lock_free(lock)
        notify.wait_for(lambda m: "ALARM active" in m.get("STATUS", ""), 5)
        svc.alarm.acknowledge(None)
        assert lock_free(lock)
    finally:
        svc.stop(5)
    # an alarm still active at the next start holds the lock from the start
    svc = start(tmp_path, mosquitto, engine)
    try:
        engine.samples.place("cocaine")
        svc.worker.submit("scan", source="test").result(10)
    finally:
        svc.stop(5)
    svc = start(tmp_path, mosquitto, FakeEngine())
    try:
        assert svc.alarm.active is not None and not lock_free(lock)
    finally:
        svc.stop(5)
    assert lock_free(lock)


def test_reload_reopens_the_identifier_and_reports_ready_again(
    tmp_path: Path, mosquitto: Broker, notify: NotifySocket
) -> None:
    opened: list[FakeEngine] = []

    def factory() -> FakeEngine:
        opened.append(FakeEngine())
        return opened[-1]

    cfg = make_config(tmp_path / "data", mosquitto.port)
    svc = Service(cfg, factory)
    svc.start()
    try:
        notify.wait_for(lambda m: m.get("READY") == "1", 10)
        first = json.loads((tmp_path / "data" / "ready.json").read_text())["time_epoch"]
        t = time.monotonic()
        assert svc.reload(10)
        assert len(opened) == 2 and opened[0].closed and not opened[1].closed
        notify.wait_for(lambda m: m.get("RELOADING") == "1", 1, after=t)
        notify.wait_for(lambda m: m.get("READY") == "1", 1, after=t)
        assert json.loads((tmp_path / "data" / "ready.json").read_text())["time_epoch"] > first
        svc.worker.submit("scan", source="test").result(10)
        assert opened[1].scans == [None]
    finally:
        svc.stop(5)


def test_without_systemd_nothing_is_sent_and_nothing_fails(
    tmp_path: Path, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    svc = start(tmp_path, mosquitto, FakeEngine())
    try:
        assert svc.watchdog is None and not svc.notifier.enabled and svc.ready
        assert (tmp_path / "data" / "ready.json").exists()
    finally:
        svc.stop(5)


def test_a_reload_behind_a_hung_scan_gives_way_to_a_stop(
    tmp_path: Path, mosquitto: Broker, notify: NotifySocket
) -> None:
    release = threading.Event()
    engine = FakeEngine()
    original = engine.scan

    def hung(reference: str | None = None) -> Any:
        release.wait(30)
        return original(reference)

    engine.scan = hung  # type: ignore[method-assign]
    svc = start(tmp_path, mosquitto, engine)
    try:
        svc.worker.submit("scan", source="test")
        assert wait_until(lambda: not svc.worker.idle)
        cancel = threading.Event()
        threading.Timer(0.3, cancel.set).start()  # SIGTERM arrives while the reload waits
        t0 = time.monotonic()
        assert svc.reload(60, cancel=cancel) is False
        assert time.monotonic() - t0 < 5
        assert "reload failed" in (svc.errors.message or "")
    finally:
        release.set()
        svc.stop(5)


def test_the_updater_state_file_is_readable_by_the_service_user(tmp_path: Path) -> None:
    from edge.ota import trial

    trial.write_state(tmp_path, "idle")
    assert (tmp_path / "ota" / "state.json").stat().st_mode & 0o777 == 0o644

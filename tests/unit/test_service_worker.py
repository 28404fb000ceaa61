"""ScanWorker: jobs run one at a time and end in a typed JobResult; faults, errors, a full
queue and stopping. Fakes for the engine, courier, link and panel; real archive and alarm."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_mqtt import make_config
from service_fakes import FakeCourier, FakeEngine, FakeLink, RecordingPanel

from edge.errors import EdgeError
from edge.publish.outbox import Outbox
from edge.publish.signing import DeviceKey
from edge.service.alarm import AlarmState
from edge.service.commands import CommandRejected
from edge.service.state import LastError, StatePublisher
from edge.service.supervisor import InstrumentSupervisor
from edge.service.worker import Job, JobResult, ScanWorker
from edge.store.archive import Archive
from hal.clock import FakeClock
from hal.errors import InstrumentTimeoutError


class Parts:
    """One worker with everything it talks to."""

    def __init__(
        self,
        tmp_path: Path,
        engine: FakeEngine,
        queue_size: int = 8,
        factory: Callable[[], FakeEngine] | None = None,
    ) -> None:
        cfg = make_config(tmp_path, 1883)
        self.engine = engine
        self.link = FakeLink()
        self.courier = FakeCourier()
        self.archive = Archive(tmp_path / "archive.sqlite")
        self.outbox = Outbox(tmp_path / "outbox.sqlite3")
        self.alarm = AlarmState(tmp_path)
        self.errors = LastError()
        self.panel = RecordingPanel()
        self.supervisor = InstrumentSupervisor(
            factory or (lambda: engine), errors=self.errors, clock=FakeClock()
        )
        self.supervisor.on_fault.append(lambda first: self.panel.show_error())
        self.publisher = StatePublisher(
            cfg,
            self.link,  # type: ignore[arg-type]
            DeviceKey.generate(),
            self.outbox,
            self.supervisor,
            self.alarm,
            self.errors,
            data_dir=tmp_path,
            uptime=lambda: 1.0,
        )
        self.worker = ScanWorker(
            self.supervisor,
            self.courier,  # type: ignore[arg-type]
            self.archive,
            self.alarm,
            self.publisher,
            self.panel,
            self.errors,
            queue_size=queue_size,
            wall_clock=lambda: 1_800_000_000.0,
        )

    def close(self) -> None:
        self.worker.stop(5.0)
        self.archive.close()
        self.outbox.close()


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    p = Parts(tmp_path, FakeEngine())
    yield p
    p.close()


def test_a_scan_goes_to_the_outbox_and_the_archive_and_ends_in_a_typed_result(
    parts: Parts,
) -> None:
    result = parts.worker.run(Job("scan", "test", consignment="MSKU 1"))
    assert isinstance(result, JobResult) and result.kind == "scan"
    assert result.status == "identified" and result.severity == "info"
    assert result.consignment == "MSKU 1" and result.time.endswith("Z")
    ((ident, scan_id, consignment),) = parts.courier.submitted
    assert scan_id == result.scan_id and consignment == "MSKU 1" and ident.status == "identified"
    stored = parts.archive.get(result.scan_id or "")
    assert stored.reference == "MSKU 1" and stored.result["scan_id"] == result.scan_id
    assert stored.data.sample is not None and stored.data.sample.size == 64
    assert result.response() == {
        "scan_id": result.scan_id,
        "status": "identified",
        "consignment": "MSKU 1",
    }
    assert parts.panel.calls == ["busy", "result:info"]
    assert parts.worker.counters.scans == 1 and parts.alarm.active is None


def test_an_alarm_is_raised_published_and_outlives_a_lesser_result(parts: Parts) -> None:
    parts.engine.samples.place("cocaine")
    alarm = parts.worker.run(Job("scan", "test"))
    assert alarm.severity == "alarm" and parts.worker.counters.alarms == 1
    active = parts.alarm.active
    assert active is not None and active.scan_id == alarm.scan_id
    assert parts.link.last("alarm")["active"] is True
    assert parts.link.last("alarm")["scan_id"] == alarm.scan_id
    parts.engine.samples.place("lactose")
    parts.worker.run(Job("scan", "test"))
    # the benign result shows green but leaves the unacknowledged alarm's red light
    assert parts.panel.calls[-3:] == ["result:alarm", "busy", "ready"]


def test_a_background_result_and_its_response(parts: Parts) -> None:
    result = parts.worker.run(Job("background", "button"))
    assert result.kind == "background" and result.severity is None
    assert result.response() == {"time": result.time, "quality": {"signal": 0.9}}
    assert parts.engine.backgrounds == 1 and parts.panel.calls == ["busy", "ready"]


def test_a_hardware_error_is_an_instrument_fault(parts: Parts) -> None:
    parts.engine.fail.append(InstrumentTimeoutError("data-ready never came"))
    with pytest.raises(InstrumentTimeoutError):
        parts.worker.run(Job("scan", "test"))
    assert parts.supervisor.faulted and parts.engine.closed
    assert parts.panel.calls == ["busy", "error"]
    assert parts.errors.message is not None and "data-ready" in parts.errors.message
    # the next job opens the instrument again, which ends the fault
    assert parts.worker.run(Job("scan", "test")).status == "identified"
    assert not parts.supervisor.faulted


def test_without_an_instrument_a_job_fails_with_a_clear_error(tmp_path: Path) -> None:
    def absent() -> FakeEngine:
        raise InstrumentTimeoutError("no answer on spidev0.0")

    p = Parts(tmp_path, FakeEngine(), factory=absent)
    try:
        with pytest.raises(EdgeError, match="instrument unavailable: InstrumentTimeoutError"):
            p.worker.run(Job("scan", "remote"))
        assert p.panel.calls == ["error"] and p.engine.scans == []
    finally:
        p.close()


def test_another_error_leaves_the_panel_idle_and_no_fault(parts: Parts) -> None:
    parts.engine.fail.append(KeyError("'unobtainium' is not in the library"))
    with pytest.raises(KeyError):
        parts.worker.run(Job("scan", "test"))
    assert not parts.supervisor.faulted and parts.panel.calls == ["busy", "ready"]


def test_reopen_acquires_nothing(parts: Parts) -> None:
    result = parts.worker.run(Job("reopen", "fault-retry"))
    assert result.kind == "reopen" and parts.engine.scans == [] and parts.panel.calls == []


def test_queue_full_is_busy_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = Parts(tmp_path, FakeEngine(), queue_size=2)
    try:
        p.worker.submit("scan", source="a")
        p.worker.submit("scan", source="b")
        with pytest.raises(CommandRejected) as info:
            p.worker.submit("scan", source="c")
        assert info.value.code == "busy" and p.worker.counters.jobs_refused == 1
        p.worker.press("scan")  # a button press on a full queue is logged, not raised
        assert "button press ignored" in caplog.text
        assert not p.worker.request_reopen()  # jobs wait: they reopen the instrument anyway
        assert not p.worker.idle
    finally:
        p.close()


def test_the_thread_runs_jobs_in_order_and_stop_refuses_what_waits(parts: Parts) -> None:
    release = threading.Event()
    running = threading.Event()
    original = parts.engine.scan

    def slow(reference: str | None = None) -> Any:
        running.set()
        release.wait(10)
        return original(reference)

    parts.engine.scan = slow  # type: ignore[method-assign]
    parts.worker.start()
    first = parts.worker.submit("scan", source="a")
    waiting = parts.worker.submit("background", source="b")
    assert running.wait(10)  # the first job is in hand, the second waits
    assert not parts.worker.idle
    stopper = threading.Thread(target=parts.worker.stop, args=(10.0,))
    stopper.start()
    release.set()  # the job in hand finishes
    stopper.join(10)
    assert first.result(5).kind == "scan"
    with pytest.raises(CommandRejected, match="stopping"):
        waiting.result(5)
    with pytest.raises(CommandRejected, match="stopping"):
        parts.worker.submit("scan", source="late")
    assert parts.worker.idle and not any(t.name == "scan-worker" for t in threading.enumerate())


def test_request_reopen_when_idle(parts: Parts) -> None:
    assert parts.worker.request_reopen()
    assert not parts.worker.request_reopen()  # one is already waiting

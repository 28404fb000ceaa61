"""The service's command handlers with their neighbours faked: results, refusals, alarms."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_mqtt import make_identification
from service_fakes import RecordingPanel

from edge import __version__
from edge.preprocess.grid import STANDARD_GRID
from edge.scan.data import ScanData
from edge.service.alarm import AlarmState, alarm_from
from edge.service.commands import (
    COMMANDS,
    AckArgs,
    BackgroundArgs,
    CommandRejected,
    GetSpectrumArgs,
    PingArgs,
    ScanArgs,
)
from edge.service.commands.handlers import CommandHandlers
from edge.service.worker import JobResult
from edge.store.archive import Archive, ScanRecord


class Worker:
    """Hands back the future of each submitted job, for the test to settle."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, str, str | None, Future[JobResult]]] = []

    def submit(self, kind: str, *, source: str, consignment: str | None = None) -> Any:
        fut: Future[JobResult] = Future()
        self.jobs.append((kind, source, consignment, fut))
        return fut


class Publisher:
    def __init__(self) -> None:
        self.alarms: list[tuple[Any, Any]] = []

    def publish_alarm(self, cleared: Any = None, by: str | None = None) -> None:
        self.alarms.append((cleared, by))


class Parts:
    def __init__(self, tmp_path: Path) -> None:
        self.worker = Worker()
        self.alarm = AlarmState(tmp_path)
        self.archive = Archive(tmp_path / "archive.sqlite")
        self.publisher = Publisher()
        self.panel = RecordingPanel()
        self.handlers = CommandHandlers(
            self.worker,  # type: ignore[arg-type]
            self.alarm,
            self.archive,
            self.publisher,  # type: ignore[arg-type]
            self.panel,
            uptime=lambda: 7.5,
        )


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    p = Parts(tmp_path)
    yield p
    p.archive.close()


def test_every_command_of_the_registry_has_a_handler(parts: Parts) -> None:
    assert list(parts.handlers.table()) == list(COMMANDS)


def test_scan_is_answered_when_the_job_ends(parts: Parts) -> None:
    answer = parts.handlers.scan(ScanArgs(consignment="MSKU 1"))
    ((kind, source, consignment, job),) = parts.worker.jobs
    assert (kind, source, consignment) == ("scan", "remote", "MSKU 1") and not answer.done()
    job.set_result(
        JobResult("scan", "2026-01-01T00:00:00.000Z", "s-1", "identified", "info", "MSKU 1")
    )
    assert answer.result(1) == {"scan_id": "s-1", "status": "identified", "consignment": "MSKU 1"}


def test_background_refusal_and_failure_reach_the_answer(parts: Parts) -> None:
    first = parts.handlers.background(BackgroundArgs())
    second = parts.handlers.background(BackgroundArgs())
    parts.worker.jobs[0][3].set_exception(CommandRejected("busy", "service is stopping"))
    parts.worker.jobs[1][3].cancel()
    with pytest.raises(CommandRejected, match="stopping"):
        first.result(1)
    assert second.cancelled()


def test_ack_clears_only_the_named_alarm(parts: Parts) -> None:
    parts.alarm.raise_(alarm_from(make_identification(1, alarm=True), "s-9", None))
    assert parts.handlers.ack(AckArgs(scan_id="s-1")) == {"cleared": False, "scan_id": None}
    assert parts.alarm.active is not None and parts.panel.calls == []
    out = parts.handlers.ack(AckArgs(scan_id="s-9", operator="officer 7"))
    assert out == {"cleared": True, "scan_id": "s-9"}
    assert parts.alarm.active is None and parts.panel.calls == ["clear_alarm"]
    ((cleared, by),) = parts.publisher.alarms
    assert cleared.scan_id == "s-9" and by == "officer 7"
    assert parts.handlers.ack(AckArgs()) == {"cleared": False, "scan_id": None}


def test_get_spectrum_processed_raw_and_not_found(parts: Parts) -> None:
    raw_x = np.linspace(600.0, 4100.0, 8)
    parts.archive.put(
        ScanRecord(
            "s-1",
            1.8e9,
            {"status": "identified"},
            ScanData(
                STANDARD_GRID,
                np.linspace(0, 1, STANDARD_GRID.size),
                raw_wavenumbers=raw_x,
                sample=np.arange(8.0),
            ),
        )
    )
    parts.archive.put(ScanRecord("s-2", 1.8e9, {}, ScanData(STANDARD_GRID, np.zeros(838))))
    processed = parts.handlers.get_spectrum(GetSpectrumArgs(scan_id="s-1"))
    assert processed["y_unit"] == "absorbance" and len(processed["x"]) == STANDARD_GRID.size
    raw = parts.handlers.get_spectrum(GetSpectrumArgs(scan_id="s-1", kind="raw"))
    assert raw["y_unit"] == "counts" and raw["y"] == list(np.arange(8.0))
    for args, text in [
        (GetSpectrumArgs(scan_id="nope"), "not in the archive"),
        (GetSpectrumArgs(scan_id="s-2", kind="raw"), "no raw counts"),
    ]:
        with pytest.raises(CommandRejected, match=text) as info:
            parts.handlers.get_spectrum(args)
        assert info.value.code == "not_found"


def test_ping(parts: Parts) -> None:
    assert parts.handlers.ping(PingArgs()) == {"uptime_s": 7.5, "version": __version__}
    assert parts.handlers.ping(PingArgs(nonce="n"))["nonce"] == "n"

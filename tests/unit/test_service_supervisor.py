"""InstrumentSupervisor and Backoff on a fake clock, without a single thread."""

from __future__ import annotations

import pytest
from service_fakes import FakeEngine

from edge.errors import EdgeError
from edge.service.state import LastError
from edge.service.supervisor import Backoff, InstrumentSupervisor
from hal.clock import FakeClock
from hal.errors import InstrumentTimeoutError


class Factory:
    """Opens FakeEngines; *fail* lists errors for the next opens."""

    def __init__(self, *fail: BaseException) -> None:
        self.fail = list(fail)
        self.opened: list[FakeEngine] = []

    def __call__(self) -> FakeEngine:
        if self.fail:
            raise self.fail.pop(0)
        self.opened.append(FakeEngine())
        return self.opened[-1]


def make(factory: Factory, clock: FakeClock) -> tuple[InstrumentSupervisor, list[str], LastError]:
    events: list[str] = []
    errors = LastError()
    sup = InstrumentSupervisor(factory, errors=errors, clock=clock, backoff=Backoff(1.0, 8.0))
    sup.on_fault.append(lambda first: events.append(f"fault first={first}"))
    sup.on_recover.append(lambda: events.append("recovered"))
    return sup, events, errors


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    b = Backoff(1.0, 8.0)
    assert [b.failed() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    b.reset()
    assert b.failed() == 1.0
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(5.0, 1.0)


def test_opens_once_and_keeps_the_engine() -> None:
    factory = Factory()
    sup, events, _ = make(factory, FakeClock())
    engine = sup.engine()
    assert engine is not None and sup.engine() is engine and len(factory.opened) == 1
    assert not sup.faulted and sup.fault_text is None and sup.seconds_to_retry() is None
    assert sup.identity() == engine.identity() and sup.state() == engine.state()
    assert events == []


def test_fault_closes_schedules_a_retry_and_recovery_resets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    factory = Factory()
    sup, events, errors = make(factory, clock)
    first = sup.engine()
    assert first is not None
    sup.fault(InstrumentTimeoutError("data-ready never came"))
    assert first.closed and sup.faulted and sup.faults == 1
    assert sup.fault_text == "InstrumentTimeoutError: data-ready never came"
    assert errors.message == "instrument: InstrumentTimeoutError: data-ready never came"
    assert "data-ready never came" in caplog.text  # the first fault is loud
    assert events == ["fault first=True"]
    assert sup.state() is None and sup.identity() is None  # no engine while faulted
    assert not sup.retry_due() and sup.seconds_to_retry() == pytest.approx(1.0)
    clock.advance(1.0)
    assert sup.retry_due()
    sup.retry_requested()  # housekeeping queued a reopen: the next one after the delay
    assert not sup.retry_due() and sup.seconds_to_retry() == pytest.approx(2.0)

    again = sup.engine()  # the reopen on the scan worker
    assert again is not None and again is not first
    assert not sup.faulted and events == ["fault first=True", "recovered"]
    assert sup.backoff.delay == 1.0  # reset


def test_repeated_faults_back_off_and_only_the_first_is_loud(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    factory = Factory()
    sup, events, _ = make(factory, clock)
    sup.engine()
    delays = []
    for _ in range(5):
        sup.fault(OSError("spidev gone"))
        delays.append(sup.seconds_to_retry())
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert events == ["fault first=True"] + ["fault first=False"] * 4
    assert sup.faults == 5
    assert caplog.text.count("spidev gone") == 1


def test_an_engine_that_will_not_open_is_a_fault_not_an_exception() -> None:
    clock = FakeClock()
    factory = Factory(InstrumentTimeoutError("no answer"), EdgeError("library unreadable"))
    sup, events, _ = make(factory, clock)
    assert sup.engine() is None and sup.fault_text == "InstrumentTimeoutError: no answer"
    assert sup.engine() is None and sup.fault_text == "EdgeError: library unreadable"
    assert sup.engine() is not None and events[-1] == "recovered"


def test_an_unexpected_error_from_the_factory_is_not_swallowed() -> None:
    sup, _, _ = make(Factory(RuntimeError("bug")), FakeClock())
    with pytest.raises(RuntimeError, match="bug"):
        sup.engine()
    assert not sup.faulted


def test_close_is_idempotent_and_a_failing_close_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    factory = Factory()
    sup, _, _ = make(factory, FakeClock())
    engine = sup.engine()
    assert engine is not None

    def broken() -> None:
        raise OSError("bus stuck")

    engine.close = broken  # type: ignore[method-assign]
    sup.close()
    sup.close()
    assert "bus stuck" in caplog.text
    assert sup.engine() is not engine  # opened afresh

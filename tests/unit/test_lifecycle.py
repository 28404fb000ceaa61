"""edge.lifecycle: one thread helper with a bounded stop, and deadlines passed down."""

from __future__ import annotations

import threading
import time

import pytest

from edge.lifecycle import Deadline, Worker, deadline_of
from hal.clock import FakeClock


def test_worker_runs_until_stopped_and_joins() -> None:
    ticks: list[int] = []

    def loop(stopping: threading.Event) -> None:
        while not stopping.wait(0.005):
            ticks.append(1)

    w = Worker("ticker", loop)
    assert not w.alive and "new" in repr(w)
    w.start()
    w.start()  # idempotent while running
    assert w.alive and threading.current_thread().name != "ticker"
    assert any(t.name == "ticker" for t in threading.enumerate())
    time.sleep(0.05)
    assert w.stop(2.0) is True
    assert not w.alive and "stopped" in repr(w)
    assert ticks  # it did run
    assert w.stop(2.0) is True  # idempotent
    with pytest.raises(RuntimeError, match="stopped"):
        w.start()


def test_wake_hook_interrupts_a_blocking_wait() -> None:
    gate = threading.Event()

    def blocked(stopping: threading.Event) -> None:
        gate.wait(30)  # blocks on something other than *stopping*

    w = Worker("blocked", blocked, wake=gate.set)
    w.start()
    t0 = time.monotonic()
    assert w.stop(5.0) is True
    assert time.monotonic() - t0 < 2.0


def test_a_thread_that_will_not_stop_is_abandoned_at_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    w = Worker("stubborn", lambda stopping: release.wait(30))
    w.start()
    t0 = time.monotonic()
    assert w.stop(0.2) is False
    assert 0.15 < time.monotonic() - t0 < 2.0
    assert "stubborn did not stop" in caplog.text
    release.set()
    assert w.join(5.0) is True


def test_stop_before_start_is_fine() -> None:
    assert Worker("never", lambda s: None).stop(0.0) is True


def test_deadline_of_passes_a_deadline_down_unchanged() -> None:
    clock = FakeClock()
    d = Deadline(clock, 10.0)
    assert deadline_of(d) is d
    clock.advance(4.0)
    assert d.remaining() == pytest.approx(6.0)
    fresh = deadline_of(3.0, clock)
    assert fresh.remaining() == pytest.approx(3.0)
    clock.advance(5.0)
    assert fresh.expired() and fresh.remaining() == 0.0

"""Housekeeping on a fake clock: health when due, a reopen when the backoff has passed."""

from __future__ import annotations

import pytest

from edge.service.housekeeping import MAX_WAIT_S, MIN_WAIT_S, Housekeeping
from hal.clock import FakeClock


class Publisher:
    def __init__(self) -> None:
        self.health = 0

    def publish_health(self) -> None:
        self.health += 1


class Supervisor:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.retry_at: float | None = None
        self.requested = 0

    def retry_due(self) -> bool:
        return self.retry_at is not None and self.clock.monotonic() >= self.retry_at

    def seconds_to_retry(self) -> float | None:
        return None if self.retry_at is None else max(0.0, self.retry_at - self.clock.monotonic())

    def retry_requested(self) -> None:
        self.requested += 1
        self.retry_at = self.clock.monotonic() + 2.0


class Worker:
    def __init__(self) -> None:
        self.accept = True
        self.reopens = 0

    def request_reopen(self) -> bool:
        if self.accept:
            self.reopens += 1
        return self.accept


def make(interval: float = 5.0) -> tuple[Housekeeping, FakeClock, Publisher, Supervisor, Worker]:
    clock = FakeClock()
    pub, sup, work = Publisher(), Supervisor(clock), Worker()
    return Housekeeping(interval, pub, sup, work, clock=clock), clock, pub, sup, work


def test_health_every_interval_not_before() -> None:
    hk, clock, pub, _, _ = make(5.0)
    hk.tick()
    assert pub.health == 0  # the service published one at start
    clock.advance(4.9)
    hk.tick()
    assert pub.health == 0
    clock.advance(0.1)
    hk.tick()
    assert pub.health == 1
    clock.advance(5.0)
    hk.tick()
    assert pub.health == 2


def test_reopen_when_due_and_rearmed_only_when_queued() -> None:
    hk, clock, _, sup, work = make(60.0)
    sup.retry_at = clock.monotonic() + 1.0
    hk.tick()
    assert work.reopens == 0
    clock.advance(1.0)
    work.accept = False  # jobs wait: nothing queued, retried at the next look
    hk.tick()
    assert sup.requested == 0
    work.accept = True
    hk.tick()
    assert work.reopens == 1 and sup.requested == 1 and not sup.retry_due()


def test_sleep_is_bounded_and_wakes_for_a_retry() -> None:
    hk, clock, _, sup, _ = make(60.0)
    assert hk.seconds_to_next() == MAX_WAIT_S  # health far off: at most a second
    sup.retry_at = clock.monotonic() + 0.3
    assert hk.seconds_to_next() == pytest.approx(0.3)
    clock.advance(0.3)
    assert hk.seconds_to_next() == MIN_WAIT_S


def test_stop_joins_the_thread() -> None:
    hk, _, _, _, _ = make(60.0)
    hk.start()
    assert hk.stop(2.0)
    with pytest.raises(ValueError):
        Housekeeping(0, Publisher(), Supervisor(FakeClock()), Worker())

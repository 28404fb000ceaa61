"""Clocks: the real one and a fake one for tests.

Every wait in ``hal`` goes through a :class:`Clock`, so a test can swap in :class:`FakeClock`
and run a 10 s timeout in microseconds without a single real sleep.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A monotonic clock that can also sleep."""

    def monotonic(self) -> float:
        """Seconds since an arbitrary origin; never goes back."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait *seconds* (no-op for <= 0)."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`time.sleep`."""

    def monotonic(self) -> float:
        """Seconds from :func:`time.monotonic`."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Really sleep."""
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock whose time only moves when someone sleeps on it or calls :meth:`advance`."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self.slept = 0.0  # total simulated sleeping, s

    def monotonic(self) -> float:
        """The simulated time."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Advance simulated time by *seconds*, instantly."""
        if seconds > 0:
            self._now += seconds
            self.slept += seconds

    def advance(self, seconds: float) -> None:
        """Move time forward without counting it as sleep."""
        if seconds < 0:
            raise ValueError("time does not go back")
        self._now += seconds


class Deadline:
    """A point in time on a clock; ``remaining()`` is never negative."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.at = clock.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left, 0 when passed."""
        return max(0.0, self.at - self.clock.monotonic())

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.clock.monotonic() >= self.at

"""The instrument's keeper: opens the scan engine, records faults, and says when to retry.

An instrument fault (a :class:`~hal.errors.HalError` from a job, or an engine that will not
open) closes the engine and starts a capped exponential :class:`Backoff` on an injected
clock; :meth:`InstrumentSupervisor.retry_due` tells the housekeeping loop when to ask the
scan worker (which owns the instrument) to open it again. The first fault and the recovery
are announced to listeners (``status`` to ``maintenance`` and back, the error light); a fault
never stops the service. No threads here: a fake clock drives it in tests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from edge.errors import EdgeError
from edge.lifecycle import Clock, SystemClock
from edge.scan.engine import EngineState, ScanEngine
from edge.service.state import LastError
from hal.errors import HalError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Bounds of the retry delay after an instrument fault, s.
FAULT_RETRY_MIN_S = 1.0
FAULT_RETRY_MAX_S = 60.0


class Backoff:
    """A delay that doubles after each failure, from *min_s* up to *max_s*; reset on success."""

    def __init__(self, min_s: float = FAULT_RETRY_MIN_S, max_s: float = FAULT_RETRY_MAX_S) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"bad backoff bounds: {min_s} .. {max_s}")
        self.min_s = float(min_s)
        self.max_s = float(max_s)
        self.delay = self.min_s

    def __repr__(self) -> str:
        return f"<Backoff {self.delay:g} s ({self.min_s:g} .. {self.max_s:g})>"

    def failed(self) -> float:
        """The delay before the next try after this failure (the following one doubles)."""
        delay = self.delay
        self.delay = min(self.max_s, delay * 2)
        return delay

    def reset(self) -> None:
        """Back to the shortest delay."""
        self.delay = self.min_s


class InstrumentSupervisor:
    """Owns the :class:`ScanEngine` that *factory* opens, and its faults.

    :meth:`engine`, :meth:`fault` and :meth:`close` belong to the scan worker's thread (the
    one user of the instrument); the read-only state (:attr:`fault_text`, :meth:`retry_due`,
    :meth:`state`, :meth:`identity`) may be read from any thread.

    *on_fault(first)* runs on every fault (*first*: the instrument was fine until now);
    *on_recover()* once the engine opens again after a fault.
    """

    def __init__(
        self,
        factory: Callable[[], ScanEngine],
        *,
        errors: LastError,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._factory = factory
        self._errors = errors
        self.clock = clock or SystemClock()
        self.backoff = backoff or Backoff()
        self._engine: ScanEngine | None = None
        self._fault: str | None = None
        self._next_retry = 0.0
        self._lock = threading.Lock()
        #: Faults since start (every one, not only the first of a run).
        self.faults = 0
        self.on_fault: list[Callable[[bool], None]] = []
        self.on_recover: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        state = (
            f"faulted ({self._fault})" if self._fault else ("open" if self._engine else "closed")
        )
        return f"<InstrumentSupervisor {state}>"

    # -- read from any thread ----------------------------------------------------------------

    @property
    def fault_text(self) -> str | None:
        """The current fault (``Type: message``), None while the instrument is fine."""
        return self._fault

    @property
    def faulted(self) -> bool:
        """An instrument fault is outstanding."""
        return self._fault is not None

    def retry_due(self) -> bool:
        """Faulted, and the backoff delay since the last try has passed."""
        with self._lock:
            return self._fault is not None and self.clock.monotonic() >= self._next_retry

    def seconds_to_retry(self) -> float | None:
        """Seconds until :meth:`retry_due` (0 when due), None when not faulted."""
        with self._lock:
            if self._fault is None:
                return None
            return max(0.0, self._next_retry - self.clock.monotonic())

    def retry_requested(self) -> None:
        """A reopen was queued: the next one is due after the current delay, not at once."""
        with self._lock:
            self._next_retry = self.clock.monotonic() + self.backoff.delay

    def state(self) -> EngineState | None:
        """Temperature and background age, or None (no engine, or it would not say)."""
        return self._ask("engine state", lambda engine: engine.state())

    def identification(self) -> dict[str, Any] | None:
        """What identification runs on (``health.identification``), or None."""
        return self._ask("identification status", lambda engine: engine.identification())

    def identity(self) -> dict[str, Any] | None:
        """The instrument's identity for ``info``, or None."""
        return self._ask("instrument identity", lambda engine: engine.identity())

    def _ask(self, what: str, question: Callable[[ScanEngine], T]) -> T | None:
        """*question* put to the open engine, best effort: None without an engine or when it
        fails (a fault shows on the next scan)."""
        engine = self._engine
        if engine is None:
            return None
        try:
            return question(engine)
        except Exception as err:
            log.debug("%s unavailable: %s", what, err)
            return None

    # -- the scan worker's side --------------------------------------------------------------

    def engine(self) -> ScanEngine | None:
        """The open engine, opening it when needed; None (a fault) when it will not open."""
        if self._engine is not None:
            return self._engine
        try:
            engine = self._factory()
        except (HalError, EdgeError, OSError) as err:
            self.fault(err)
            return None
        self._engine = engine
        if self._fault is not None:
            log.info("instrument back after fault: %s", self._fault)
            with self._lock:
                self._fault = None
                self.backoff.reset()
            for callback in self.on_recover:
                callback()
        return engine

    def fault(self, err: BaseException) -> None:
        """Record an instrument fault: close the engine, schedule a retry, tell listeners."""
        text = f"{type(err).__name__}: {err}"
        with self._lock:
            first = self._fault is None
            self._fault = text
            self.faults += 1
            self._next_retry = self.clock.monotonic() + self.backoff.failed()
        self._errors.record(f"instrument: {text}", loud=first)
        self.close()
        for callback in self.on_fault:
            callback(first)

    def close(self) -> None:
        """Release the instrument (a later :meth:`engine` opens it again); idempotent."""
        engine, self._engine = self._engine, None
        if engine is not None:
            try:
                engine.close()
            except Exception as err:
                log.warning("closing the instrument failed: %s", err)

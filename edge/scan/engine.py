"""What the service needs from the instrument and identification: the scan engine seam.

The service drives a :class:`ScanEngine`; :class:`edge.scan.pipeline.ScanPipeline` is the real
one (instrument driver + identification). Tests drive the service with their own engine, so
the service's state machine, MQTT and archive are tested without the instrument stack and
vice versa. The seam belongs to the scan package: the service imports it, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from edge.scan.data import ScanData


@dataclass(frozen=True)
class EngineState:
    """Instrument state for ``health``."""

    temperature_c: float | None
    background_age_s: float | None


class ScanEngine(Protocol):
    """Instrument + identification, driven by the service's one scan worker thread.

    Errors from the hardware are :class:`~hal.errors.HalError`; the service treats them as
    an instrument fault (error light, retried later), never as fatal.
    """

    def identity(self) -> dict[str, Any] | None:
        """Instrument identity for ``info`` (model, serial, firmware, pixels, bits)."""
        ...

    def state(self) -> EngineState:
        """Temperature and background age now (cheap; called for every health message)."""
        ...

    def identification(self) -> dict[str, Any] | None:
        """What identification runs on, for ``health.identification``: library and model
        versions and where the calibration comes from (None when not known)."""
        ...

    def take_background(self) -> dict[str, float]:
        """Take a new background (and dark) reading of the crystal; returns quality metrics."""
        ...

    def scan(self, reference: str | None = None) -> ScanData:
        """Acquire and identify what lies on the crystal; *reference* (the consignment) goes
        with the scan to the archive and the outbox."""
        ...

    def close(self) -> None:
        """Release the instrument; idempotent."""
        ...

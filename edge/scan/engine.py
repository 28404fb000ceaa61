"""What the service needs from the instrument and identification: the scan engine seam.

The service drives a :class:`ScanEngine`; :func:`open_engine` builds the real one from the
instrument driver (``edge.scan.opener``) and the identification pipeline (``edge.scan.pipeline``).
Tests drive the service with their own engine, so the service's state machine, MQTT and
archive are tested without the instrument stack and vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge.identify.result import Identification

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EngineScan:
    """One finished scan: the decision and the spectra to archive.

    ``wavenumbers``/``spectrum`` are the processed spectrum (absorbance on the library
    grid); ``raw_wavenumbers`` and ``sample``/``background``/``dark`` the detector counts.
    """

    identification: Identification
    wavenumbers: FloatArray
    spectrum: FloatArray
    raw_wavenumbers: FloatArray | None = None
    sample: FloatArray | None = None
    background: FloatArray | None = None
    dark: FloatArray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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

    def take_background(self) -> dict[str, float]:
        """Take a new background (and dark) reading; returns quality metrics."""
        ...

    def scan(self, sample: str | None = None) -> EngineScan:
        """Acquire and identify what is on the crystal.

        *sample* tells a simulated instrument what lies on its crystal (``NAME[:FRACTION],...``);
        a real instrument ignores it.
        """
        ...

    def close(self) -> None:
        """Release the instrument; idempotent."""
        ...

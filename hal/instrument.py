"""What every spectrometer driver offers: the SPI driver, the replay driver, any future one.

``edge`` depends on this interface only, never on a concrete driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class InstrumentIdentity:
    """Who the instrument says it is."""

    model: str
    serial: str
    firmware: str
    pixels: int
    bits: int


@dataclass(frozen=True)
class Frame:
    """One reading: co-added detector counts per pixel, with its context.

    ``counts`` is the mean over co-added scans (float64, ADC units). ``dark`` tells whether it
    was taken with the source off. ``saturated`` counts pixels that hit full scale in any scan.
    """

    counts: npt.NDArray[np.float64]
    wavenumbers: npt.NDArray[np.float64]
    sequence: int
    integration_ms: float
    coadds: int
    temperature_c: float
    dark: bool
    saturated: int
    full_scale: float


@runtime_checkable
class Instrument(Protocol):
    """A spectrometer: configure, take frames, close. A context manager; close is idempotent."""

    @property
    def identity(self) -> InstrumentIdentity: ...

    def wavenumbers(self) -> npt.NDArray[np.float64]:
        """Wavenumber of each pixel, cm^-1, from the calibration stored on the device."""
        ...

    def temperature_c(self) -> float:
        """Detector temperature now, deg C."""
        ...

    def configure(self, integration_ms: float, coadds: int) -> None:
        """Set integration time and co-adds for the following frames."""
        ...

    def acquire(self, dark: bool = False) -> Frame:
        """Take one co-added frame; ``dark=True`` turns the source off for it."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Instrument: ...

    def __exit__(self, *exc: object) -> None: ...

"""One measurement: dark + background (empty crystal) + sample -> absorbance.

The background is kept with its time and temperature (:class:`Background`) so callers can judge
when it is too old or too far from the current detector temperature and take a new one (on the
box: a long press of the scan button with a clean crystal). The functions here only drive the
instrument; what lies on the crystal is the officer's business. A complete reading
(:func:`acquire_measurement`) asks an :class:`Officer` to clean the crystal before the
background and to place the sample after it: a person prompted at a terminal on real
hardware, or :class:`SimulatedOfficer` working the instrument's sample handler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.preprocess.raw import absorbance_from_counts
from edge.scan.opener import SampleHandler
from hal.instrument import Frame, Instrument

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Background:
    """A single-beam reading of the empty crystal with its own dark frame."""

    frame: Frame
    dark: Frame
    taken_at: float  # wall-clock time, s since the epoch

    @property
    def temperature_c(self) -> float:
        """Detector temperature when it was taken."""
        return self.frame.temperature_c

    def age_s(self, now: float | None = None) -> float:
        """Seconds since it was taken."""
        return (time.time() if now is None else now) - self.taken_at

    def is_stale(
        self, temperature_c: float, max_age_s: float, max_delta_c: float, now: float | None = None
    ) -> bool:
        """True when older than *max_age_s* or more than *max_delta_c* away in temperature."""
        return self.age_s(now) > max_age_s or abs(temperature_c - self.temperature_c) > max_delta_c


@dataclass(frozen=True)
class Measurement:
    """Absorbance of the sample on the instrument's own axis, with the frames behind it."""

    wavenumbers: FloatArray
    absorbance: FloatArray
    sample: Frame
    dark: Frame
    background: Background
    taken_at: float

    @property
    def saturated(self) -> int:
        """Saturated pixels in the sample or the background frame."""
        return max(self.sample.saturated, self.background.frame.saturated)


class Officer(Protocol):
    """The person at the box during a complete reading."""

    def clean_crystal(self) -> None:
        """Make sure nothing is on the crystal (before the background)."""
        ...

    def place_sample(self) -> None:
        """Put the sample on the crystal (after the background)."""
        ...


class SimulatedOfficer:
    """An officer simulated through an instrument's sample handler: clears the crystal, then
    places *spec* (None: leaves it as it is)."""

    def __init__(self, samples: SampleHandler, spec: str | None = None) -> None:
        if spec:
            samples.check(spec)  # fail before any frame is taken
        self.samples = samples
        self.spec = spec

    def clean_crystal(self) -> None:
        """Take everything off the crystal."""
        self.samples.clear()

    def place_sample(self) -> None:
        """Place the sample."""
        self.samples.place(self.spec)


def take_background(
    instrument: Instrument, *, wall_clock: Callable[[], float] = time.time
) -> Background:
    """Dark frame, then the crystal as it is (clean, for a meaningful background)."""
    dark = instrument.acquire(dark=True)
    frame = instrument.acquire()
    return Background(frame=frame, dark=dark, taken_at=wall_clock())


def measure(
    instrument: Instrument,
    background: Background,
    *,
    dark: Frame | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> Measurement:
    """Dark frame, then the crystal as it is (the sample on it) -> absorbance.

    T = (S - D_s) / (B - D_b): each single beam loses its own dark, so a background taken at
    another temperature (another dark level) still ratios correctly. *dark* reuses a dark
    frame taken moments ago under the same settings instead of taking a new one.
    """
    if dark is None:
        dark = instrument.acquire(dark=True)
    sample = instrument.acquire()
    if sample.counts.shape != background.frame.counts.shape:
        raise ValueError(
            f"sample has {sample.counts.size} pixels, background {background.frame.counts.size}"
        )
    corrected = sample.counts - dark.counts + background.dark.counts
    absorbance = absorbance_from_counts(corrected, background.frame.counts, background.dark.counts)
    return Measurement(
        wavenumbers=sample.wavenumbers,
        absorbance=absorbance,
        sample=sample,
        dark=dark,
        background=background,
        taken_at=wall_clock(),
    )


def acquire_measurement(
    instrument: Instrument,
    officer: Officer | None = None,
    background: Background | None = None,
) -> Measurement:
    """One complete reading: a new background unless one is given, then the sample.

    *officer* (when given) cleans the crystal before the background and places the sample
    after it. A background taken here lends its dark frame to the sample (same settings,
    seconds apart).
    """
    if background is None:
        if officer is not None:
            officer.clean_crystal()
        background = take_background(instrument)
        if officer is not None:
            officer.place_sample()
        return measure(instrument, background, dark=background.dark)
    if officer is not None:
        officer.place_sample()
    return measure(instrument, background)

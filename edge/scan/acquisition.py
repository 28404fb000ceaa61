"""One measurement: dark + background (empty crystal) + sample -> absorbance.

The background is kept with its time and temperature (:class:`Background`) so callers can judge
when it is too old or too far from the current detector temperature and take a new one (on the
box: a long press of the scan button with a clean crystal). Where a :class:`SampleHandler`
exists (simulator stage, replay switch) it empties the crystal and places the sample; on real
hardware it is None and the officer does both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

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


def take_background(
    instrument: Instrument,
    handler: SampleHandler | None = None,
    *,
    wall_clock: Callable[[], float] = time.time,
) -> Background:
    """Dark frame, then the empty crystal (emptied by *handler* when there is one)."""
    if handler is not None:
        handler.clear()
    dark = instrument.acquire(dark=True)
    frame = instrument.acquire()
    return Background(frame=frame, dark=dark, taken_at=wall_clock())


def measure(
    instrument: Instrument,
    background: Background,
    handler: SampleHandler | None = None,
    *,
    dark: Frame | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> Measurement:
    """Dark frame, then the sample (placed by *handler* when there is one) -> absorbance.

    T = (S - D_s) / (B - D_b): each single beam loses its own dark, so a background taken at
    another temperature (another dark level) still ratios correctly. *dark* reuses a dark
    frame taken moments ago under the same settings instead of taking a new one.
    """
    if dark is None:
        dark = instrument.acquire(dark=True)
    if handler is not None:
        handler.load()
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
    handler: SampleHandler | None = None,
    background: Background | None = None,
) -> Measurement:
    """One complete reading: a new background unless one is given, then the sample.

    A background taken here lends its dark frame to the sample (same settings, seconds apart).
    """
    if background is None:
        background = take_background(instrument, handler)
        return measure(instrument, background, handler, dark=background.dark)
    return measure(instrument, background, handler)

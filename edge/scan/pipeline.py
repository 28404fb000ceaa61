"""The scan pipeline: instrument -> measurement -> quality gates -> identification.

One implementation for the CLI (``spectra-edge scan``, via :func:`run_scan`) and the service
(:class:`ScanPipeline` is a :class:`edge.scan.engine.ScanEngine`), so publishing only has
to add ``outbox.submit(...)`` around it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.config import Config
from edge.identify.identifier import Identifier
from edge.identify.result import Identification
from edge.identify.setup import build_identifier
from edge.preprocess.quality import QualityLimits, QualityReport, check_quality
from edge.scan.acquisition import Background, Measurement, measure, take_background
from edge.scan.engine import EngineScan, EngineState
from edge.scan.opener import open_instrument, sample_handler
from hal.instrument import Instrument

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ScanOutcome:
    """One scan: the decision, the measurement behind it, and the operator's reference."""

    identification: Identification
    measurement: Measurement
    quality: QualityReport
    grid: FloatArray
    spectrum: FloatArray  # absorbance resampled to the library grid
    reference: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_engine_scan(self) -> EngineScan:
        """The service's view of this scan (processed spectrum plus raw counts)."""
        m = self.measurement
        return EngineScan(
            identification=self.identification,
            wavenumbers=self.grid,
            spectrum=self.spectrum,
            raw_wavenumbers=np.asarray(m.wavenumbers, dtype=np.float64),
            sample=m.sample.counts,
            background=m.background.frame.counts,
            dark=m.dark.counts,
            extra=dict(self.extra),
        )


class ScanPipeline:
    """An open instrument, its current background and an :class:`Identifier`.

    Keeps the first background of the session as the reference its successors are compared
    with (``background_mismatch``: the crystal was not clean or the optics changed).
    """

    def __init__(
        self,
        instrument: Instrument,
        identifier: Identifier,
        *,
        limits: QualityLimits | None = None,
    ) -> None:
        self.instrument = instrument
        self.identifier = identifier
        self.limits = limits or QualityLimits()
        self.background: Background | None = None
        self.reference_background: FloatArray | None = None
        self._closed = False

    @classmethod
    def open(cls, cfg: Config) -> ScanPipeline:
        """Instrument and identifier as *cfg* names them."""
        identifier = build_identifier(
            cfg.identify.library, cfg.identify.model, top_k=cfg.identify.top_k
        )
        instrument = open_instrument(cfg.instrument, library_path=cfg.identify.library)
        limits = QualityLimits(
            max_background_age_s=cfg.identify.background_max_age_s,
            min_background_similarity=cfg.identify.background_min_similarity,
        )
        return cls(instrument, identifier, limits=limits)

    def identity(self) -> dict[str, Any] | None:
        """Instrument identity for ``info``."""
        ident = self.instrument.identity
        return {
            "model": ident.model,
            "serial": ident.serial,
            "firmware": ident.firmware,
            "pixels": ident.pixels,
            "bits": ident.bits,
        }

    def state(self) -> EngineState:
        """Temperature and background age now."""
        age = self.background.age_s() if self.background is not None else None
        return EngineState(temperature_c=self.instrument.temperature_c(), background_age_s=age)

    def take_background(self) -> dict[str, float]:
        """New dark + background with an empty crystal; returns its metrics."""
        self.background = take_background(self.instrument, sample_handler(self.instrument))
        counts = self.background.frame.counts
        if self.reference_background is None:
            self.reference_background = counts.copy()
        full = self.background.frame.full_scale
        return {
            "background_level": float(np.percentile(counts, 90) / full) if full else 0.0,
            "saturated": float(self.background.frame.saturated),
            "temperature_c": float(self.background.temperature_c),
        }

    def scan_outcome(self, sample: str | None = None, reference: str | None = None) -> ScanOutcome:
        """Acquire (taking a background first when there is none) and identify."""
        if self.background is None:
            self.take_background()
        assert self.background is not None
        handler = sample_handler(self.instrument, sample)
        m = measure(self.instrument, self.background, handler)
        report = check_quality(
            m.wavenumbers,
            m.absorbance,
            sample_counts=m.sample.counts,
            background_counts=m.background.frame.counts,
            full_scale=m.sample.full_scale,
            background_age_s=m.background.age_s(m.taken_at),
            reference_background=self.reference_background,
            grid_range=(
                float(self.identifier.prepared.grid[0]),
                float(self.identifier.prepared.grid[-1]),
            ),
            limits=self.limits,
        )
        result = self.identifier.identify(m.wavenumbers, m.absorbance, quality=report)
        grid = self.identifier.library.grid
        order = np.argsort(m.wavenumbers)
        spectrum = np.interp(grid, m.wavenumbers[order], m.absorbance[order])
        extra = {"sample": sample} if sample else {}
        return ScanOutcome(result, m, report, grid, spectrum, reference, extra)

    def scan(self, sample: str | None = None) -> EngineScan:
        """The service's call: acquire and identify."""
        return self.scan_outcome(sample).to_engine_scan()

    def close(self) -> None:
        """Release the instrument; idempotent."""
        if not self._closed:
            self._closed = True
            self.instrument.close()

    def __enter__(self) -> ScanPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_scan(cfg: Config, sample: str | None = None, reference: str | None = None) -> ScanOutcome:
    """One complete scan on the configured instrument: background, sample, decision."""
    t0 = time.perf_counter()
    with ScanPipeline.open(cfg) as pipe:
        outcome = pipe.scan_outcome(sample, reference)
    outcome.extra["seconds"] = round(time.perf_counter() - t0, 3)
    return outcome

"""The scan pipeline: instrument -> measurement -> quality gates -> identification.

One implementation for the CLI (``spectra-edge scan``, via :func:`run_scan`) and the service
(:class:`ScanPipeline` is a :class:`edge.scan.engine.ScanEngine`); both get a
:class:`~edge.scan.data.ScanData`, so publishing only has to add ``outbox.submit(...)``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.config import Config
from edge.identify.identifier import Identifier
from edge.identify.setup import build_identifier
from edge.preprocess.quality import QualityLimits, check_quality
from edge.scan.acquisition import Background, SimulatedOfficer, measure, take_background
from edge.scan.data import ScanData
from edge.scan.engine import EngineState
from edge.scan.opener import SampleError, SampleHandler, open_instrument
from hal.instrument import Instrument

FloatArray = npt.NDArray[np.float64]


class ScanPipeline:
    """An open instrument, its current background and an :class:`Identifier`.

    Keeps the first background of the session as the reference its successors are compared
    with (``background_mismatch``: the crystal was not clean or the optics changed).
    *samples* is the instrument's sample handler (None on real hardware), kept for whoever
    simulates the officer; the pipeline itself never changes what lies on the crystal.
    """

    def __init__(
        self,
        instrument: Instrument,
        identifier: Identifier,
        *,
        limits: QualityLimits | None = None,
        samples: SampleHandler | None = None,
    ) -> None:
        self.instrument = instrument
        self.identifier = identifier
        self.limits = limits or QualityLimits()
        self.samples = samples
        self.background: Background | None = None
        self.reference_background: FloatArray | None = None
        self._closed = False

    @classmethod
    def open(cls, cfg: Config) -> ScanPipeline:
        """Instrument (with its sample handler) and identifier as *cfg* names them."""
        identifier = build_identifier(
            cfg.identify.library, cfg.identify.model, top_k=cfg.identify.top_k
        )
        instrument, samples = open_instrument(cfg.instrument, library_path=cfg.identify.library)
        limits = QualityLimits(
            max_background_age_s=cfg.identify.background_max_age_s,
            min_background_similarity=cfg.identify.background_min_similarity,
        )
        return cls(instrument, identifier, limits=limits, samples=samples)

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

    def identification(self) -> dict[str, Any] | None:
        """Library and model versions and the calibration's source, for ``health``."""
        status = self.identifier.calibration_status
        return {
            **self.identifier.versions,
            "calibration": status["source"],
            "calibration_matches_library": status["matches_library"],
        }

    def state(self) -> EngineState:
        """Temperature and background age now."""
        age = self.background.age_s() if self.background is not None else None
        return EngineState(temperature_c=self.instrument.temperature_c(), background_age_s=age)

    def take_background(self) -> dict[str, float]:
        """New dark + background of the crystal as it is (clean); returns its metrics."""
        self.background = take_background(self.instrument)
        counts = self.background.frame.counts
        if self.reference_background is None:
            self.reference_background = counts.copy()
        full = self.background.frame.full_scale
        return {
            "background_level": float(np.percentile(counts, 90) / full) if full else 0.0,
            "saturated": float(self.background.frame.saturated),
            "temperature_c": float(self.background.temperature_c),
        }

    def scan(self, reference: str | None = None) -> ScanData:
        """Acquire what lies on the crystal and identify it (taking a background of the
        crystal as it is first when there is none yet)."""
        if self.background is None:
            self.take_background()
        assert self.background is not None
        m = measure(self.instrument, self.background)
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
        return ScanData(
            wavenumbers=grid,
            spectrum=spectrum,
            identification=result,
            quality=report,
            raw_wavenumbers=np.asarray(m.wavenumbers, dtype=np.float64),
            sample=m.sample.counts,
            background=m.background.frame.counts,
            dark=m.dark.counts,
            reference=reference,
        )

    def close(self) -> None:
        """Release the instrument; idempotent."""
        if not self._closed:
            self._closed = True
            self.instrument.close()

    def __enter__(self) -> ScanPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_scan(cfg: Config, sample: str | None = None, reference: str | None = None) -> ScanData:
    """One complete scan on the configured instrument, as ``spectra-edge scan`` runs it:
    a background of the clean crystal, then the sample, then the decision.

    *sample* (simulator only, ``NAME[:FRACTION],...``) is what the simulated officer places
    through the instrument's sample handler between the two; :class:`SampleError` when it
    cannot be placed (checked before any frame is taken).
    """
    t0 = time.perf_counter()
    with ScanPipeline.open(cfg) as pipe:
        if sample and pipe.samples is None:
            raise SampleError(
                f"a sample can only be placed on a simulated instrument (driver "
                f"{cfg.instrument.driver!r}); put it on the crystal by hand"
            )
        if pipe.samples is not None:
            officer = SimulatedOfficer(pipe.samples, sample)
            officer.clean_crystal()
            pipe.take_background()
            officer.place_sample()
        data = pipe.scan(reference)
    return replace(data, extra={**data.extra, "seconds": round(time.perf_counter() - t0, 3)})

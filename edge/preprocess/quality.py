"""Quality gates: decide whether a measured spectrum is fit to identify.

Each failed gate adds a stable reason code (these strings are part of the MQTT contract):

- ``saturated``: too many detector pixels at ADC full scale (sample or background), or an
  absorbance so high that no light came back (or the file's y units are wrong).
- ``low_signal``: the background single-beam signal is too weak, or no band stands out of an
  absorbance noise above ``max_noise``.
- ``no_sample``: the crystal is empty: no band stands out of the spectrum's own noise by
  ``min_sample_snr`` in the regions free of atmospheric lines (the residual water vapour and
  CO2 of a drifting background are not a sample). Relative to the noise, not a fixed
  absorbance: a weak but clean spectrum is a sample.
- ``spike``: a spike that cannot be repaired on the native axis (:mod:`edge.preprocess.spikes`).
- ``out_of_range``: the spectrum covers too little of the library grid (or wrong x units).
- ``background_old``: the background was taken too long ago.
- ``background_mismatch``: the background differs in shape from the reference background.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.preprocess.spectral import remove_baseline, savgol, sort_and_clean
from edge.preprocess.spikes import find_spikes, repair_spikes

FloatArray = npt.NDArray[np.float64]

SATURATED = "saturated"
LOW_SIGNAL = "low_signal"
NO_SAMPLE = "no_sample"
OUT_OF_RANGE = "out_of_range"
BACKGROUND_OLD = "background_old"
BACKGROUND_MISMATCH = "background_mismatch"
SPIKE = "spike"
REASONS = (
    SATURATED,
    LOW_SIGNAL,
    NO_SAMPLE,
    OUT_OF_RANGE,
    SPIKE,
    BACKGROUND_OLD,
    BACKGROUND_MISMATCH,
)

#: Regions without atmospheric lines (cm-1): where the band strength of a sample is measured.
#: Water vapour fills 1350-1950 and 3500-3950, CO2 2280-2400; nearly every substance has bands
#: in the fingerprint below 1350 or the C-H/N-H/O-H stretches below 3500.
CLEAN_REGIONS = ((600.0, 1350.0), (1950.0, 2280.0), (2400.0, 3500.0))


@dataclass(frozen=True)
class QualityLimits:
    """Thresholds of the gates (defaults suit a 16-bit diamond-ATR module)."""

    max_saturated_fraction: float = 0.002
    min_background_fraction: float = 0.05
    #: Absorbance noise (one point's sigma) above which a spectrum without bands standing out
    #: of it is too noisy to tell (``low_signal``) rather than empty (``no_sample``).
    max_noise: float = 0.01
    #: Band strength over noise below which the crystal counts as empty.
    min_sample_snr: float = 10.0
    #: Absolute floor (absorbance) under which nothing is a sample, whatever the noise.
    min_band_absorbance: float = 1e-4
    max_background_age_s: float = 3600.0
    min_background_similarity: float = 0.98
    max_absorbance: float = 4.0
    min_grid_coverage: float = 0.5


@dataclass(frozen=True)
class QualityReport:
    """Outcome of the gates: ``ok`` when no reason; ``metrics`` for the record."""

    reasons: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every gate passed."""
        return not self.reasons

    @property
    def reason(self) -> str | None:
        """The first (most fundamental) reason, or None."""
        return self.reasons[0] if self.reasons else None


def noise_sigma(values: FloatArray) -> float:
    """Robust white-noise estimate: MAD of second differences, scaled to one point's sigma."""
    d2 = np.diff(np.asarray(values, dtype=np.float64), n=2)
    if d2.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0))


def band_strength(
    wavenumbers: npt.ArrayLike,
    absorbance: npt.ArrayLike,
    regions: tuple[tuple[float, float], ...] | None = CLEAN_REGIONS,
) -> float:
    """Robust height of the absorption bands above the baseline (99.5th minus 50th percentile),
    over *regions* (None: everywhere; falls back to everywhere when they hold too few points)."""
    x, y = sort_and_clean(wavenumbers, absorbance)
    if x.size < 15:
        return float(np.ptp(y))
    factor = x.size // 1000 + 1  # long spectra: box-average to <= 1000 points first (speed)
    if factor > 1:
        m = x.size // factor * factor
        x = x[:m].reshape(-1, factor).mean(axis=1)
        y = y[:m].reshape(-1, factor).mean(axis=1)
    flat = remove_baseline(x, y, "asls", lam=1e6, p=0.01, max_iter=20)
    smooth = savgol(flat, 7, 2)
    if regions is not None:
        inside = np.zeros(x.size, dtype=bool)
        for lo, hi in regions:
            inside |= (x >= lo) & (x <= hi)
        if inside.sum() >= 15:
            smooth = smooth[inside]
    return float(np.percentile(smooth, 99.5) - np.percentile(smooth, 50))


def background_similarity(background: npt.ArrayLike, reference: npt.ArrayLike) -> float:
    """Pearson correlation of two single-beam backgrounds (1.0: same shape)."""
    a = np.asarray(background, dtype=np.float64).ravel()
    b = np.asarray(reference, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def check_quality(
    wavenumbers: npt.ArrayLike,
    absorbance: npt.ArrayLike,
    *,
    sample_counts: npt.ArrayLike | None = None,
    background_counts: npt.ArrayLike | None = None,
    full_scale: float | None = None,
    background_age_s: float | None = None,
    reference_background: npt.ArrayLike | None = None,
    grid_range: tuple[float, float] | None = None,
    limits: QualityLimits | None = None,
) -> QualityReport:
    """Run every gate that the given inputs allow; returns reasons in a fixed order.

    Only *wavenumbers* and *absorbance* are required (files carry nothing more); the raw
    counts, ADC full scale, background age, the reference background and the library's
    *grid_range* (cm^-1) enable the other gates.
    """
    lim = limits or QualityLimits()
    reasons: list[str] = []
    metrics: dict[str, float] = {}

    if full_scale is not None and full_scale > 0:
        worst = 0.0
        for counts in (sample_counts, background_counts):
            if counts is not None:
                c = np.asarray(counts, dtype=np.float64)
                worst = max(worst, float(np.mean(c >= 0.999 * full_scale)))
        metrics["saturated_fraction"] = worst
        if worst > lim.max_saturated_fraction:
            reasons.append(SATURATED)
        if background_counts is not None:
            level = float(np.percentile(np.asarray(background_counts, dtype=np.float64), 90))
            metrics["background_level"] = level / full_scale
            if level / full_scale < lim.min_background_fraction:
                reasons.append(LOW_SIGNAL)

    x, y = sort_and_clean(wavenumbers, absorbance)
    spikes = find_spikes(y, step=float(np.median(np.diff(x))) if x.size > 1 else 1.0, wavenumbers=x)
    metrics["spikes"] = float(len(spikes.repairable) + len(spikes.unrepairable))
    metrics["spikes_ambiguous"] = float(len(spikes.ambiguous))
    if spikes.unrepairable:
        reasons.append(SPIKE)
    y = repair_spikes(y, spikes)
    high = float(np.percentile(y, 99))
    metrics["absorbance_p99"] = high
    if high > lim.max_absorbance and SATURATED not in reasons:
        reasons.append(SATURATED)
    if grid_range is not None:
        lo, hi = grid_range
        overlap = max(0.0, min(hi, float(x[-1])) - max(lo, float(x[0])))
        metrics["grid_coverage"] = overlap / (hi - lo) if hi > lo else 0.0
        if metrics["grid_coverage"] < lim.min_grid_coverage:
            reasons.append(OUT_OF_RANGE)
    strength = band_strength(x, y)
    noise = noise_sigma(y)
    metrics["band_absorbance"] = strength
    metrics["noise"] = noise
    metrics["snr"] = strength / noise if noise > 0 else float("inf")
    if strength < max(lim.min_sample_snr * noise, lim.min_band_absorbance):
        # Nothing stands out of the noise: an empty crystal, or so much noise that a sample
        # could not show (then the light is the problem, not the crystal).
        if noise > lim.max_noise:
            if LOW_SIGNAL not in reasons:
                reasons.append(LOW_SIGNAL)
        else:
            reasons.append(NO_SAMPLE)

    if background_age_s is not None:
        metrics["background_age_s"] = float(background_age_s)
        if background_age_s > lim.max_background_age_s:
            reasons.append(BACKGROUND_OLD)
    if background_counts is not None and reference_background is not None:
        sim = background_similarity(background_counts, reference_background)
        metrics["background_similarity"] = sim
        if sim < lim.min_background_similarity:
            reasons.append(BACKGROUND_MISMATCH)

    order = {r: i for i, r in enumerate(REASONS)}
    return QualityReport(tuple(sorted(set(reasons), key=order.__getitem__)), metrics)

"""Spikes (cosmic rays, electrical glitches, a bad pixel) found and repaired on the native axis.

A spike must go before resampling: interpolation and the anti-aliasing box filter smear one bad
point over several grid points, where it looks like a band. On the native axis a spike is a
run of one or two points that stands out of a running median by far more than the noise while
its neighbours do not: a band is wider than the axis step and lifts its neighbours too.

- A run of at most ``max_width`` points whose outside neighbours rise less than a fifth as far
  stands *alone*. On a fine axis (step at most ``fine_step`` cm-1, where every band spans
  several points) it is a *repairable* spike, replaced by a straight line between the good
  points on either side (at an end of the spectrum, by the nearest good point), when it is
  a single point or stands out by more than the height of the whole rest of the spectrum.
- Any other lone run is *ambiguous*: on a coarse axis a narrow dominant band (a carbonyl
  sampled every 6 cm-1) has the same shape as a spike on top of a band, and no rule on one
  spectrum tells them apart. The identifier lets the library decide: it identifies the
  spectrum as it is and with the one, two or three most outstanding ambiguous runs repaired,
  and keeps the answer that matches best (:meth:`edge.identify.identifier.Identifier.analyse`).
- More than ``max_spikes`` spikes outside the water-vapour and CO2 regions (where residual
  gas lines of a high-resolution instrument look just like spikes, and are repaired
  harmlessly) cannot be repaired (a glitching detector: the repairs would rewrite the
  spectrum): the quality gate answers ``spike``
  (:mod:`edge.preprocess.quality`) rather than let them become a confident wrong answer.
  A wider artefact is indistinguishable from a band by its shape (real spectra hold single
  bands many times taller than the rest), so it is left to the identification, whose
  calibrated probabilities fall when the spectrum matches nothing well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import median_filter

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SpikeReport:
    """What :func:`find_spikes` found: repairable runs and runs it cannot repair."""

    repairable: tuple[tuple[int, int], ...] = ()  # (start, stop) index ranges, stop exclusive
    unrepairable: tuple[tuple[int, int], ...] = ()
    ambiguous: tuple[tuple[int, int], ...] = ()  # a spike or a narrow band (coarse axes)
    #: How far each ambiguous run stands out of the running median (absolute).
    ambiguous_peaks: tuple[float, ...] = ()

    def dominant(self, k: int) -> tuple[tuple[int, int], ...]:
        """The *k* ambiguous runs that stand out most."""
        ranked = sorted(zip(self.ambiguous_peaks, self.ambiguous, strict=True), reverse=True)
        return tuple(r for _, r in ranked[: max(k, 0)])


def _sigma(resid: FloatArray, y: FloatArray) -> float:
    """Robust scale of the residuals (never below the white-noise level of *y*)."""
    mad = float(np.median(np.abs(resid - np.median(resid))))
    d2 = np.diff(y, n=2)
    white = float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0)) if d2.size else 0.0
    span = float(np.percentile(y, 99) - np.percentile(y, 1)) if y.size else 0.0
    return max(1.4826 * mad, white, 1e-6 * max(span, 1e-3), 1e-12)


def _runs(flags: BoolArray) -> list[tuple[int, int]]:
    """Contiguous True runs as (start, stop) pairs."""
    if not flags.any():
        return []
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()
    return list(zip(starts, stops, strict=True))


def _standing_segments(
    resid: FloatArray, cand: npt.NDArray[np.intp], max_width: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """For each candidate, the first segment ``[start, stop)`` that stands alone: the point
    itself, else (with *max_width* 2) the pair with its larger neighbour; ``-1, -1`` when
    neither does. A segment stands alone when its points rise together (each at least a fifth
    of its peak, same direction) and the points just outside rise (same direction) less than a
    fifth as far. All candidates are tested at once, so only the few that can be spikes are
    visited one by one (on a band's flanks most points cannot)."""
    n = resid.size
    v = resid[cand]
    sign = np.sign(v)
    peak = np.abs(v)

    def below(idx: npt.NDArray[np.intp], limit: FloatArray) -> BoolArray:
        """resid at *idx* (same direction) stays under *limit*; outside the axis counts as
        under."""
        inside = (idx >= 0) & (idx < n)
        vals = resid[np.clip(idx, 0, n - 1)] * sign
        return ~inside | (vals < limit)

    single = below(cand - 1, 0.2 * peak) & below(cand + 1, 0.2 * peak)
    start = np.where(single, cand, -1)
    stop = np.where(single, cand + 1, -1)
    if max_width < 2:
        return start, stop
    prev = np.abs(resid[np.maximum(cand - 1, 0)])
    nxt = np.abs(resid[np.minimum(cand + 1, n - 1)])
    j = np.where((cand + 1 < n) & (nxt >= prev), cand + 1, cand - 1)
    p_start, p_stop = np.minimum(cand, j), np.maximum(cand, j) + 1
    ok = (p_start >= 0) & (p_stop <= n)
    jv = resid[np.clip(j, 0, n - 1)]
    pair_peak = np.maximum(peak, np.abs(jv))
    psign = np.where(np.abs(jv) > peak, np.sign(jv), sign)  # the sign of the pair's peak
    together = (v * psign >= 0.2 * pair_peak) & (jv * psign >= 0.2 * pair_peak)
    lo = resid[np.clip(p_start - 1, 0, n - 1)] * psign
    hi = resid[np.clip(p_stop, 0, n - 1)] * psign
    outside = ((p_start - 1 < 0) | (lo < 0.2 * pair_peak)) & (
        (p_stop >= n) | (hi < 0.2 * pair_peak)
    )
    pair = ~single & ok & together & outside
    return np.where(pair, p_start, start), np.where(pair, p_stop, stop)


def _height_without(y: FloatArray, start: int, stop: int) -> float:
    rest = np.concatenate((y[:start], y[stop:]))
    return float(np.percentile(rest, 99.5) - np.percentile(rest, 0.5))


#: Water vapour and CO2 line regions (cm-1).
ATMOSPHERIC = ((1300.0, 2000.0), (2250.0, 2400.0), (3450.0, 4000.0))


def _atmospheric(x: float) -> bool:
    return any(lo <= x <= hi for lo, hi in ATMOSPHERIC)


def find_spikes(
    values: npt.ArrayLike,
    *,
    step: float = 1.0,
    window: int = 9,
    threshold: float = 10.0,
    max_width: int = 2,
    max_spikes: int = 12,
    fine_step: float = 2.5,
    wavenumbers: npt.ArrayLike | None = None,
) -> SpikeReport:
    """Spikes in *values* (one spectrum on its native axis, in axis order, *step* cm-1 apart;
    with *wavenumbers*, spikes in the atmospheric regions do not count towards the limit).

    Outliers are examined largest first, so a spike on top of a band is found as the point (or
    pair) that stands out of the band, and the band's own top is left alone.
    """
    y = np.asarray(values, dtype=np.float64)
    n = y.size
    if n < max(window, 5) + 2:
        return SpikeReport()
    med = median_filter(y, size=max(int(window) | 1, 5), mode="mirror")
    resid = y - med
    sigma = _sigma(resid, y)
    flags = np.abs(resid) > threshold * sigma
    fine = step <= fine_step
    taken = np.zeros(n, dtype=bool)
    repairable: list[tuple[int, int]] = []
    ambiguous: list[tuple[int, int]] = []
    amb_peaks: dict[tuple[int, int], float] = {}
    cand = np.flatnonzero(flags)
    if cand.size:
        # A point whose neighbours both rise above half of it is a band top: skip it early.
        mag = np.abs(resid[cand])
        sign = np.sign(resid[cand])
        left = resid[np.maximum(cand - 1, 0)] * sign
        right = resid[np.minimum(cand + 1, n - 1)] * sign
        cand = cand[(np.minimum(left, right) < 0.5 * mag)]
    seg_start, seg_stop = _standing_segments(resid, cand, max_width)
    alone = seg_start >= 0
    segments = zip(
        cand[alone].tolist(), seg_start[alone].tolist(), seg_stop[alone].tolist(), strict=True
    )
    for i, start, stop in sorted(segments, key=lambda t: -abs(resid[t[0]])):
        if taken[i]:
            continue
        peak = float(np.max(np.abs(resid[start:stop])))
        if fine and (stop - start == 1 or peak > _height_without(y, start, stop)):
            repairable.append((start, stop))
        else:
            ambiguous.append((start, stop))
            amb_peaks[(start, stop)] = peak
        taken[max(start - 1, 0) : stop + 1] = True
    counted = repairable
    if wavenumbers is not None:
        x = np.asarray(wavenumbers, dtype=np.float64)
        counted = [r for r in repairable if not _atmospheric(float(x[r[0]]))]
    if len(counted) > max_spikes:
        return SpikeReport((), tuple(sorted(repairable)))
    amb = tuple(sorted(ambiguous))
    return SpikeReport(tuple(sorted(repairable)), (), amb, tuple(amb_peaks[r] for r in amb))


def repair_spikes(values: npt.ArrayLike, report: SpikeReport, ambiguous: int = 0) -> FloatArray:
    """A copy of *values* with each repairable run (and the *ambiguous* most outstanding
    ambiguous ones) bridged by a straight line."""
    y = np.asarray(values, dtype=np.float64).copy()
    n = y.size
    runs = report.repairable + report.dominant(ambiguous)
    for start, stop in runs:
        left, right = start - 1, stop
        if left < 0 and right >= n:
            continue
        if left < 0:
            y[start:stop] = y[right]
        elif right >= n:
            y[start:stop] = y[left]
        else:
            t = (np.arange(start, stop) - left) / (right - left)
            y[start:stop] = y[left] + t * (y[right] - y[left])
    return y


def remove_spikes_native(
    wavenumbers: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    window: int = 9,
    threshold: float = 10.0,
    max_width: int = 2,
    ambiguous: int = 0,
) -> tuple[FloatArray, FloatArray, SpikeReport]:
    """Sort *values* by wavenumber, find spikes and repair the repairable ones (and the
    *ambiguous* most outstanding ambiguous ones).

    Returns ``(wavenumbers, repaired values, report)`` on the sorted, cleaned native axis.
    """
    from edge.preprocess.spectral import sort_and_clean

    x, y = sort_and_clean(wavenumbers, values)
    step = float(np.median(np.diff(x)))
    report = find_spikes(
        y, step=step, window=window, threshold=threshold, max_width=max_width, wavenumbers=x
    )
    return x, repair_spikes(y, report, ambiguous), report

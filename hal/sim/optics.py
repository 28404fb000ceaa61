"""Optical and electronic model of an ATR mid-IR module (about 650-4000 cm^-1).

counts = dark(t, T) + G * t * source(nu) * detector(nu) * crystal(nu) * 10^-(A_atm + A_sample)
plus shot and read noise, co-added, through a 16-bit ADC that saturates at 65535.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
C2_CM_K = 1.4388  # second radiation constant, cm K
FULL_SCALE = 65535.0


@dataclass(frozen=True)
class OpticsParams:
    """Tunable constants of the instrument model."""

    source_temperature_k: float = 1200.0
    peak_counts_at_ref: float = 0.55 * FULL_SCALE  # brightest pixel, empty crystal, t_ref
    reference_integration_ms: float = 50.0
    electrons_per_count: float = 4.0  # shot noise: var = signal / gain (in counts)
    read_noise_counts: float = 3.0
    dark_offset_counts: float = 1500.0
    dark_rate_counts_per_ms: float = 1.5  # at 25 deg C
    dark_doubling_c: float = 7.0  # dark current doubles every 7 deg C
    drift_cm1_per_c: float = 0.05  # wavelength calibration drift with temperature
    calibration_temperature_c: float = 25.0
    humidity: float = 0.04  # peak absorbance of the residual water-vapour lines
    co2: float = 0.06  # peak absorbance of the residual CO2 bands


def throughput(nu: FloatArray, p: OpticsParams) -> FloatArray:
    """Source (blackbody), detector and diamond-crystal response, peak-normalised to 1."""
    planck = nu**3 / np.expm1(C2_CM_K * nu / p.source_temperature_k)
    detector = 1.0 - np.exp(-(nu - 560.0) / 140.0).clip(max=1.0)  # pyroelectric roll-off
    diamond = 1.0 - 0.55 * np.exp(-0.5 * ((nu - 2100.0) / 190.0) ** 2)  # two-phonon band
    t = planck * detector.clip(min=0.0) * diamond
    return np.asarray(t / t.max(), dtype=np.float64)


def _lines(rng: np.random.Generator, lo: float, hi: float, n: int) -> FloatArray:
    return np.sort(rng.uniform(lo, hi, n))


class Atmosphere:
    """Residual water-vapour lines and CO2 bands in the beam path (fixed line list)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(7)  # the line list is part of the model, not the run
        self._h2o = np.concatenate([_lines(rng, 1350, 1950, 90), _lines(rng, 3550, 3950, 90)])
        self._h2o_s = rng.uniform(0.2, 1.0, self._h2o.size)

    def absorbance(self, nu: FloatArray, humidity: float, co2: float) -> FloatArray:
        """Absorbance of the path at *nu* for the given strengths."""
        a = np.zeros_like(nu)
        for centre, s in zip(self._h2o, self._h2o_s, strict=True):
            a += humidity * s / (1.0 + ((nu - centre) / 2.5) ** 2)
        for centre, w, s in ((2338.0, 9.0, 1.0), (2361.0, 9.0, 0.8), (667.0, 4.0, 0.7)):
            a += co2 * s * np.exp(-0.5 * ((nu - centre) / w) ** 2)
        return a


def dark_counts(integration_ms: float, temperature_c: float, p: OpticsParams) -> float:
    """Mean dark level of one scan, counts."""
    rate = p.dark_rate_counts_per_ms * 2.0 ** ((temperature_c - 25.0) / p.dark_doubling_c)
    return p.dark_offset_counts + rate * integration_ms


def render_scan_mean(
    nu_true: FloatArray,
    sample_absorbance: FloatArray,
    atmosphere_absorbance: FloatArray,
    *,
    integration_ms: float,
    coadds: int,
    temperature_c: float,
    source_on: bool,
    params: OpticsParams,
    rng: np.random.Generator,
) -> tuple[FloatArray, int]:
    """Mean of *coadds* scans (float counts, clipped to full scale) and the saturated count.

    Noise of the mean is drawn once with sigma / sqrt(coadds) (statistically the same as
    averaging scans); a pixel counts as saturated when one scan would reach full scale.
    """
    dark = dark_counts(integration_ms, temperature_c, params)
    signal = np.zeros_like(nu_true)
    if source_on:
        scale = params.peak_counts_at_ref * integration_ms / params.reference_integration_ms
        trans = 10.0 ** -(sample_absorbance + atmosphere_absorbance)
        signal = scale * throughput(nu_true, params) * trans
    clean = dark + signal
    sigma = np.sqrt(
        params.read_noise_counts**2
        + (clean - params.dark_offset_counts).clip(0) / params.electrons_per_count
    )
    one_scan = clean + rng.normal(0.0, 1.0, clean.size) * sigma
    saturated = one_scan >= FULL_SCALE
    mean = clean + rng.normal(0.0, 1.0, clean.size) * sigma / np.sqrt(coadds)
    mean = np.where(clean >= FULL_SCALE, FULL_SCALE, mean).clip(0.0, FULL_SCALE)
    return np.asarray(mean, dtype=np.float64), int(saturated.sum())

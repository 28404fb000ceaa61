"""Field-like perturbations of reference absorbance spectra (pure numpy, no TensorFlow).

Each function takes absorbance on an evenly spaced increasing grid and a
``numpy.random.Generator`` and returns a new array; :func:`field_perturb` chains them the way a
real measurement differs from a library spectrum: another instrument's calibration (shift),
resolution (blur), contact pressure (scale), baseline drift, residual atmosphere (water vapour,
CO2) and detector noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter1d

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AugmentSpec:
    """Strength of each perturbation (the ranges draws are made from)."""

    shift_sd_cm1: float = 2.0  # calibration offset, standard deviation
    stretch_sd: float = 1.5e-3  # calibration scale error, relative
    blur_max_cm1: float = 6.0  # extra Gaussian resolution loss, sigma
    scale_range: tuple[float, float] = (0.3, 2.0)  # contact pressure / path length
    baseline_max: float = 0.25  # polynomial baseline amplitude, relative to peak
    atmosphere_max: float = 0.08  # water vapour / CO2 band amplitude, relative to peak
    snr_range: tuple[float, float] = (60.0, 3000.0)  # peak / noise standard deviation
    mixture_prob: float = 0.35  # share of samples mixed with a cutting agent
    mixture_fraction: tuple[float, float] = (0.05, 0.45)  # cutting-agent share (minor)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict for the manifest."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def shift_stretch(w: FloatArray, a: FloatArray, shift: float, stretch: float) -> FloatArray:
    """*a* as another instrument's calibration shows it: a band at ``w`` appears at
    ``w * (1 + stretch) + shift``."""
    src = w * (1.0 + stretch) + shift
    return np.interp(w, src, a)


def blur(a: FloatArray, sigma_points: float) -> FloatArray:
    """Gaussian resolution loss with standard deviation *sigma_points* grid points."""
    if sigma_points <= 0.05:
        return a.copy()
    return gaussian_filter1d(a, sigma_points, mode="nearest")


def baseline(w: FloatArray, rng: np.random.Generator, amplitude: float) -> FloatArray:
    """A random smooth baseline (cubic polynomial plus a scattering-like slope), >= 0-ish."""
    x = (w - w[0]) / (w[-1] - w[0]) * 2.0 - 1.0
    coef = rng.normal(0.0, 1.0, 4) * np.array([1.0, 0.8, 0.5, 0.3])
    poly = np.polynomial.polynomial.polyval(x, coef)
    poly -= poly.min()
    peak = poly.max()
    if peak > 0:
        poly /= peak
    # Scattering rises with wavenumber (shorter wavelength).
    scatter = rng.uniform(0.0, 1.0) * ((w - w[0]) / (w[-1] - w[0])) ** rng.uniform(1.0, 4.0)
    return amplitude * (rng.uniform(0.0, 1.0) * poly + scatter)


def _band(w: FloatArray, centre: float, width: float) -> FloatArray:
    return np.exp(-0.5 * ((w - centre) / width) ** 2)


def atmosphere(w: FloatArray, rng: np.random.Generator, amplitude: float) -> FloatArray:
    """Residual CO2 (2350 and 667 cm^-1) and water (vapour lines, liquid bands), signed.

    Residual atmosphere after a stale background can be positive or negative.
    """
    sign = rng.choice([-1.0, 1.0])
    co2 = rng.uniform(0, 1) * (
        _band(w, 2361.0, 7.0) + 0.9 * _band(w, 2338.0, 7.0) + 0.4 * _band(w, 667.0, 3.0)
    )
    vapour = np.zeros_like(w)
    for lo, hi in ((1350.0, 1950.0), (3550.0, 3950.0)):
        centres = rng.uniform(lo, hi, 25)
        heights = rng.uniform(0.0, 1.0, 25)
        for c, h in zip(centres, heights, strict=True):
            vapour += h * _band(w, c, 1.5)
    vapour *= rng.uniform(0, 0.5)
    liquid = rng.uniform(0, 0.6) * (_band(w, 3380.0, 180.0) + 0.5 * _band(w, 1640.0, 35.0))
    return sign * amplitude * (co2 + vapour) + amplitude * liquid


def mix(a_major: FloatArray, a_minor: FloatArray, fraction: float) -> FloatArray:
    """Linear mixture: ``(1 - fraction) * major + fraction * minor`` (Beer-Lambert)."""
    return (1.0 - fraction) * a_major + fraction * a_minor


def field_perturb(
    w: FloatArray,
    a: FloatArray,
    rng: np.random.Generator,
    spec: AugmentSpec,
    cutting_agents: FloatArray | None = None,
) -> FloatArray:
    """One field-like measurement of reference absorbance *a* on grid *w*.

    With probability ``spec.mixture_prob`` a random row of *cutting_agents* is mixed in as the
    minor component first. Output is absorbance on the same grid.
    """
    step = float(w[1] - w[0])
    peak = float(np.max(np.abs(a))) or 1.0
    out = np.asarray(a, dtype=np.float64)
    if cutting_agents is not None and len(cutting_agents) and rng.uniform() < spec.mixture_prob:
        minor = cutting_agents[rng.integers(len(cutting_agents))]
        minor = minor * (peak / (float(np.max(np.abs(minor))) or 1.0))
        out = mix(out, minor, rng.uniform(*spec.mixture_fraction))
    out = shift_stretch(
        w, out, rng.normal(0.0, spec.shift_sd_cm1), rng.normal(0.0, spec.stretch_sd)
    )
    out = blur(out, rng.uniform(0.0, spec.blur_max_cm1) / step)
    out = out * rng.uniform(*spec.scale_range)
    peak = float(np.max(np.abs(out))) or 1.0
    out = out + baseline(w, rng, rng.uniform(0.0, spec.baseline_max) * peak)
    if rng.uniform() < 0.5:
        out = out + atmosphere(w, rng, rng.uniform(0.0, spec.atmosphere_max) * peak)
    snr = np.exp(rng.uniform(np.log(spec.snr_range[0]), np.log(spec.snr_range[1])))
    return out + rng.normal(0.0, peak / snr, out.shape)


def random_bands(w: FloatArray, rng: np.random.Generator) -> FloatArray:
    """A random 'substance': 6-30 Gaussian/Lorentzian bands, peak 1 (an unknown for training)."""
    n = int(rng.integers(6, 31))
    centres = rng.uniform(w[0], w[-1], n)
    widths = rng.uniform(4.0, 40.0, n)
    heights = rng.uniform(0.05, 1.0, n) ** 2
    x = (w[:, None] - centres[None, :]) / widths[None, :]
    shapes = np.where(rng.uniform(size=n) < 0.5, np.exp(-0.5 * x**2), 1.0 / (1.0 + x**2))
    out = shapes @ heights
    return out / (out.max() or 1.0)


def warp(w: FloatArray, a: FloatArray, rng: np.random.Generator, max_cm1: float) -> FloatArray:
    """Smooth non-linear displacement of band positions (up to *max_cm1*): an analogue's bands
    sit near, not on, its relative's bands."""
    knots = np.linspace(w[0], w[-1], 8)
    disp = rng.uniform(-max_cm1, max_cm1, knots.size)
    src = w + np.interp(w, knots, disp)
    return np.interp(w, np.sort(src), a)


def analogue(
    w: FloatArray,
    relatives: FloatArray,
    rng: np.random.Generator,
) -> FloatArray:
    """A synthetic analogue built from same-family *relatives* (rows): a warped blend of two of
    them, with some bands dropped. Used to teach the family head to generalise beyond library
    entries and the substance head to be unsure of what is not in the library."""
    i, j = rng.choice(len(relatives), size=2, replace=len(relatives) < 2)
    f = rng.uniform(0.3, 0.7)
    out = mix(relatives[i], relatives[j], f)
    out = warp(w, out, rng, rng.uniform(8.0, 25.0))
    # Drop or weaken a few regions, as a different substituent would.
    for _ in range(int(rng.integers(1, 4))):
        c = rng.uniform(w[0], w[-1])
        out = out * (1.0 - rng.uniform(0.5, 1.0) * _band(w, c, rng.uniform(20.0, 80.0)))
    # Add a couple of new bands.
    peak = float(np.max(out)) or 1.0
    for _ in range(int(rng.integers(1, 4))):
        out = out + peak * rng.uniform(0.1, 0.6) * _band(
            w, rng.uniform(w[0], w[-1]), rng.uniform(5.0, 25.0)
        )
    return out

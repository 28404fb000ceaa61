"""A few synthetic substances so that ``hal`` can simulate readings on its own.

Each is a sum of pseudo-Voigt bands at roughly the positions of the real compound's strongest
mid-IR bands (ATR absorbance units). They are for exercising the instrument, not references:
the real library comes from ``edge`` through the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
AbsorbanceFn = Callable[[FloatArray], FloatArray]
#: A sample's absorbance: a callable of wavenumbers, or (wavenumbers, absorbance) arrays.
AbsorbanceSource = AbsorbanceFn | tuple[npt.ArrayLike, npt.ArrayLike]

# (centre cm^-1, FWHM cm^-1, peak absorbance)
_BANDS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "polystyrene": (
        (3026, 20, 0.25),
        (2920, 25, 0.35),
        (2850, 18, 0.18),
        (1601, 8, 0.20),
        (1493, 8, 0.45),
        (1452, 10, 0.50),
        (1028, 8, 0.25),
        (757, 10, 0.80),
        (698, 10, 1.00),
    ),
    "ethanol": (
        (3330, 250, 0.45),
        (2972, 22, 0.40),
        (2927, 25, 0.22),
        (1380, 20, 0.15),
        (1088, 18, 0.45),
        (1045, 16, 0.90),
        (880, 14, 0.35),
    ),
    "water": ((3350, 380, 0.90), (1640, 90, 0.30), (700, 250, 0.35)),
    "sucrose": (
        (3340, 300, 0.35),
        (2940, 40, 0.08),
        (1430, 30, 0.12),
        (1125, 25, 0.45),
        (1050, 30, 0.80),
        (990, 25, 0.95),
        (920, 15, 0.35),
    ),
    "acetone": ((1712, 22, 1.00), (1360, 18, 0.55), (1220, 20, 0.70), (2965, 20, 0.08)),
    "sodium_bicarbonate": (
        (2540, 200, 0.12),
        (1920, 50, 0.05),
        (1620, 60, 0.55),
        (1405, 50, 0.45),
        (1300, 25, 0.60),
        (1000, 20, 0.25),
        (835, 10, 0.40),
        (695, 12, 0.30),
    ),
}


def _pseudo_voigt(x: FloatArray, centre: float, fwhm: float, eta: float = 0.5) -> FloatArray:
    g = np.exp(-4.0 * np.log(2.0) * ((x - centre) / fwhm) ** 2)
    lor = 1.0 / (1.0 + 4.0 * ((x - centre) / fwhm) ** 2)
    return np.asarray(eta * lor + (1.0 - eta) * g, dtype=np.float64)


def _bands_fn(bands: tuple[tuple[float, float, float], ...]) -> AbsorbanceFn:
    def absorbance(wavenumbers: FloatArray) -> FloatArray:
        x = np.asarray(wavenumbers, dtype=np.float64)
        out = np.zeros_like(x)
        for centre, fwhm, height in bands:
            out += height * _pseudo_voigt(x, centre, fwhm)
        return out

    return absorbance


BUILTIN_SUBSTANCES: Mapping[str, AbsorbanceFn] = {
    name: _bands_fn(bands) for name, bands in _BANDS.items()
}


def as_absorbance_fn(source: AbsorbanceSource) -> AbsorbanceFn:
    """A callable of wavenumbers from either form; arrays are interpolated, 0 outside."""
    if callable(source):
        return source
    wn = np.asarray(source[0], dtype=np.float64)
    a = np.asarray(source[1], dtype=np.float64)
    if wn.ndim != 1 or wn.shape != a.shape or wn.size < 2:
        raise ValueError("absorbance arrays must be 1-D, of equal length >= 2")
    order = np.argsort(wn)
    wn, a = wn[order], a[order]

    def absorbance(wavenumbers: FloatArray) -> FloatArray:
        return np.asarray(np.interp(wavenumbers, wn, a, left=0.0, right=0.0), dtype=np.float64)

    return absorbance

"""Pure spectral operations on absorbance arrays: resampling, ATR, baseline, SG, norms.

Every function takes and returns plain numpy arrays and has no state; the pipeline in
:mod:`edge.preprocess.chain` strings them together as a manifest's spec says.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.ndimage import convolve1d
from scipy.signal import savgol_coeffs

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Baseline algorithms of pybaselines the spec may name (all Whittaker-smoother family).
BASELINE_METHODS = ("asls", "arpls", "iarpls", "airpls")
#: Parameters a spec may pass through to them.
BASELINE_PARAMS = ("lam", "p", "max_iter", "tol")


def sort_and_clean(
    wavenumbers: npt.ArrayLike, values: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Finite points only, sorted by increasing wavenumber, duplicates removed.

    Raises ``ValueError`` when the arrays differ in length or fewer than 2 points remain.
    """
    x = np.asarray(wavenumbers, dtype=np.float64).ravel()
    y = np.asarray(values, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{x.size} wavenumbers but {y.size} values")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    keep = np.concatenate(([True], np.diff(x) > 0))
    x, y = x[keep], y[keep]
    if x.size < 2:
        raise ValueError("fewer than 2 finite points")
    return x, y


def resample(
    wavenumbers: npt.ArrayLike, values: npt.ArrayLike, grid: FloatArray
) -> tuple[FloatArray, BoolArray]:
    """Linear interpolation onto *grid*; returns ``(values_on_grid, valid)``.

    Grid points outside the measured range are not extrapolated: they get the nearest edge
    value and ``valid`` is False there, so later steps can mask them. When the input is much
    finer than the grid, it is first box-averaged to the grid step (anti-aliasing).
    """
    x, y = sort_and_clean(wavenumbers, values)
    step = float(np.median(np.diff(grid))) if grid.size > 1 else 1.0
    src_step = float(np.median(np.diff(x)))
    factor = int(step / src_step) if src_step > 0 else 1
    if factor >= 2:
        kernel = np.ones(factor) / factor
        y = np.convolve(
            np.pad(y, (factor // 2, factor - 1 - factor // 2), mode="edge"), kernel, "valid"
        )
    out = np.interp(grid, x, y)
    valid = (grid >= x[0] - 1e-9) & (grid <= x[-1] + 1e-9)
    return out, valid


def atr_correct(
    wavenumbers: FloatArray, absorbance: FloatArray, reference_cm1: float = 1000.0
) -> FloatArray:
    """Advanced-ATR-style depth correction: scale by ``wavenumber / reference_cm1``.

    The evanescent wave's penetration depth is proportional to the wavelength, i.e. to
    1/wavenumber, so ATR bands at low wavenumber are too strong compared to a transmission
    spectrum; multiplying by wavenumber removes that bias (refractive-index dispersion ignored).
    """
    if reference_cm1 <= 0:
        raise ValueError("reference_cm1 must be positive")
    return np.asarray(absorbance, dtype=np.float64) * (np.asarray(wavenumbers) / reference_cm1)


def remove_baseline(
    wavenumbers: FloatArray, values: FloatArray, method: str = "asls", **params: float
) -> FloatArray:
    """Subtract a smooth baseline fitted by pybaselines' Whittaker method *method*.

    *params* go to pybaselines unchanged (``lam``, ``p`` for asls, ``max_iter``, ``tol``).
    """
    if method not in BASELINE_METHODS:
        raise ValueError(f"unknown baseline method {method!r}; one of {BASELINE_METHODS}")
    bad = set(params) - set(BASELINE_PARAMS)
    if bad:
        raise ValueError(f"unknown baseline parameters {sorted(bad)}")
    kwargs: dict[str, float | int] = dict(params)
    if "max_iter" in kwargs:
        kwargs["max_iter"] = int(kwargs["max_iter"])
    fitter = _fitter(np.asarray(wavenumbers, dtype=np.float64))
    base, _params = getattr(fitter, method)(np.asarray(values, dtype=np.float64), **kwargs)
    return np.asarray(values, dtype=np.float64) - np.asarray(base, dtype=np.float64)


_LOCAL = threading.local()


def _fitter(x: FloatArray) -> Any:
    """A pybaselines ``Baseline`` for axis *x*, reused per thread (its set-up is not free)."""
    from pybaselines import Baseline  # imported here: keeps module import cheap

    cache: dict[bytes, Any] = _LOCAL.__dict__.setdefault("fitters", {})
    key = hashlib.sha1(x.tobytes()).digest()
    fitter = cache.get(key)
    if fitter is None:
        if len(cache) > 16:
            cache.clear()
        fitter = cache[key] = Baseline(x_data=x)
    return fitter


@functools.lru_cache(maxsize=32)
def _savgol_kernel(window: int, polyorder: int, deriv: int) -> FloatArray:
    return np.asarray(savgol_coeffs(window, polyorder, deriv=deriv, use="conv"), dtype=np.float64)


def savgol(values: FloatArray, window: int, polyorder: int, deriv: int = 0) -> FloatArray:
    """Savitzky-Golay smoothing (deriv 0) or derivative per grid point (edges: nearest value).

    Same as ``scipy.signal.savgol_filter(..., mode="nearest")`` with the coefficients cached.
    """
    y = np.asarray(values, dtype=np.float64)
    return np.asarray(convolve1d(y, _savgol_kernel(window, polyorder, deriv), mode="nearest"))


def region_mask(grid: FloatArray, regions: Sequence[Sequence[float]]) -> BoolArray:
    """True where *grid* lies inside any of the ``[lo, hi]`` regions (cm^-1)."""
    m = np.zeros(grid.shape, dtype=bool)
    for lo, hi in regions:
        m |= (grid >= min(lo, hi)) & (grid <= max(lo, hi))
    return m


def normalise(
    values: FloatArray, method: str = "vector", keep: BoolArray | None = None
) -> FloatArray:
    """Normalise over the points in *keep* (all when None); other points become 0.

    ``vector``: mean-centred, unit Euclidean norm (so a dot product is Pearson correlation);
    ``snv``: mean-centred, unit standard deviation; ``none``: only zeroes the dropped points.
    A flat input comes back as zeros.
    """
    y = np.asarray(values, dtype=np.float64).copy()
    k = np.ones(y.shape, dtype=bool) if keep is None else keep
    out = np.zeros_like(y)
    if not k.any():
        return out
    if method == "none":
        out[k] = y[k]
        return out
    if method not in ("vector", "snv"):
        raise ValueError(f"unknown normalisation {method!r}")
    centred = y[k] - y[k].mean()
    scale = float(np.linalg.norm(centred)) if method == "vector" else float(centred.std())
    if scale > 1e-12:
        out[k] = centred / scale
    return out

"""A spectrum record from a file -> absorbance on the library grid, with its measured range.

Steps: drop flat padding at either end (exporters such as the ENFSI library pad the low
end with a constant 100 %T where nothing was measured: that is *missing data*, not zero
absorbance); convert to absorbance (``-log10 T``); when the file is at least twice as fine
as the grid, smooth it first with a Gaussian of one grid step FWHM (so sampling does not
alias noise); resample with :func:`numpy.interp`; set grid points outside the measured range to
0 and return that range so a search can mask it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter1d

from edge.errors import LibraryError
from spectra_io import SpectrumRecord
from spectra_io.errors import SpectrumFileError

#: A constant run at least this long at either end of a spectrum is padding.
MIN_PAD_RUN = 3
#: The measured range must cover at least this fraction of the grid's span.
MIN_COVERAGE = 0.25


def _flat_run(y: npt.NDArray[np.float64]) -> int:
    """Length of the run of values equal to ``y[0]`` at the start of *y*."""
    tol = 1e-9 * max(1.0, float(np.max(np.abs(y))))
    differs = np.flatnonzero(np.abs(y - y[0]) > tol)
    return int(differs[0]) if differs.size else int(y.size)


def trim_padding(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """*x*, *y* without constant runs of :data:`MIN_PAD_RUN` or more points at either end.

    Raises ``ValueError`` when the whole spectrum is flat.
    """
    lead = _flat_run(y)
    trail = _flat_run(y[::-1])
    if lead >= y.size:
        raise ValueError("the spectrum is flat (constant everywhere): no data")
    start = lead if lead >= MIN_PAD_RUN else 0
    stop = y.size - trail if trail >= MIN_PAD_RUN else y.size
    if stop - start < 2:
        raise ValueError("fewer than two measured points after removing padding")
    return x[start:stop], y[start:stop]


def record_to_grid(
    record: SpectrumRecord, grid: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float32], tuple[float, float]]:
    """Absorbance of *record* on *grid* (0 outside the measured range) and that range.

    Raises :class:`LibraryError` when the ordinate is not absorbance or transmittance or
    the measured range covers too little of the grid.
    """
    if record.y_units not in ("absorbance", "transmittance", "percent_transmittance"):
        raise LibraryError(
            f"ordinate is {record.y_units!r}; a library needs absorbance or transmittance"
        )
    try:
        x, y = trim_padding(record.x, record.y)
        absorb = SpectrumRecord(x, y, record.y_units, source=record.source).absorbance()
    except SpectrumFileError as err:  # the caller names the file
        raise LibraryError(err.reason) from err
    except ValueError as err:
        raise LibraryError(str(err)) from err
    lo, hi = max(float(x[0]), float(grid[0])), min(float(x[-1]), float(grid[-1]))
    span = float(grid[-1] - grid[0])
    if hi - lo < MIN_COVERAGE * span:
        raise LibraryError(
            f"measured range {x[0]:.0f}-{x[-1]:.0f} cm-1 covers too little of the library "
            f"grid {grid[0]:.0f}-{grid[-1]:.0f} cm-1"
        )
    step = float(grid[1] - grid[0])
    dx = float(np.median(np.diff(x)))
    ratio = step / dx
    if ratio >= 2:  # anti-alias: a symmetric Gaussian of FWHM = one grid step
        absorb = gaussian_filter1d(absorb, sigma=ratio / 2.3548, mode="nearest")
    out = np.zeros(grid.size, dtype=np.float64)
    inside = (grid >= lo - 1e-9) & (grid <= hi + 1e-9)
    out[inside] = np.interp(grid[inside], x, absorb)
    return out.astype(np.float32), (lo, hi)

"""The standard wavenumber grid of the shipped library and model.

A library or model manifest may state another grid; this is the default every shipped
artefact uses: 650-4000 cm^-1 (the diamond-ATR mid-infrared window) every 4 cm^-1.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

GRID_START_CM1 = 650.0
GRID_STOP_CM1 = 4000.0
GRID_STEP_CM1 = 4.0


def make_grid(
    start: float = GRID_START_CM1, stop: float = GRID_STOP_CM1, step: float = GRID_STEP_CM1
) -> npt.NDArray[np.float64]:
    """Evenly spaced increasing wavenumbers from *start* to *stop* inclusive, cm^-1."""
    if not (step > 0 and stop > start):
        raise ValueError(f"bad grid: start={start} stop={stop} step={step}")
    n = int(np.floor((stop - start) / step + 1e-9)) + 1  # 650..4000 step 4: 838 points
    return start + step * np.arange(n, dtype=np.float64)


STANDARD_GRID = make_grid()

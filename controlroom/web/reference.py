"""Reference spectra for the scan page's overlay, from a reference library directory."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _library(path: str | None):  # type: ignore[no-untyped-def]
    from edge.library.format import load_library

    try:
        return load_library(Path(path) if path else None)
    except Exception as err:  # no library: the plot shows the scan alone
        log.warning("console: reference library not loaded: %s", err)
        return None


def reference_spectrum(library: Path | None, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(wavenumbers, absorbance)`` of library entry *name*, or None when absent."""
    lib = _library(str(library) if library else None)
    if lib is None:
        return None
    if name not in lib:
        return None
    i = lib.index(name)
    return np.asarray(lib.grid), np.asarray(lib.spectra[i], dtype=np.float64)

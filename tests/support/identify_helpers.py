"""Synthetic band-spectrum libraries for identification tests (no shared data needed)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.identify.calibration import Calibration, DecisionParams, LogisticModel
from edge.library import Library, LibraryEntry
from edge.preprocess.grid import STANDARD_GRID

CATS = [
    ("narcotic", "opioid"),
    ("narcotic", "stimulant"),
    ("precursor", None),
    ("cutting_agent", None),
    ("benign", None),
]


def band_spectrum(rng: np.random.Generator, x: np.ndarray, n_bands: int = 10) -> np.ndarray:
    """Sum of Lorentzian bands at random positions, widths and heights; peak 1."""
    y = np.zeros_like(x)
    for c, w, h in zip(
        rng.uniform(700, 3600, n_bands),
        rng.uniform(5, 25, n_bands),
        rng.uniform(0.1, 1, n_bands),
        strict=True,
    ):
        y += h * w**2 / ((x - c) ** 2 + w**2)
    return y / y.max()


def synthetic_library(n: int, seed: int = 0, name: str = "synthetic") -> Library:
    """*n* random band spectra on the standard grid; categories cycle through :data:`CATS`."""
    rng = np.random.default_rng(seed)
    x = STANDARD_GRID
    spectra = np.stack([band_spectrum(rng, x) for _ in range(n)]).astype(np.float32)
    entries = []
    for i in range(n):
        cat, fam = CATS[i % len(CATS)]
        entries.append(LibraryEntry.create(f"sub{i:03d}", cat, fam, valid_range=(650.0, 3998.0)))
    return Library(x, spectra, entries, name=name, version="t1")


def decisive_calibration(**params: Any) -> Calibration:
    """A hand-set calibration that decides clearly on synthetic libraries (unit tests):
    a match above 0.99 correlation is identified, one below 0.9 is not; a mixture component
    that explains its share and cannot be replaced is confirmed; close neighbours name a
    family; a controlled nearest neighbour above 0.9 flags a suspected analogue."""
    cal = Calibration(DecisionParams(**params))
    cal.models["identified"] = LogisticModel(("sharp_r", "first"), [10.0, 0.0], -8.5)
    cal.models["component"] = LogisticModel(
        ("sharp_fit", "share", "drop", "replace"), [4.5, 0.0, 4.0, 15.0], -6.0
    )
    cal.models["family"] = LogisticModel(("sharp_family_r", "family_share"), [4.0, 0.0], -4.0)
    cal.models["analogue"] = LogisticModel(("sharp_r1", "gap"), [6.0, 0.0], -6.0)
    return cal

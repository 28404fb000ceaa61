"""A small synthetic reference library (random band spectra) for tests and benchmarks.

Members of one family share a "core" of bands, so family-level learning has something to
find; every member adds its own bands. Not chemistry: a deterministic fixture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.library.format import LibraryEntry, save_library
from edge.preprocess.grid import STANDARD_GRID

#: (category, family) of the synthetic families.
FAMILIES: tuple[tuple[str, str | None], ...] = (
    ("narcotic", "opioid"),
    ("narcotic", "stimulant"),
    ("explosive", None),
    ("cutting_agent", None),
    ("benign", None),
)


def _bands(w: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    c = rng.uniform(w[0] + 50, w[-1] - 50, n)
    wid = rng.uniform(6.0, 30.0, n)
    h = rng.uniform(0.2, 1.0, n)
    return (np.exp(-0.5 * ((w[:, None] - c) / wid) ** 2) * h).sum(axis=1)


def synthetic_library(path: Path | str, per_family: int = 3, seed: int = 0) -> str:
    """Write a library of ``len(FAMILIES) * per_family`` entries at *path*; returns its hash."""
    rng = np.random.default_rng(seed)
    w = STANDARD_GRID
    spectra = []
    entries = []
    for category, family in FAMILIES:
        core = _bands(w, rng, 6)
        for k in range(per_family):
            a = core + _bands(w, rng, 8)
            spectra.append(a / a.max())
            label = family or category
            entries.append(LibraryEntry.create(f"{label}-{k + 1}", category, family))
    return save_library(
        path,
        w,
        np.array(spectra),
        entries,
        name="synthetic",
        version="test",
        created="2026-01-01T00:00:00+00:00",
    )

"""Challenge sets: library spectra perturbed as another instrument and a real sample would.

From a library this builds queries of three kinds: ``single`` (a known compound), ``unknown``
(a compound held out of the library; the right answer is ``no_match``, ideally with its
family) and ``mixture`` (a drug with one or two cutting agents). Each query is re-measured on a
random instrument: its own grid and range, resolution, wavenumber shift, contact-pressure
intensity, sloping/curved baseline, residual CO2 and water vapour, and noise. Seeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter1d

from edge.library import Library

F64 = npt.NDArray[np.float64]

CUTTING = "cutting_agent"
DRUG_CATEGORIES = ("narcotic",)


@dataclass(frozen=True)
class Perturbation:
    """How strongly to perturb (defaults: a different benchtop ATR, ordinary sample)."""

    step_range: tuple[float, float] = (1.0, 8.0)
    start_range: tuple[float, float] = (600.0, 700.0)
    stop_range: tuple[float, float] = (3800.0, 4000.0)
    fwhm_range: tuple[float, float] = (2.0, 8.0)
    shift_cm1: float = 2.0
    scale_range: tuple[float, float] = (0.3, 1.5)
    baseline: float = 0.05
    co2: float = 0.03
    water: float = 0.01
    noise_range: tuple[float, float] = (5e-4, 3e-3)


@dataclass(frozen=True)
class Query:
    """One challenge spectrum with its ground truth."""

    wavenumbers: F64
    absorbance: F64
    kind: str  # single | unknown | mixture
    truth: tuple[str, ...]
    fractions: tuple[float, ...] = ()
    family: str | None = None
    meta: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Split:
    """Which library rows stay in the search library and which are held out as unknowns."""

    known: tuple[int, ...]
    held_out: tuple[int, ...]


def family_of(library: Library, row: int) -> str:
    """The family an answer should name: the narcotic family, else the category."""
    e = library.entries[row]
    return e.family or e.category


def split_library(library: Library, holdout: float, seed: int) -> Split:
    """Hold out *holdout* of the compounds (never cutting agents, at least one when > 0)."""
    rng = np.random.default_rng(seed)
    eligible = [i for i, e in enumerate(library.entries) if e.category != CUTTING]
    n_out = 0 if holdout <= 0 else max(1, round(holdout * len(library)))
    n_out = min(n_out, max(len(eligible) - 1, 0))
    out = sorted(int(i) for i in rng.choice(eligible, size=n_out, replace=False)) if n_out else []
    known = [i for i in range(len(library)) if i not in set(out)]
    return Split(tuple(known), tuple(out))


def _unit_absorbance(library: Library, row: int) -> tuple[F64, F64]:
    """Grid points with data for *row* and its absorbance scaled to peak 1."""
    grid = library.grid
    y = np.asarray(library.spectra[row], dtype=np.float64)
    e = library.entries[row]
    ok = np.isfinite(y)
    if e.valid_range is not None:
        ok &= (grid >= e.valid_range[0]) & (grid <= e.valid_range[1])
    x, y = grid[ok], y[ok]
    y = y - min(float(np.percentile(y, 1)), 0.0)
    peak = float(y.max()) if y.size else 0.0
    return x, (y / peak if peak > 0 else y)


_WATER_LINES: F64 = np.sort(
    np.concatenate(
        [
            np.random.default_rng(7).uniform(1380, 1900, 30),
            np.random.default_rng(8).uniform(3550, 3900, 30),
        ]
    )
)


def measure(
    x: F64, a: F64, rng: np.random.Generator, p: Perturbation
) -> tuple[F64, F64, dict[str, float]]:
    """Re-measure absorbance *a* on *x* with a random instrument and sample presentation."""
    step = rng.uniform(*p.step_range)
    start = max(rng.uniform(*p.start_range), float(x[0]))
    stop = min(rng.uniform(*p.stop_range), float(x[-1]))
    new_x = np.arange(start, stop, step)
    fwhm = rng.uniform(*p.fwhm_range)
    src_step = float(np.median(np.diff(x)))
    blurred = gaussian_filter1d(a, fwhm / 2.3548 / src_step, mode="nearest")
    shift = rng.uniform(-p.shift_cm1, p.shift_cm1)
    y = np.interp(new_x, x + shift, blurred)
    y *= rng.uniform(*p.scale_range)
    t = (new_x - new_x[0]) / max(float(new_x[-1] - new_x[0]), 1.0)
    y += p.baseline * (rng.uniform(-1, 1) + rng.uniform(-1, 1) * t + rng.uniform(-1, 1) * t**2)
    co2 = rng.uniform(0, p.co2)
    y += co2 * (np.exp(-(((new_x - 2340) / 8) ** 2)) + 0.8 * np.exp(-(((new_x - 2360) / 8) ** 2)))
    water = rng.uniform(0, p.water)
    for c in _WATER_LINES:
        y += water * np.exp(-(((new_x - c) / 1.5) ** 2))
    noise = rng.uniform(*p.noise_range)
    y += rng.normal(0, noise, new_x.size)
    return new_x, y, {"step": step, "fwhm": fwhm, "shift": shift, "noise": noise}


def build_challenge(
    library: Library,
    split: Split,
    *,
    seed: int = 0,
    singles_per_compound: int = 5,
    unknowns_per_compound: int = 5,
    mixtures2: int = 200,
    mixtures3: int = 60,
    perturbation: Perturbation | None = None,
) -> list[Query]:
    """The challenge queries for *library* under *split* (reproducible for a given seed)."""
    p = perturbation or Perturbation()
    rng = np.random.default_rng(seed + 1)
    names = library.names()
    queries: list[Query] = []
    for rows, kind, count in (
        (split.known, "single", singles_per_compound),
        (split.held_out, "unknown", unknowns_per_compound),
    ):
        for row in rows:
            x, a = _unit_absorbance(library, row)
            for _ in range(count):
                nx, ny, meta = measure(x, a, rng, p)
                queries.append(
                    Query(nx, ny, kind, (names[row],), (1.0,), family_of(library, row), meta)
                )
    known = set(split.known)
    drugs = [i for i in known if library.entries[i].category in DRUG_CATEGORIES]
    cutters = [i for i in known if library.entries[i].category == CUTTING]
    if drugs and cutters:
        for n_comp, total in ((2, mixtures2), (3, mixtures3)):
            if n_comp - 1 > len(cutters):
                continue
            for _ in range(total):
                parts = [
                    int(rng.choice(drugs)),
                    *map(int, rng.choice(cutters, n_comp - 1, replace=False)),
                ]
                fr = _fractions(rng, n_comp)
                queries.append(_mix(library, parts, fr, rng, p))
    return queries


def _fractions(rng: np.random.Generator, n: int) -> F64:
    """Random fractions summing to 1 with every part at least 0.2 (0.25 for two parts)."""
    low = 0.25 if n == 2 else 0.2
    f = rng.dirichlet(np.ones(n))
    return low + f * (1 - low * n)


def _mix(
    library: Library, rows: Sequence[int], fractions: F64, rng: np.random.Generator, p: Perturbation
) -> Query:
    parts = [_unit_absorbance(library, r) for r in rows]
    lo = max(float(x[0]) for x, _ in parts)
    hi = min(float(x[-1]) for x, _ in parts)
    x = library.grid[(library.grid >= lo) & (library.grid <= hi)]
    a = sum(f * np.interp(x, px, py) for f, (px, py) in zip(fractions, parts, strict=True))
    nx, ny, meta = measure(x, np.asarray(a, dtype=np.float64), rng, p)
    names = tuple(library.names()[r] for r in rows)
    return Query(
        nx,
        ny,
        "mixture",
        names,
        tuple(float(f) for f in fractions),
        family_of(library, rows[0]),
        meta,
    )

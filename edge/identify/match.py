"""Shift-tolerant search: the best correlation of each library entry over small axis shifts.

Two instruments disagree on the wavenumber axis by a few cm^-1 (real cross-laboratory pairs
in ``../shared/data/xsource-dev``: up to 4; the harsh challenge: up to 7 at the ends of the
axis). On second-derivative vectors a shift of half a band
width costs a large part of the correlation, so the query is compared at every shift in
``[-max_shift_cm1, +max_shift_cm1]`` (steps of ``step_cm1``, fractional shifts by linear
interpolation) and each entry keeps its best.

On a library of up to :data:`EXACT_MAX_ROWS` entries the result is exact: an entry among the
best *k* over all shifts is among the best *k* at its own best shift, which each shifted search
finds exactly (:meth:`edge.identify.search.SearchIndex.search`). On a larger library the
unshifted search picks the best :data:`PRESELECT` candidates (one pass over the library, the
memory-bandwidth floor) and only those are scored at every shift: a few cm-1 of shift moves a
right match's score by a few hundredths, never out of the best hundreds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.identify.search import SearchIndex
from edge.preprocess.spectral import normalise

F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]


#: Libraries up to this size are searched exactly at every shift.
EXACT_MAX_ROWS = 2000
#: Larger ones: this many unshifted best rows are scored at every shift.
PRESELECT = 256


@dataclass(frozen=True)
class MatchParams:
    """How far the search looks along the axis."""

    max_shift_cm1: float = 6.0
    step_cm1: float = 2.0


@dataclass(frozen=True)
class Matches:
    """The best rows (best first), their best-shift scores, and the query at each best shift."""

    rows: IntArray
    scores: F64
    shifts: F64  # in points of the searched vectors

    def shift_of(self, row: int) -> float:
        """The best shift (points) of *row*, 0 when it is not among the matches."""
        hit = np.flatnonzero(self.rows == row)
        return float(self.shifts[hit[0]]) if hit.size else 0.0


def shift_vector(vector: npt.ArrayLike, keep: BoolArray, shift: float) -> tuple[F64, BoolArray]:
    """*vector* moved by *shift* points (positive: towards higher index), renormalised.

    Points whose source falls outside *keep* are dropped from the mask.
    """
    v = np.asarray(vector, dtype=np.float64)
    if shift == 0:
        return v, keep
    idx = np.arange(v.size, dtype=np.float64)
    moved = np.interp(idx - shift, idx, v, left=0.0, right=0.0)
    src = np.interp(idx - shift, idx, keep.astype(np.float64), left=0.0, right=0.0)
    mask = src > 0.999
    return normalise(moved, "vector", mask), mask


def shifts_in_points(params: MatchParams, step_cm1: float) -> list[float]:
    """The shifts to try, in points of a vector sampled every *step_cm1*."""
    if params.max_shift_cm1 <= 0 or params.step_cm1 <= 0:
        return [0.0]
    n = int(np.floor(params.max_shift_cm1 / params.step_cm1 + 1e-9))
    cm = params.step_cm1 * np.arange(-n, n + 1)
    return [float(c / step_cm1) for c in cm]


def best_matches(
    index: SearchIndex,
    vector: npt.ArrayLike,
    keep: BoolArray,
    k: int,
    shifts: list[float],
) -> Matches:
    """The *k* best rows over all *shifts* of the query (ties: the smaller shift wins)."""
    if len(index) > EXACT_MAX_ROWS and len(shifts) > 1:
        return _preselected(index, vector, keep, k, shifts)
    best: dict[int, tuple[float, float]] = {}
    for sh in sorted(shifts, key=abs):
        v, m = shift_vector(vector, keep, sh)
        if not m.any():
            continue
        found = index.search(v, k, m)
        for row, score in zip(found.indices.tolist(), found.scores.tolist(), strict=True):
            if row not in best or score > best[row][0] + 1e-12:
                best[row] = (float(score), sh)
    order = sorted(best, key=lambda r: (-best[r][0], r))[:k]
    return Matches(
        np.asarray(order, dtype=np.intp),
        np.asarray([best[r][0] for r in order], dtype=np.float64),
        np.asarray([best[r][1] for r in order], dtype=np.float64),
    )


def _preselected(
    index: SearchIndex, vector: npt.ArrayLike, keep: BoolArray, k: int, shifts: list[float]
) -> Matches:
    """Large libraries: the unshifted best :data:`PRESELECT` rows, scored at every shift."""
    scores0 = index.scores(vector, keep)  # one pass over the library
    n_pre = min(max(PRESELECT, 4 * k), scores0.size)
    rows = np.argpartition(-scores0, n_pre - 1)[:n_pre].astype(np.intp)
    block = np.asarray(index.matrix[rows], dtype=np.float64)
    best = np.full(rows.size, -np.inf)
    best_shift = np.zeros(rows.size)
    for sh in sorted(shifts, key=abs):
        v, m = shift_vector(vector, keep, sh)
        if not m.any():
            continue
        cols = np.flatnonzero(m)
        sub = block[:, cols]
        ss = np.einsum("ij,ij->i", sub, sub) - sub.sum(axis=1) ** 2 / max(cols.size, 1)
        scores = (block @ v) / np.maximum(np.sqrt(np.maximum(ss, 0.0)), 1e-6)
        better = scores > best + 1e-12
        best = np.where(better, scores, best)
        best_shift = np.where(better, sh, best_shift)
    order = np.lexsort((rows, -best))[:k]
    return Matches(rows[order], best[order], best_shift[order])

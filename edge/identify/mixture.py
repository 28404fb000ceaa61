"""Mixture analysis without phantoms: the top hit's instrument variants come first.

Works on preprocessed vectors (unit norm, mean-centred over the query's ``keep`` mask), where a
mixture's spectrum is, to first order, a non-negative sum of its components' spectra.

Another instrument records a pure substance slightly shifted, broadened or with another
baseline; what it leaves after the library spectrum is subtracted is structured, and a search
for a second component would happily explain it with some other entry (a phantom: pure
paracetamol read as paracetamol + fentanyl). So the fit first gives the top hit its own
*nuisance terms*: the derivatives of its vector along the axis (a shift) and of that again (a
change of width; the second derivative of a band is what broadening adds to it). They enter
with free signs, and only what they cannot explain is left for other library entries.

Components are then added greedily (forward selection, non-negative coefficients); each
addition must pass an F-test on the residual sums of squares (``alpha``, counting
``effective_points`` since smoothing correlates neighbours), keep every share at least
``min_contribution`` and gain at least ``min_gain`` of fit correlation. When the top hit alone
fits poorly (below ``low_fit``), the search also starts from the next best hits: a 50/50
mixture's best single match can be a third substance that resembles the blend.

Each accepted component carries its own evidence for the calibrated probability that it is
present (:mod:`edge.identify.calibration`): its share, the fit lost without it (``drop``) and
the fit lost when the best other candidate takes its place (``replace``).

Shares are spectral (share of the fitted signal), not concentrations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import fdtrc

from edge.identify.search import SearchIndex

F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class MixtureParams:
    """Acceptance rules of a mixture (stored with the decision calibration)."""

    max_components: int = 3
    candidates: int = 12
    alpha: float = 1e-4
    min_contribution: float = 0.1
    min_gain: float = 0.01
    correlation_length: float = 3.0
    #: The top hit's shift and width derivatives enter the fit before any other entry.
    nuisance: bool = True
    #: Below this single fit the search also starts from the next ``starts - 1`` hits.
    low_fit: float = 0.93
    starts: int = 3


@dataclass(frozen=True)
class Component:
    """One accepted component: library row, spectral share and its own evidence."""

    row: int
    share: float
    drop: float  # fit correlation lost when it is left out
    replace: float  # fit correlation lost when the best other candidate takes its place


@dataclass(frozen=True)
class MixtureFit:
    """Best model found: components (largest share first), fit correlations, F-test p."""

    components: tuple[Component, ...]
    fit: float
    single_fit: float
    p_value: float
    #: The top hit alone: fit lost when the best other candidate replaces it (a gap with
    #: nuisance terms).
    single_replace: float = 0.0

    @property
    def rows(self) -> tuple[int, ...]:
        """Library rows of the components."""
        return tuple(c.row for c in self.components)

    @property
    def contributions(self) -> tuple[float, ...]:
        """Spectral shares of the components (sum 1)."""
        return tuple(c.share for c in self.components)

    @property
    def is_mixture(self) -> bool:
        """True when more than one component was accepted."""
        return len(self.components) > 1


def _centred(block: F64, keep: BoolArray) -> F64:
    out = np.where(keep, block, 0.0)
    m = max(int(keep.sum()), 1)
    out -= np.where(keep, (out.sum(axis=-1, keepdims=True) / m), 0.0)
    return out


def bounded_lstsq(gram: F64, rhs: F64, n_nonneg: int) -> F64:
    """Least squares from normal equations with the first *n_nonneg* coefficients >= 0.

    Active-set iteration for a handful of columns (the rest are free nuisance terms).
    """
    k = rhs.size
    active = list(range(k))
    coef = np.zeros(k)
    for _ in range(2 * k + 2):
        sub = np.ix_(active, active)
        try:
            sol = np.linalg.solve(gram[sub] + 1e-10 * np.eye(len(active)), rhs[active])
        except np.linalg.LinAlgError:
            sol = np.linalg.lstsq(gram[sub], rhs[active], rcond=None)[0]
        neg = [(v, i) for v, i in zip(sol, active, strict=True) if i < n_nonneg and v < 0]
        if not neg:
            coef[:] = 0.0
            coef[active] = sol
            return coef
        active.remove(min(neg)[1])
        if not any(i < n_nonneg for i in active):
            break
    coef[:] = 0.0
    return coef


class _Model:
    """One query's fits: unit rows, nuisance terms and their dot products, computed once."""

    def __init__(self, index: SearchIndex, q: F64, keep: BoolArray, nuisance: bool) -> None:
        self.index, self.q, self.keep, self.nuisance = index, q, keep, nuisance
        self.slot: dict[tuple[str, int], int] = {}
        self.store = np.zeros((16, q.size))
        self.n = 0
        self.gram = np.zeros((16, 16))
        self.rhs = np.zeros(16)

    def _add(self, key: tuple[str, int], vec: F64) -> int:
        i = self.n
        if i == self.store.shape[0]:  # grow the buffers
            cap = 2 * i
            store, gram, rhs = np.zeros((cap, self.q.size)), np.zeros((cap, cap)), np.zeros(cap)
            store[:i], gram[:i, :i], rhs[:i] = self.store, self.gram[:i, :i], self.rhs[:i]
            self.store, self.gram, self.rhs = store, gram, rhs
        self.store[i] = vec
        dots = self.store[: i + 1] @ vec
        self.gram[i, : i + 1] = dots
        self.gram[: i + 1, i] = dots
        self.rhs[i] = float(vec @ self.q)
        self.n = i + 1
        self.slot[key] = i
        return i

    def row(self, r: int) -> int:
        """Slot of library row *r* (centred on the mask, unit norm)."""
        hit = self.slot.get(("row", r))
        if hit is None:
            a = _centred(self.index.matrix[r].astype(np.float64), self.keep)
            hit = self._add(("row", r), a / max(float(np.linalg.norm(a)), 1e-12))
        return hit

    def unit(self, r: int) -> F64:
        """The unit vector of library row *r*."""
        return self.store[self.row(r)]

    def nuisance_slots(self, r: int) -> list[int]:
        """Slots of *r*'s shift and width terms."""
        if ("shift", r) not in self.slot:
            base = np.where(self.keep, self.index.matrix[r].astype(np.float64), 0.0)
            shift = np.gradient(base)
            width = np.gradient(shift)
            for key, term in ((("shift", r), shift), (("width", r), width)):
                t = _centred(term, self.keep)
                self._add(key, t / max(float(np.linalg.norm(t)), 1e-12))
        return [self.slot[("shift", r)], self.slot[("width", r)]]

    def fit(self, rows: list[int]) -> tuple[F64, float]:
        """Coefficients of *rows* (non-negative; nuisance of ``rows[0]`` free) and the RSS."""
        idx = [self.row(r) for r in rows]
        if self.nuisance and rows:
            idx += self.nuisance_slots(rows[0])
        ix = np.asarray(idx)
        gram = self.gram[ix[:, None], ix]
        rhs = self.rhs[ix]
        coef = bounded_lstsq(gram, rhs, len(rows))
        rss = float(1.0 - 2 * coef @ rhs + coef @ gram @ coef)
        return coef[: len(rows)], max(rss, 0.0)


def _corr(rss: float) -> float:
    return float(np.sqrt(max(1.0 - rss, 0.0)))


def analyse_mixture(
    index: SearchIndex,
    query: npt.ArrayLike,
    keep: BoolArray | None = None,
    hits: npt.ArrayLike | None = None,
    params: MixtureParams | None = None,
    twins: frozenset[int] = frozenset(),
) -> MixtureFit:
    """Nuisance-first greedy mixture search; returns the accepted components (1: no mixture).

    *query* is preprocessed (unit vector, zero outside *keep*) and aligned with the top hit;
    *hits* are the query's best rows (searched here when None). *twins* are library rows the
    instrument cannot tell from the top hit: they never count as its replacement.
    """
    p = params or MixtureParams()
    q = np.asarray(query, dtype=np.float64)
    mask = np.ones(q.shape, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    q = _centred(q, mask)
    qn = float(np.linalg.norm(q))
    if qn == 0 or len(index) == 0:
        return MixtureFit((), 0.0, 0.0, 1.0)
    q /= qn
    top = [
        int(i)
        for i in (
            index.search(q, p.candidates, mask).indices
            if hits is None
            else np.asarray(hits, dtype=np.intp)[: p.candidates]
        )
    ]
    model = _Model(index, q, mask, p.nuisance)
    n_eff = max(float(mask.sum()) / p.correlation_length, 8.0)
    n_nuisance = 2 if p.nuisance else 0

    def pool_for(chosen: list[int], coef: F64) -> list[int]:
        pool = set(top)
        residual = q - np.stack([model.unit(r) for r in chosen]).T @ coef
        if np.linalg.norm(residual) > 1e-9:
            pool |= {int(i) for i in index.candidates(residual, p.candidates, mask)}
        return sorted(pool - set(chosen))

    def greedy(start: int) -> tuple[list[int], F64, float, float]:
        chosen = [start]
        coef, rss = model.fit(chosen)
        p_value = 1.0
        for size in range(2, p.max_components + 1):
            best: tuple[float, list[int], F64] | None = None
            for cand in pool_for(chosen, coef):
                c, r = model.fit([*chosen, cand])
                if best is None or r < best[0]:
                    best = (r, [*chosen, cand], c)
            if best is None:
                break
            new_rss, rows, c = best
            dof = max(n_eff - size - n_nuisance, 1.0)
            f_stat = (rss - new_rss) / max(new_rss / dof, 1e-12)
            pv = float(fdtrc(1.0, dof, max(f_stat, 0.0)))
            shares = c / c.sum() if c.sum() > 0 else c
            gain = _corr(new_rss) - _corr(rss)
            if pv > p.alpha or shares.min() < p.min_contribution or gain < p.min_gain:
                break
            chosen, coef, rss, p_value = rows, c, new_rss, pv
        return chosen, coef, rss, p_value

    if not top:
        return MixtureFit((), 0.0, 0.0, 1.0)
    chosen, coef, rss, p_value = greedy(top[0])
    single_rss = model.fit(top[:1])[1]
    if _corr(single_rss) < p.low_fit:
        for start in top[1 : p.starts]:
            alt = greedy(start)
            if len(alt[0]) > 1 and alt[2] < rss - 1e-9:
                chosen, coef, rss, p_value = alt
    fit = _corr(rss)
    others = [r for r in top if r not in chosen and r not in twins]

    def without(j: int) -> float:
        rest = [r for r in chosen if r != j]
        return _corr(model.fit(rest)[1]) if rest else 0.0

    def replaced(j: int) -> float:
        best = 0.0
        for alt in others:
            rows = [alt if r == j else r for r in chosen]
            best = max(best, _corr(model.fit(rows)[1]))
        return best

    shares = coef / coef.sum() if coef.sum() > 0 else np.ones(len(chosen)) / len(chosen)
    comps = [
        Component(r, float(s), fit - without(r), fit - replaced(r))
        for r, s in zip(chosen, shares, strict=True)
    ]
    comps.sort(key=lambda c: -c.share)
    single_fit = _corr(single_rss)
    single_replace = (
        comps[0].replace
        if len(comps) == 1
        else single_fit
        - max((_corr(model.fit([a])[1]) for a in top[1:] if a not in twins), default=0.0)
    )
    return MixtureFit(tuple(comps), fit, single_fit, p_value, single_replace)

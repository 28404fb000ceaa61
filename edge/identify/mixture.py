"""Mixture analysis: non-negative least squares over candidate spectra, up to 3 components.

Works on preprocessed vectors (unit norm, mean-centred over the query's ``keep`` mask), where a
mixture's spectrum is, to first order, a non-negative sum of its components' spectra.
Components are added greedily (forward selection with NNLS refits); each addition must pass
three tests or the search stops:

- an F-test on the residual sums of squares of the nested fits (``alpha``), counting
  ``effective_points`` rather than grid points, because smoothing correlates neighbours;
- every component keeps at least ``min_contribution`` of the explained signal;
- the final fit must reach ``min_fit`` correlation with the query: an unknown substance that
  NNLS can only roughly imitate with several library spectra is not reported as a mixture.

Contributions are spectral (share of the fitted signal), not concentrations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import nnls
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
    min_fit: float = 0.95
    min_gain: float = 0.02
    correlation_length: float = 3.0


@dataclass(frozen=True)
class MixtureFit:
    """Best fit found: library rows, their contributions (sum 1) and fit correlations."""

    rows: tuple[int, ...]
    contributions: tuple[float, ...]
    fit: float
    single_fit: float
    p_value: float
    #: The best multi-component model before the ``min_fit`` test (for calibration).
    multi_rows: tuple[int, ...] = ()
    multi_fit: float = 0.0

    @property
    def is_mixture(self) -> bool:
        """True when more than one component was accepted."""
        return len(self.rows) > 1


def _centred(block: F64, keep: BoolArray) -> F64:
    out = np.where(keep, block, 0.0)
    m = max(int(keep.sum()), 1)
    out -= np.where(keep, (out.sum(axis=-1, keepdims=True) / m), 0.0)
    return out


def _fit(a: F64, q: F64) -> tuple[F64, float]:
    coef, rnorm = nnls(a.T, q)
    return coef, float(rnorm) ** 2


def analyse_mixture(
    index: SearchIndex,
    query: npt.ArrayLike,
    keep: BoolArray | None = None,
    hits: npt.ArrayLike | None = None,
    params: MixtureParams | None = None,
) -> MixtureFit:
    """Greedy NNLS mixture search; returns the accepted components (1 when no mixture).

    *query* is preprocessed (unit vector, zero outside *keep*); *hits* are the query's top rows
    from :meth:`SearchIndex.search` (searched here when None).
    """
    p = params or MixtureParams()
    q = np.asarray(query, dtype=np.float64)
    mask = np.ones(q.shape, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    q = _centred(q, mask)
    qn = float(np.linalg.norm(q))
    if qn == 0 or len(index) == 0:
        return MixtureFit((), (), 0.0, 0.0, 1.0)
    q /= qn
    top = (
        index.search(q, p.candidates, mask).indices
        if hits is None
        else np.asarray(hits, dtype=np.intp)[: p.candidates]
    )
    n_eff = max(float(mask.sum()) / p.correlation_length, 8.0)

    unit_rows: dict[int, F64] = {}

    def rows_matrix(rows: list[int]) -> F64:
        missing = [r for r in rows if r not in unit_rows]
        if missing:
            a = _centred(index.matrix[missing].astype(np.float64), mask)
            a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
            unit_rows.update(zip(missing, a, strict=True))
        return np.stack([unit_rows[r] for r in rows])

    chosen = [int(top[0])]
    coef, rss = _fit(rows_matrix(chosen), q)
    single_rss = rss
    p_value = 1.0
    for size in range(2, p.max_components + 1):
        residual = q - rows_matrix(chosen).T @ coef
        pool = set(int(i) for i in top)
        if np.linalg.norm(residual) > 1e-9:
            pool |= set(int(i) for i in index.candidates(residual, p.candidates, mask))
        pool -= set(chosen)
        best: tuple[float, list[int], F64] | None = None
        for cand in sorted(pool):
            rows = [*chosen, cand]
            c, r = _fit(rows_matrix(rows), q)
            if best is None or r < best[0]:
                best = (r, rows, c)
        if best is None:
            break
        new_rss, rows, c = best
        dof = max(n_eff - size, 1.0)
        f_stat = (rss - new_rss) / max(new_rss / dof, 1e-12)
        pv = float(fdtrc(1.0, dof, max(f_stat, 0.0)))
        shares = c / c.sum() if c.sum() > 0 else c
        gain = np.sqrt(max(1 - new_rss, 0)) - np.sqrt(max(1 - rss, 0))
        if pv > p.alpha or shares.min() < p.min_contribution or gain < p.min_gain:
            break
        chosen, coef, rss, p_value = rows, c, new_rss, pv
    fit = float(np.sqrt(max(1.0 - rss, 0.0)))
    single_fit = float(np.sqrt(max(1.0 - single_rss, 0.0)))
    multi_rows, multi_fit = (tuple(chosen), fit) if len(chosen) > 1 else ((), 0.0)
    if len(chosen) > 1 and fit < p.min_fit:
        chosen, coef, fit, p_value = chosen[:1], np.ones(1), single_fit, 1.0
    shares = coef / coef.sum() if coef.sum() > 0 else np.ones(len(chosen)) / len(chosen)
    order = np.argsort(-shares)
    return MixtureFit(
        rows=tuple(int(chosen[i]) for i in order),
        contributions=tuple(float(shares[i]) for i in order),
        fit=fit,
        single_fit=single_fit,
        p_value=p_value,
        multi_rows=multi_rows,
        multi_fit=multi_fit,
    )

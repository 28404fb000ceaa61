"""The plain-correlation baseline the product must beat, measured in the same run.

What a conventional handheld does: correlation (HQI) of mean-centred, vector-normalised
absorbance on the library grid (no baseline removal, no derivative), identified when the best
score reaches ``min_r``; a naive non-negative least-squares fit over the top hits reports a
mixture whenever a second component takes at least ``min_share`` of the fit, without any test
of whether the mixture explains the spectrum significantly better than one substance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import nnls

from edge.identify.decision import Decision
from edge.identify.result import Hit, Identification, MixtureComponent
from edge.identify.search import SearchIndex
from edge.library import Library
from edge.preprocess.chain import preprocess_many, preprocess_with_mask

PLAIN_SPEC: dict[str, Any] = {
    "spikes": {"enabled": False},
    "baseline": None,
    "smoothing": None,
    "mask": [],
    "normalise": "vector",
}


class PlainCorrelation:
    """Baseline identifier with the same ``analyse`` interface as the product."""

    def __init__(
        self, library: Library, min_r: float = 0.9, candidates: int = 5, min_share: float = 0.1
    ):
        self.library = library
        self.min_r = min_r
        self.candidates = candidates
        self.min_share = min_share
        mat, _ = preprocess_many(library.grid, library.spectra, PLAIN_SPEC)
        self.index = SearchIndex(mat)

    def analyse(self, wavenumbers: npt.ArrayLike, absorbance: npt.ArrayLike) -> Decision:
        """Plain HQI plus naive NNLS."""
        v, keep = preprocess_with_mask(wavenumbers, absorbance, PLAIN_SPEC)
        found = self.index.search(v, self.candidates, keep)
        rows = [int(i) for i in found.indices]
        names = [self.library.entries[r].name for r in rows]
        hits = tuple(Hit(n, float(max(s, 0.0))) for n, s in zip(names, found.scores, strict=True))
        r1 = float(found.scores[0])
        a = np.where(keep, self.index.matrix[rows].astype(np.float64), 0.0)
        coef, _ = nnls(a.T, v)
        shares = coef / coef.sum() if coef.sum() > 0 else coef
        comps = [
            (rows[i], float(shares[i])) for i in np.argsort(-shares) if shares[i] >= self.min_share
        ]
        evidence = {"r1": r1, "gap": found.gap}
        if len(comps) >= 2:
            mix = tuple(
                MixtureComponent(self.library.entries[r].name, round(c, 4)) for r, c in comps
            )
            sub = self.library.substance(comps[0][0])
            return Decision(Identification("mixture", sub, 0.5, hits=hits, mixture=mix), evidence)
        if r1 >= self.min_r:
            sub = self.library.substance(rows[0])
            return Decision(Identification("identified", sub, r1, hits=hits), evidence)
        return Decision(Identification("no_match", None, 1 - r1, hits=hits), evidence)

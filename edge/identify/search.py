"""Library search: hit-quality index (Pearson correlation) on preprocessed spectra.

The index holds the preprocessed library as one float32 matrix (rows: unit vectors,
mean-centred over each entry's measured range). A query is preprocessed the same way and is
zero outside its own measured range (``keep``); its score against entry *i* is the Pearson
correlation over ``keep``: ``dot(L_i, q) / norm_keep(L_i)``, where ``norm_keep`` is the
centred norm of ``L_i`` restricted to ``keep`` (computed once per distinct mask and cached).

Large libraries (``>= prefilter_min`` rows) get an exact pre-filter: the rows are projected on
their leading principal components; ``dot(L_i, q) = P_i . p + r_i . q_r`` where the residual
term is bounded by ``|r_i| |q_r|`` (Cauchy-Schwarz). Candidates are re-ranked exactly in order
of that upper bound until no unseen row can beat the k-th exact score, so the result always
equals brute force; when the bound is too loose to help, it falls back to the full product.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

#: Rows at or above which the low-rank pre-filter is built.
PREFILTER_MIN_ROWS = 4000


@dataclass(frozen=True)
class SearchResult:
    """Top-k rows (best first) with their correlation scores."""

    indices: IntArray
    scores: npt.NDArray[np.float64]

    @property
    def gap(self) -> float:
        """Score of hit 1 minus score of hit 2 (hit 1's score when there is one hit)."""
        if self.scores.size == 0:
            return 0.0
        if self.scores.size == 1:
            return float(self.scores[0])
        return float(self.scores[0] - self.scores[1])


class SearchIndex:
    """Exact top-k correlation search over a preprocessed library matrix."""

    def __init__(
        self,
        vectors: npt.ArrayLike,
        *,
        prefilter_min: int = PREFILTER_MIN_ROWS,
        rank: int = 48,
        chunk_rows: int = 1024,
        seed: int = 0,
    ) -> None:
        self.matrix: F32 = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.matrix.ndim != 2:
            raise ValueError("library vectors must be a 2-D matrix")
        self.chunk_rows = chunk_rows
        self._norm_cache: OrderedDict[bytes, F32] = OrderedDict()
        self.basis: F32 | None = None
        self.projected: F32 | None = None
        self.residual_norms: F32 | None = None
        n, d = self.matrix.shape
        if n >= prefilter_min and rank < d:
            self._build_prefilter(min(rank, d), seed)

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def _build_prefilter(self, rank: int, seed: int) -> None:
        """Leading principal directions from a row sample (second-moment matrix, d x d)."""
        rng = np.random.default_rng(seed)
        n, d = self.matrix.shape
        sample = np.sort(rng.choice(n, size=min(n, 4000), replace=False))
        second = np.zeros((d, d), dtype=np.float64)
        for start in range(0, sample.size, self.chunk_rows):
            block = self.matrix[sample[start : start + self.chunk_rows]].astype(np.float64)
            second += block.T @ block
        _, vecs = np.linalg.eigh(second)  # ascending eigenvalues
        self.basis = np.ascontiguousarray(vecs[:, ::-1][:, :rank], dtype=np.float32)  # (d, rank)
        basis64 = self.basis.astype(np.float64)
        proj = np.empty((n, rank), dtype=np.float32)
        res = np.empty(n, dtype=np.float32)
        for start in range(0, n, self.chunk_rows):
            block = self.matrix[start : start + self.chunk_rows].astype(np.float64)
            p = block @ basis64
            proj[start : start + len(block)] = p
            r2 = np.einsum("ij,ij->i", block, block) - np.einsum("ij,ij->i", p, p)
            res[start : start + len(block)] = np.sqrt(np.maximum(r2, 0.0))
        # float32 rounding slack so the bound stays a true upper bound
        self.projected, self.residual_norms = proj, res + 1e-4

    def keep_norms(self, keep: BoolArray | None) -> F32:
        """Centred norm of every row restricted to *keep* (cached per distinct mask)."""
        if keep is None or bool(np.all(keep)):
            key = b"all"
        else:
            key = hashlib.sha1(np.packbits(keep).tobytes()).digest()
        hit = self._norm_cache.get(key)
        if hit is not None:
            self._norm_cache.move_to_end(key)
            return hit
        n, d = self.matrix.shape
        out = np.empty(n, dtype=np.float32)
        sel = np.ones(d, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
        cols = np.flatnonzero(sel)
        m = cols.size
        for start in range(0, n, self.chunk_rows):
            block = self.matrix[start : start + self.chunk_rows][:, cols].astype(np.float64)
            ss = np.einsum("ij,ij->i", block, block) - block.sum(axis=1) ** 2 / max(m, 1)
            out[start : start + len(block)] = np.sqrt(np.maximum(ss, 0.0))
        np.maximum(out, 1e-6, out=out)
        self._norm_cache[key] = out
        while len(self._norm_cache) > 8:
            self._norm_cache.popitem(last=False)
        return out

    def scores(self, query: npt.ArrayLike, keep: BoolArray | None = None) -> F32:
        """Correlation of *query* with every row (brute force, one matrix-vector product)."""
        q = np.asarray(query, dtype=np.float32)
        return (self.matrix @ q) / self.keep_norms(keep)

    def search(
        self, query: npt.ArrayLike, k: int = 5, keep: BoolArray | None = None
    ) -> SearchResult:
        """The *k* best rows for *query* (preprocessed, zero outside *keep*), best first."""
        n = self.matrix.shape[0]
        k = max(1, min(k, n)) if n else 0
        if k == 0:
            return SearchResult(np.empty(0, dtype=np.intp), np.empty(0))
        q = np.asarray(query, dtype=np.float32)
        norms = self.keep_norms(keep)
        if (
            self.basis is not None
            and self.projected is not None
            and self.residual_norms is not None
        ):
            found = self._search_prefiltered(q, k, norms)
            if found is not None:
                return found
        s = (self.matrix @ q) / norms
        return _top(s, np.arange(n), k)

    def candidates(self, query: npt.ArrayLike, k: int, keep: BoolArray | None = None) -> IntArray:
        """Rows likely among the *k* best for *query*: exact for small libraries, else the
        best by the low-rank approximation (cheap; for heuristics such as mixture search)."""
        if self.basis is None or self.projected is None:
            return self.search(query, k, keep).indices
        q = np.asarray(query, dtype=np.float32)
        approx = (self.projected @ (q @ self.basis)) / self.keep_norms(keep)
        k = max(1, min(k, approx.size))
        part = np.argpartition(-approx, k - 1)[:k]
        return np.asarray(part[np.argsort(-approx[part])], dtype=np.intp)

    def _search_prefiltered(self, q: F32, k: int, norms: F32) -> SearchResult | None:
        assert self.basis is not None and self.projected is not None
        assert self.residual_norms is not None
        qp = q @ self.basis
        q_res = float(np.sqrt(max(float(q @ q) - float(qp @ qp), 0.0))) + 1e-4
        upper = (self.projected @ qp + self.residual_norms * q_res) / norms
        n = upper.size
        first = np.argpartition(-upper, min(max(8 * k, 128), n) - 1)[: max(8 * k, 128)]
        exact = (self.matrix[first] @ q) / norms[first]
        kth = float(np.partition(exact, exact.size - k)[exact.size - k])
        rest = np.flatnonzero(upper > kth)
        rest = rest[~np.isin(rest, first)]
        if rest.size > n // 4:
            return None  # bound too loose for this query: brute force is cheaper
        rows = np.concatenate([first, rest])
        scores = np.concatenate([exact, (self.matrix[rest] @ q) / norms[rest]])
        return _top(scores, rows, k)


def _top(scores: npt.ArrayLike, rows: IntArray, k: int) -> SearchResult:
    s = np.asarray(scores, dtype=np.float64)
    part = np.argpartition(-s, k - 1)[:k] if k < s.size else np.arange(s.size)
    # ties broken by row index so results are deterministic
    order = part[np.lexsort((rows[part], -s[part]))]
    return SearchResult(np.asarray(rows[order], dtype=np.intp), s[order])

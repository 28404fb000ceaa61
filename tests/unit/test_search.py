"""Library search: correlation scores, top-k, gap, masks; the pre-filter equals brute force."""

from __future__ import annotations

import numpy as np
import pytest

from edge.identify.search import SearchIndex


def unit_rows(m: np.ndarray) -> np.ndarray:
    m = m - m.mean(axis=1, keepdims=True)
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def smooth_random(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    base = gaussian_filter1d(rng.normal(size=(40, d)), 3, axis=1)
    mix = rng.dirichlet(np.full(40, 0.1), size=n)
    return unit_rows(mix @ base + 0.05 * gaussian_filter1d(rng.normal(size=(n, d)), 2, axis=1))


def brute(
    lib: np.ndarray, q: np.ndarray, keep: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    keep = np.ones(lib.shape[1], bool) if keep is None else keep
    a = lib[:, keep].astype(np.float64)
    b = q[keep].astype(np.float64)
    s = np.array([np.corrcoef(r, b)[0, 1] for r in a])
    order = np.argsort(-s, kind="stable")[:k]
    return order, s[order]


def test_scores_are_pearson_correlation() -> None:
    rng = np.random.default_rng(0)
    lib = smooth_random(rng, 50, 300)
    q = unit_rows(lib[7:8] + 0.3 * rng.normal(size=(1, 300)))[0]
    res = SearchIndex(lib).search(q, 5)
    idx, s = brute(lib, q, None, 5)
    assert res.indices[0] == 7
    assert np.array_equal(res.indices, idx)
    assert np.allclose(res.scores, s, atol=1e-5)
    assert res.gap == pytest.approx(s[0] - s[1], abs=1e-5)


def test_masked_query_scores_over_its_range_only() -> None:
    rng = np.random.default_rng(1)
    lib = smooth_random(rng, 40, 300)
    keep = np.zeros(300, bool)
    keep[50:250] = True
    q = np.where(keep, lib[3], 0.0)
    q[keep] -= q[keep].mean()
    q /= np.linalg.norm(q)
    res = SearchIndex(lib).search(q, 3, keep)
    idx, s = brute(lib, q, keep, 3)
    assert res.indices[0] == 3 and res.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(res.indices, idx) and np.allclose(res.scores, s, atol=1e-5)


@pytest.mark.parametrize("noise", [0.02, 0.1, 0.5, 2.0])
def test_prefilter_equals_brute_force(noise: float) -> None:
    rng = np.random.default_rng(2)
    lib = smooth_random(rng, 6000, 256)
    fast = SearchIndex(lib, prefilter_min=1000, rank=24)
    slow = SearchIndex(lib, prefilter_min=10**9)
    assert fast.basis is not None and slow.basis is None
    for row in rng.choice(6000, 5, replace=False):
        q = unit_rows(lib[row : row + 1] + noise * rng.normal(size=(1, 256)) / 16)[0]
        a, b = fast.search(q, 10), slow.search(q, 10)
        assert np.array_equal(a.indices, b.indices)
        assert np.allclose(a.scores, b.scores, atol=1e-5)


def test_k_larger_than_library_and_empty_library() -> None:
    rng = np.random.default_rng(3)
    lib = smooth_random(rng, 3, 50)
    res = SearchIndex(lib).search(lib[0], 10)
    assert len(res.indices) == 3 and res.indices[0] == 0
    empty = SearchIndex(np.zeros((0, 50), np.float32)).search(lib[0], 5)
    assert empty.indices.size == 0 and empty.gap == 0.0


def test_prefilter_path_is_taken_for_close_matches() -> None:
    rng = np.random.default_rng(4)
    lib = smooth_random(rng, 6000, 256)
    fast = SearchIndex(lib, prefilter_min=1000, rank=24)
    q = lib[17].copy()
    direct = fast._search_prefiltered(q, 5, fast.keep_norms(None))
    assert direct is not None and direct.indices[0] == 17

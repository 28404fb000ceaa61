"""Mixtures: real 2-3 component mixtures are found; pure substances and unknowns are not."""

from __future__ import annotations

import numpy as np
import pytest
from identify_helpers import band_spectrum, synthetic_library

from edge.identify.mixture import MixtureParams, analyse_mixture
from edge.identify.reference import SEARCH_STRIDE, PreparedLibrary, reduce_vector
from edge.preprocess.chain import preprocess_with_mask
from edge.preprocess.grid import STANDARD_GRID

X = STANDARD_GRID


@pytest.fixture(scope="module")
def prepared() -> PreparedLibrary:
    return PreparedLibrary(synthetic_library(40, seed=5))


def query(y: np.ndarray, rng: np.random.Generator, noise: float = 2e-3):
    """Preprocessed and reduced as the search sees it (every SEARCH_STRIDE-th point)."""
    v, keep = preprocess_with_mask(X, y + 0.02 + rng.normal(0, noise, X.size))
    return reduce_vector(v, keep, SEARCH_STRIDE)


@pytest.mark.parametrize(
    ("rows", "fractions"), [((3, 8), (0.6, 0.4)), ((1, 22, 30), (0.4, 0.35, 0.25))]
)
def test_mixture_components_found(prepared: PreparedLibrary, rows, fractions) -> None:
    rng = np.random.default_rng(0)
    y = sum(f * prepared.library.spectra[r] for r, f in zip(rows, fractions, strict=True))
    v, keep = query(np.asarray(y, dtype=float), rng)
    fit = analyse_mixture(prepared.index, v, keep)
    assert set(fit.rows) == set(rows)
    assert fit.fit > 0.97 and fit.p_value < 1e-4
    assert sum(fit.contributions) == pytest.approx(1.0)
    major = fit.rows[int(np.argmax(fit.contributions))]
    assert major == rows[0]


def test_pure_substance_is_not_a_mixture(prepared: PreparedLibrary) -> None:
    rng = np.random.default_rng(1)
    for row in (0, 11, 27):
        v, keep = query(np.asarray(prepared.library.spectra[row], dtype=float), rng)
        fit = analyse_mixture(prepared.index, v, keep)
        assert fit.rows == (row,) and not fit.is_mixture


def test_unknown_is_not_explained_as_mixture(prepared: PreparedLibrary) -> None:
    rng = np.random.default_rng(2)
    fooled = 0
    for _ in range(20):
        v, keep = query(band_spectrum(rng, X), rng)
        fooled += analyse_mixture(prepared.index, v, keep).is_mixture
    assert fooled <= 1


def test_minor_component_below_min_contribution_is_dropped(prepared: PreparedLibrary) -> None:
    rng = np.random.default_rng(3)
    y = 0.97 * prepared.library.spectra[5] + 0.03 * prepared.library.spectra[9]
    v, keep = query(np.asarray(y, dtype=float), rng)
    fit = analyse_mixture(prepared.index, v, keep, params=MixtureParams(min_contribution=0.1))
    assert fit.rows == (5,)


def test_mixture_found_with_low_rank_candidates_in_a_large_library() -> None:
    big = PreparedLibrary(synthetic_library(400, seed=12), prefilter_min=100, rank=32)
    assert big.index.basis is not None
    rng = np.random.default_rng(5)
    y = 0.55 * np.asarray(big.library.spectra[17], float) + 0.45 * np.asarray(
        big.library.spectra[250], float
    )
    v, keep = query(y, rng)
    fit = analyse_mixture(big.index, v, keep)
    assert set(fit.rows) == {17, 250}

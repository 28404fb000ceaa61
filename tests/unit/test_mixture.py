"""Mixtures: real 2-3 component mixtures are found; pure substances measured on another
instrument (shifted, broadened) and unknowns are not explained as mixtures (no phantoms)."""

from __future__ import annotations

import numpy as np
import pytest
from identify_helpers import band_spectrum, synthetic_library
from scipy.ndimage import gaussian_filter1d

from edge.identify.mixture import MixtureParams, analyse_mixture, bounded_lstsq
from edge.identify.reference import PreparedLibrary
from edge.preprocess.chain import preprocess_with_mask
from edge.preprocess.grid import STANDARD_GRID

X = STANDARD_GRID


@pytest.fixture(scope="module")
def prepared() -> PreparedLibrary:
    return PreparedLibrary(synthetic_library(40, seed=5))


def query(prepared: PreparedLibrary, y: np.ndarray, rng: np.random.Generator, noise: float = 2e-3):
    """Preprocessed and reduced as the search sees it."""
    v, keep = preprocess_with_mask(X, y + 0.02 + rng.normal(0, noise, X.size))
    return prepared.reduce(v, keep)


@pytest.mark.parametrize(
    ("rows", "fractions"), [((3, 8), (0.6, 0.4)), ((1, 22, 30), (0.4, 0.35, 0.25))]
)
def test_mixture_components_found(prepared: PreparedLibrary, rows, fractions) -> None:
    rng = np.random.default_rng(0)
    y = sum(f * prepared.library.spectra[r] for r, f in zip(rows, fractions, strict=True))
    v, keep = query(prepared, np.asarray(y, dtype=float), rng)
    fit = analyse_mixture(prepared.index, v, keep)
    assert set(fit.rows) == set(rows)
    assert fit.fit > 0.97 and fit.p_value < 1e-4
    assert sum(fit.contributions) == pytest.approx(1.0)
    assert fit.rows[0] == rows[0]  # largest share first
    for c in fit.components:  # each has evidence of its own
        assert c.drop > 0.01 and c.replace > 0.01


def test_pure_substance_is_not_a_mixture(prepared: PreparedLibrary) -> None:
    rng = np.random.default_rng(1)
    for row in (0, 11, 27):
        v, keep = query(prepared, np.asarray(prepared.library.spectra[row], dtype=float), rng)
        fit = analyse_mixture(prepared.index, v, keep)
        assert fit.rows == (row,) and not fit.is_mixture
        assert fit.single_replace > 0.05


@pytest.mark.parametrize("row", [2, 9, 16, 25, 33])
def test_another_instrument_is_no_phantom(prepared: PreparedLibrary, row: int) -> None:
    """Shift and resolution loss leave structure a second entry could imitate; the top hit's
    shift and width terms take it first."""
    rng = np.random.default_rng(row)
    y = gaussian_filter1d(np.asarray(prepared.library.spectra[row], float), 1.5)
    y = np.interp(X, X + 2.5, y)
    v, keep = query(prepared, y, rng)
    fit = analyse_mixture(prepared.index, v, keep)
    assert fit.rows == (row,), fit
    no_nuisance = analyse_mixture(prepared.index, v, keep, params=MixtureParams(nuisance=False))
    assert no_nuisance.single_fit < fit.single_fit  # the terms do explain the difference


def test_unknown_is_not_explained_as_mixture(prepared: PreparedLibrary) -> None:
    """NNLS imitates an unknown roughly with several entries; the fit stays poor and the
    decision, on the components' calibrated probabilities, never calls it a mixture."""
    from identify_helpers import decisive_calibration

    from edge.identify.decision import decide

    rng = np.random.default_rng(2)
    cal = decisive_calibration()
    for _ in range(20):
        y = band_spectrum(rng, X)
        fit = analyse_mixture(prepared.index, *query(prepared, y, rng))
        if fit.is_mixture:
            assert fit.fit < 0.9
        v, keep = preprocess_with_mask(X, y + rng.normal(0, 2e-3, X.size))
        r = decide(prepared, v, keep, cal).identification
        assert r.status in ("no_match", "inconclusive"), r


def test_minor_component_below_min_contribution_is_dropped(prepared: PreparedLibrary) -> None:
    rng = np.random.default_rng(3)
    y = 0.97 * prepared.library.spectra[5] + 0.03 * prepared.library.spectra[9]
    v, keep = query(prepared, np.asarray(y, dtype=float), rng)
    fit = analyse_mixture(prepared.index, v, keep, params=MixtureParams(min_contribution=0.1))
    assert fit.rows == (5,)


def test_mixture_found_with_low_rank_candidates_in_a_large_library() -> None:
    big = PreparedLibrary(synthetic_library(400, seed=12), prefilter_min=100, rank=32)
    assert big.index.basis is not None
    rng = np.random.default_rng(5)
    y = 0.55 * np.asarray(big.library.spectra[17], float) + 0.45 * np.asarray(
        big.library.spectra[250], float
    )
    v, keep = query(big, y, rng)
    fit = analyse_mixture(big.index, v, keep)
    assert set(fit.rows) == {17, 250}


def test_bounded_lstsq_keeps_components_non_negative_and_nuisance_free() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(size=(4, 50))
    q = 2.0 * a[0] - 1.5 * a[2] + 0.7 * a[3]  # column 2 would want a negative coefficient
    coef = bounded_lstsq(a @ a.T, a @ q, n_nonneg=3)
    assert coef[2] == 0.0 and coef[0] > 0 and coef[3] != 0
    free = bounded_lstsq(a @ a.T, a @ q, n_nonneg=0)
    assert free[2] == pytest.approx(-1.5, abs=1e-6) and free[3] == pytest.approx(0.7, abs=1e-6)

"""Preprocessing: pure functions, no runtime."""

from __future__ import annotations

import numpy as np
import pytest

from edge.preprocess.chain import (
    DEFAULT_SPEC,
    preprocess,
    preprocess_many,
    preprocess_with_mask,
    spec_grid,
    spec_hash,
    validate_spec,
)
from edge.preprocess.spectral import atr_correct, normalise, resample


def bands(
    x: np.ndarray, centres=(720, 1050, 1600, 1720, 2950), widths=(8, 12, 10, 9, 20)
) -> np.ndarray:
    y = np.zeros_like(x, dtype=float)
    for i, (c, w) in enumerate(zip(centres, widths, strict=True)):
        y += (0.3 + 0.15 * i) * w**2 / ((x - c) ** 2 + w**2)
    return y


def test_resample_is_exact_on_linear_data_and_marks_range() -> None:
    x = np.linspace(700, 3000, 300)
    grid = spec_grid(DEFAULT_SPEC)
    y, valid = resample(x, 2.0 + 0.001 * x, grid)
    assert np.allclose(y[valid], 2.0 + 0.001 * grid[valid])
    assert not valid[grid < 700].any() and not valid[grid > 3000].any()
    assert valid[(grid >= 700) & (grid <= 3000)].all()


def test_resample_accepts_decreasing_and_nonfinite_points() -> None:
    x = np.linspace(4000, 600, 500)
    y = bands(x)
    y[10] = np.nan
    grid = spec_grid(DEFAULT_SPEC)
    out, valid = resample(x, y, grid)
    assert np.isfinite(out).all() and valid[grid <= 4000].all()


def test_preprocess_output_is_unit_vector_on_grid() -> None:
    x = np.linspace(600, 4000, 1800)
    v = preprocess(x, bands(x), DEFAULT_SPEC)
    assert v.shape == spec_grid(DEFAULT_SPEC).shape
    assert np.isclose(np.linalg.norm(v), 1.0)


def test_preprocess_invariant_to_scale_offset_and_sloped_baseline() -> None:
    x = np.linspace(600, 4000, 1800)
    ref = preprocess(x, bands(x))
    disturbed = 0.4 * bands(x) + 0.2 + 3e-5 * (x - 600) + 0.05 * ((x - 2300) / 1700) ** 2
    assert float(ref @ preprocess(x, disturbed)) > 0.98


def test_preprocess_agrees_across_instrument_grids() -> None:
    a = np.linspace(600, 4000, 3400)  # 1 cm^-1
    b = np.linspace(650, 4000, 430)  # ~7.8 cm^-1
    assert float(preprocess(a, bands(a)) @ preprocess(b, bands(b))) > 0.97


def test_co2_region_and_unmeasured_range_are_zero() -> None:
    x = np.linspace(1000, 4000, 1500)
    y = bands(x) + 0.5 * np.exp(-(((x - 2350) / 15) ** 2))  # strong CO2
    v, keep = preprocess_with_mask(x, y)
    grid = spec_grid(DEFAULT_SPEC)
    assert np.all(v[(grid >= 2280) & (grid <= 2400)] == 0)
    assert np.all(v[grid < 1000] == 0)
    assert not keep[grid < 1000].any() and keep[(grid > 1100) & (grid < 2200)].all()


def test_atr_correction_scales_with_wavenumber() -> None:
    x = np.array([500.0, 1000.0, 2000.0])
    assert np.allclose(atr_correct(x, np.ones(3), 1000.0), [0.5, 1.0, 2.0])
    with pytest.raises(ValueError):
        atr_correct(x, np.ones(3), 0.0)


def test_normalise_methods() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    v = normalise(y, "vector")
    assert np.isclose(v.sum(), 0) and np.isclose(np.linalg.norm(v), 1)
    s = normalise(y, "snv")
    assert np.isclose(s.std(), 1)
    assert not normalise(np.ones(4), "vector").any()
    keep = np.array([True, True, False, True])
    assert normalise(y, "vector", keep)[2] == 0


def test_spec_validation_and_hash() -> None:
    with pytest.raises(ValueError):
        validate_spec({"bogus": 1})
    with pytest.raises(ValueError):
        validate_spec({"smoothing": {"window": 10, "polyorder": 2, "deriv": 1}})
    with pytest.raises(ValueError):
        validate_spec({"baseline": {"method": "magic"}})
    assert validate_spec({})["grid"] == DEFAULT_SPEC["grid"]
    assert spec_hash({}) == spec_hash(DEFAULT_SPEC)
    assert spec_hash({"normalise": "snv"}) != spec_hash(DEFAULT_SPEC)


def test_region_weights_are_checked_and_count_in_the_match() -> None:
    for bad in ([[1800.0, 4000.0]], [[1800.0, 4000.0, -1.0]], [[1800.0, "x", 0.1]], [7]):
        with pytest.raises(ValueError):
            validate_spec({"weights": bad})
    # a version-1 spec (an older manifest) was written before weights existed: none
    assert validate_spec({"version": 1})["weights"] == []
    assert validate_spec({})["weights"] == DEFAULT_SPEC["weights"] != []
    with pytest.raises(ValueError):
        validate_spec({"version": 3})
    x = spec_grid(DEFAULT_SPEC)
    clean = bands(x)
    # a foreign band above 1800 cm-1 costs a tenth as much as in the fingerprint
    high = clean + 0.5 * 15.0**2 / ((x - 3400.0) ** 2 + 15.0**2)
    low = clean + 0.5 * 15.0**2 / ((x - 1300.0) ** 2 + 15.0**2)
    flat = {"weights": []}
    loss_weighted = 1.0 - float(preprocess(x, clean) @ preprocess(x, high))
    loss_flat = 1.0 - float(preprocess(x, clean, flat) @ preprocess(x, high, flat))
    assert loss_weighted < 0.3 * loss_flat
    in_fingerprint = 1.0 - float(preprocess(x, clean) @ preprocess(x, low))
    assert in_fingerprint > 3 * loss_weighted
    assert spec_hash(flat) != spec_hash({})


def test_spec_without_baseline_or_smoothing() -> None:
    x = np.linspace(600, 4000, 900)
    v = preprocess(x, bands(x), {"baseline": None, "smoothing": None, "spikes": {"enabled": False}})
    assert np.isclose(np.linalg.norm(v), 1.0)


def test_preprocess_many_matches_single() -> None:
    x = spec_grid(DEFAULT_SPEC)
    rows = np.stack([bands(x), bands(x, centres=(800, 1200, 1500, 1750, 3300))])
    valid = np.ones_like(rows, dtype=bool)
    valid[1, x < 900] = False
    mat, masks = preprocess_many(x, rows, DEFAULT_SPEC, valid)
    assert np.allclose(mat[0], preprocess(x, rows[0]), atol=1e-6)
    assert np.allclose(mat[1], preprocess(x[x >= 900], rows[1][x >= 900]), atol=1e-6)
    assert not masks[1][x < 900].any()


def test_savgol_matches_scipy() -> None:
    from scipy.signal import savgol_filter

    from edge.preprocess.spectral import savgol

    y = np.random.default_rng(0).normal(size=500)
    for deriv in (0, 1, 2):
        ref = savgol_filter(y, 11, 3, deriv=deriv, mode="nearest")
        assert np.allclose(savgol(y, 11, 3, deriv), ref, atol=1e-12)

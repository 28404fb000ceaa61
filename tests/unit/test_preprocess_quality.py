"""Quality gates: each reason code fires on its condition and not on a good scan."""

from __future__ import annotations

import numpy as np

from edge.preprocess.quality import (
    BACKGROUND_MISMATCH,
    BACKGROUND_OLD,
    LOW_SIGNAL,
    NO_SAMPLE,
    OUT_OF_RANGE,
    SATURATED,
    check_quality,
    noise_sigma,
)

X = np.linspace(650, 4000, 1200)
RNG = np.random.default_rng(1)


def sample_absorbance(noise: float = 1e-3) -> np.ndarray:
    y = 0.4 * np.exp(-(((X - 1700) / 12) ** 2)) + 0.2 * np.exp(-(((X - 1100) / 20) ** 2))
    return y + 0.02 + RNG.normal(0, noise, X.size)


def background(scale: float = 40000.0) -> np.ndarray:
    return scale * np.exp(-(((X - 2000) / 1500) ** 2)) + 500


def test_good_scan_passes() -> None:
    bg = background()
    rep = check_quality(
        X,
        sample_absorbance(),
        sample_counts=bg * 0.6,
        background_counts=bg,
        full_scale=65535,
        background_age_s=60,
        reference_background=bg * 1.02,
    )
    assert rep.ok, rep.reasons
    assert rep.metrics["snr"] > 50


def test_saturated() -> None:
    bg = background(80000).clip(max=65535)
    rep = check_quality(X, sample_absorbance(), background_counts=bg, full_scale=65535)
    assert rep.reason == SATURATED


def test_low_signal_from_weak_background() -> None:
    rep = check_quality(
        X, sample_absorbance(), background_counts=background(1000), full_scale=65535
    )
    assert LOW_SIGNAL in rep.reasons


def test_low_signal_from_noise() -> None:
    rep = check_quality(X, sample_absorbance(noise=0.05))
    assert rep.reasons == (LOW_SIGNAL,)


def test_no_sample_on_empty_crystal() -> None:
    empty = 0.001 + RNG.normal(0, 5e-4, X.size) + 1e-6 * X
    assert check_quality(X, empty).reasons == (NO_SAMPLE,)


def test_background_old() -> None:
    rep = check_quality(X, sample_absorbance(), background_age_s=7200)
    assert rep.reasons == (BACKGROUND_OLD,)


def test_background_mismatch() -> None:
    bg = background()
    other = 40000 * np.exp(-(((X - 3200) / 600) ** 2)) + 500
    rep = check_quality(
        X, sample_absorbance(), background_counts=other, reference_background=bg, full_scale=65535
    )
    assert BACKGROUND_MISMATCH in rep.reasons


def test_noise_sigma_estimates_white_noise() -> None:
    assert abs(noise_sigma(RNG.normal(0, 0.01, 5000)) - 0.01) < 0.001


def test_out_of_range_when_spectrum_misses_the_grid() -> None:
    near_ir = np.linspace(4000, 12000, 800)
    y = 0.3 * np.exp(-(((near_ir - 6000) / 50) ** 2)) + 0.01
    rep = check_quality(near_ir, y, grid_range=(650.0, 3998.0))
    assert OUT_OF_RANGE in rep.reasons and rep.metrics["grid_coverage"] == 0.0
    assert check_quality(X, sample_absorbance(), grid_range=(650.0, 3998.0)).ok


def test_absurd_absorbance_counts_as_saturated() -> None:
    percent_t_as_absorbance = 60 + 30 * np.exp(-(((X - 1700) / 12) ** 2))
    assert check_quality(X, percent_t_as_absorbance).reason == SATURATED

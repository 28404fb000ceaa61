"""Spikes are found and repaired on the native axis; bands are left alone; a spike that cannot
be repaired is a quality reason, never a band."""

from __future__ import annotations

import numpy as np
import pytest

from edge.preprocess.chain import DEFAULT_SPEC, preprocess, spec_grid
from edge.preprocess.quality import SPIKE, check_quality
from edge.preprocess.spikes import find_spikes, remove_spikes_native, repair_spikes


def bands(x: np.ndarray) -> np.ndarray:
    y = np.zeros_like(x, dtype=float)
    for i, (c, w) in enumerate(((720, 8), (1050, 12), (1600, 10), (1720, 6), (2950, 20))):
        y += (0.3 + 0.15 * i) * w**2 / ((x - c) ** 2 + w**2)
    return y + np.random.default_rng(0).normal(0, 1e-3, x.size)


@pytest.mark.parametrize("step", [1.0, 2.0, 4.0, 7.5])
def test_single_spike_is_found_on_any_axis(step: float) -> None:
    """Repairable on a fine axis; on a coarse one (where a narrow band looks the same) it is
    ambiguous, and repairing the most outstanding ambiguous run removes it."""
    x = np.arange(650.0, 4000.0, step)
    clean = bands(x)
    for i in np.linspace(0, x.size - 1, 15).astype(int):
        spiky = clean.copy()
        spiky[i] += 3.0
        rep = find_spikes(spiky, step=step)
        assert not rep.unrepairable
        if step <= 2.5:
            assert [r for r in rep.repairable if r[0] <= i < r[1]]
            fixed = repair_spikes(spiky, rep)
        else:
            assert [r for r in rep.dominant(1) if r[0] <= i < r[1]]
            fixed = repair_spikes(spiky, rep, ambiguous=1)
        near = clean[max(i - 1, 0) : i + 2]
        assert abs(fixed[i] - clean[i]) < 0.05 + float(np.ptp(near))  # a line between neighbours


def test_bands_are_not_spikes() -> None:
    for step in (1.0, 2.0, 4.0):
        x = np.arange(650.0, 4000.0, step)
        rep = find_spikes(bands(x), step=step)
        assert rep.repairable == () and rep.unrepairable == ()


def test_narrow_band_on_a_coarse_axis_is_kept() -> None:
    """At 8 cm-1 a 6 cm-1 band spans one point: it stays unless taller than everything else."""
    x = np.arange(650.0, 4000.0, 8.0)
    y = bands(x) + 0.4 * 9 / ((x - 1304) ** 2 + 9)
    rep = find_spikes(y, step=8.0)
    assert rep.repairable == () and rep.unrepairable == ()


def test_two_point_spike_and_negative_spike() -> None:
    x = np.arange(650.0, 4000.0, 2.0)
    clean = bands(x)
    y = clean.copy()
    y[500:502] += 2.0
    y[900] -= 1.0
    rep = find_spikes(y, step=2.0)
    assert sorted(rep.repairable) == [(500, 502), (900, 901)]
    assert np.allclose(repair_spikes(y, rep)[[500, 501, 900]], clean[[500, 501, 900]], atol=0.05)


def test_a_glitching_detector_cannot_be_repaired() -> None:
    x = np.arange(650.0, 4000.0, 2.0)
    y = bands(x)
    for i in range(30, 330, 20):  # fifteen spikes below 1300 cm-1: a glitching detector
        y[i] += 1.0
    rep = find_spikes(y, step=2.0, wavenumbers=x)
    assert len(rep.unrepairable) == 15 and not rep.repairable
    vapour = bands(x)
    for i in range(360, 640, 20):  # fourteen lone lines in the water-vapour region
        vapour[i] += 0.05
    rep = find_spikes(vapour, step=2.0, wavenumbers=x)
    assert len(rep.repairable) >= 10 and not rep.unrepairable  # repaired, not a glitch
    assert SPIKE in check_quality(x, y).reasons
    assert SPIKE not in check_quality(x, bands(x)).reasons


def test_library_spectra_have_no_spikes() -> None:
    """Strong narrow bands of real (ENFSI-like, coarse) spectra and single-band spectra are
    bands, not spikes: nothing in the shipped library is flagged."""
    from edge.library import load_library

    lib = load_library()
    for i, e in enumerate(lib.entries):
        rep = find_spikes(np.asarray(lib.spectra[i], dtype=float), step=4.0)
        assert rep.repairable == () and rep.unrepairable == (), e.name


def test_preprocessing_removes_the_spike_before_resampling() -> None:
    x = np.arange(650.0, 4000.0, 1.0)  # fine native axis: the box filter would smear a spike
    clean = bands(x)
    spiky = clean.copy()
    spiky[600] += 3.0  # 1250 cm-1, in the fingerprint (the match weights it fully)
    a, b = preprocess(x, clean), preprocess(x, spiky)
    assert float(a @ b) > 0.999
    off = preprocess(x, spiky, {"spikes": {"enabled": False}})
    assert float(a @ off) < 0.95  # without it the spike spoils the vector
    xs, _, rep = remove_spikes_native(x[::-1], spiky[::-1])  # any axis order
    assert np.all(np.diff(xs) > 0) and rep.repairable == ((600, 601),)
    assert spec_grid(DEFAULT_SPEC).size == a.size

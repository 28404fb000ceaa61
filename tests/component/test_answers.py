"""Answers on the shipped library: spikes on the native axis (issue 8 #5), weak clean spectra,
leave-one-source-out calibration records."""

from __future__ import annotations

import numpy as np
import pytest
from identify_helpers import synthetic_library

from edge.evaluate.challenge import Perturbation, measure
from edge.evaluate.runner import calibrate_library
from edge.evaluate.sources import cross_source_queries, material_groups
from edge.identify.identifier import Identifier
from edge.library import Library, LibraryEntry, load_library


@pytest.fixture(scope="module")
def shipped() -> Identifier:
    return Identifier(load_library())  # with the library's own calibration.json


def cocaine(step: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    lib = load_library()
    grid, a = lib.absorbance("Cocaine HCl")
    x = np.arange(660.0, 3990.0, step)
    y = 0.6 * np.interp(x, grid, a) + 0.01 + np.random.default_rng(seed).normal(0, 5e-4, x.size)
    return x, y


def test_library_calibration_is_shipped(shipped: Identifier) -> None:
    assert shipped.calibration_status["matches_library"]
    assert shipped.calibration.calibrated("identified")


def test_a_calibration_fitted_under_other_preprocessing_is_stale(
    shipped: Identifier, caplog: pytest.LogCaptureFixture
) -> None:
    """The calibration records the search spec it was fitted under: the same library
    searched another way does not match it, and says so."""
    other = Identifier(shipped.library, spec={"weights": []})
    assert other.calibration_status["source"].endswith("calibration.json")
    assert not other.calibration_status["matches_library"]
    assert "fitted for other library content or preprocessing" in caplog.text


@pytest.mark.parametrize("step", [1.7, 7.0])
@pytest.mark.timeout(300)
def test_a_spike_at_any_of_40_positions_never_gives_a_confident_wrong_answer(
    shipped: Identifier, step: float
) -> None:
    """+3 absorbance at one point: repaired (fine axis), decided by the library (coarse axis),
    or rejected as 'spike'; never a confident wrong name and never a confident no_match."""
    x, y = cocaine(step)
    assert shipped.identify(x, y).substance is not None
    statuses = set()
    for i in np.linspace(0, x.size - 1, 40).astype(int):
        spiky = y.copy()
        spiky[i] += 3.0
        r = shipped.identify(x, spiky)
        statuses.add(r.status)
        if r.status in ("identified", "mixture"):
            assert r.substance is not None and r.substance.name == "Cocaine HCl", (i, r)
        assert not (r.status == "no_match" and r.confidence >= 0.9), (i, r)
        if r.status == "rejected":
            assert r.reason == "spike"
    assert statuses <= {"identified", "inconclusive", "rejected"}
    assert "identified" in statuses


def test_weak_but_clean_spectrum_is_a_sample(shipped: Identifier) -> None:
    """The no_sample gate is relative to noise: 0.004 absorbance with clean bands is read."""
    lib = load_library()
    grid, a = lib.absorbance("Cocaine HCl")
    x = np.arange(660.0, 3990.0, 2.0)
    rng = np.random.default_rng(3)
    weak = 0.004 * np.interp(x, grid, a) / float(a.max()) + rng.normal(0, 2e-5, x.size)
    r = shipped.identify(x, weak)
    assert r.status != "rejected", r.quality
    empty = rng.normal(0, 2e-5, x.size) + 1e-3
    assert shipped.identify(x, empty).reason == "no_sample"


def two_source_library() -> Library:
    """Ten materials, three of them measured twice (other laboratory: another instrument)."""
    base = synthetic_library(10, seed=4)
    rng = np.random.default_rng(5)
    spectra = [np.asarray(s, dtype=np.float64) for s in base.spectra]
    entries = [
        LibraryEntry.create(
            e.name,
            e.category,
            e.family,
            cas=f"{100 + i}-00-{i % 10}",
            source="Lab A",
            valid_range=e.valid_range,
        )
        for i, e in enumerate(base.entries)
    ]
    soft = Perturbation(step_range=(4.0, 4.0), noise_range=(1e-3, 1e-3))
    for i in (1, 3, 6):
        x, y, _ = measure(base.grid, spectra[i], rng, soft)
        spectra.append(np.interp(base.grid, x, y))
        e = entries[i]
        entries.append(
            LibraryEntry.create(
                f"{e.name} (lab B)",
                e.category,
                e.family,
                cas=e.cas,
                source="Lab B",
                valid_range=(float(x[0]), float(x[-1])),
            )
        )
    return Library(base.grid, np.asarray(spectra, dtype=np.float32), entries, name="two-source")


def test_leave_one_source_out_queries() -> None:
    lib = two_source_library()
    groups = material_groups(lib)
    assert [sorted(lib.entries[r].name for r in g) for g in groups] == [
        ["sub001", "sub001 (lab B)"],
        ["sub003", "sub003 (lab B)"],
        ["sub006", "sub006 (lab B)"],
    ]
    pairs = cross_source_queries(lib)
    assert len(pairs) == 12  # per spectrum: one known, one held-out query
    for rows, (q,) in pairs:
        kept = {lib.entries[r].name for r in rows}
        material = q.truth[0].split(" ")[0]
        same = {n for n in lib.names() if n.split(" ")[0] == material}
        if q.kind == "single":  # its own spectrum out, the other laboratory's in
            assert len(rows) == len(lib) - 1 and q.truth[0] in kept
            assert len(same & kept) == 1
        else:  # the whole material out: a real unknown with its relatives in
            assert q.kind == "unknown" and len(rows) == len(lib) - 2 and not same & kept


@pytest.mark.timeout(300)
def test_calibration_uses_the_cross_source_spectra() -> None:
    cal = calibrate_library(two_source_library(), rounds=1, mixtures2=10, mixtures3=0)
    assert cal.meta["cross_source_queries"] == 12
    assert cal.calibrated("identified")

"""Evaluation pieces: challenge sets, metrics, threshold fit, reliability, baseline; and the
figures on the real shared data when it is present."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from identify_helpers import synthetic_library
from paths import SHARED_DATA

from edge.evaluate.baseline import PlainCorrelation
from edge.evaluate.challenge import Query, build_challenge, split_library
from edge.evaluate.report import confusion, reliability
from edge.evaluate.runner import Outcome, fit_identify_threshold, metrics, run

SHARED = SHARED_DATA / "enfsi-atr"


def test_split_and_challenge_are_reproducible_and_well_formed() -> None:
    lib = synthetic_library(30, seed=1)
    a, b = split_library(lib, 0.1, 4), split_library(lib, 0.1, 4)
    assert a == b and len(a.held_out) == 3 and not set(a.held_out) & set(a.known)
    assert all(lib.entries[i].category != "cutting_agent" for i in a.held_out)
    qs = build_challenge(lib, a, seed=2, mixtures2=10, mixtures3=4)
    qs2 = build_challenge(lib, a, seed=2, mixtures2=10, mixtures3=4)
    assert all(np.array_equal(p.absorbance, q.absorbance) for p, q in zip(qs, qs2, strict=True))
    kinds = [q.kind for q in qs]
    assert kinds.count("single") == 27 * 5 and kinds.count("unknown") == 3 * 5
    assert kinds.count("mixture") == 14
    held = {lib.names()[i] for i in a.held_out}
    for q in qs:
        assert q.wavenumbers.size == q.absorbance.size > 100
        assert q.wavenumbers[0] >= 600 and q.wavenumbers[-1] <= 4000
        if q.kind == "mixture":
            assert len(q.truth) in (2, 3) and min(q.fractions) >= 0.2 - 1e-9
            assert sum(q.fractions) == pytest.approx(1.0) and not set(q.truth) & held
            assert lib.entry(q.truth[0]).category == "narcotic"
        elif q.kind == "unknown":
            assert q.truth[0] in held


def outcome(
    kind: str,
    truth: tuple[str, ...],
    status: str,
    names: tuple[str, ...],
    r1: float = 0.9,
    conf: float = 0.5,
) -> Outcome:
    q = Query(np.zeros(2), np.zeros(2), kind, truth, family="opioid")
    correct = {
        "single": status == "identified" and names == truth,
        "unknown": status == "no_match",
        "mixture": status == "mixture" and set(truth) <= set(names),
    }[kind]
    return Outcome(q, status, names, names or ("x",), None, conf, correct, {"r1": r1})


def test_metrics_count_what_they_say() -> None:
    outs = [
        outcome("single", ("a",), "identified", ("a",)),
        outcome("single", ("b",), "identified", ("a",)),
        outcome("unknown", ("u",), "no_match", ()),
        outcome("unknown", ("u",), "mixture", ("a", "b")),
        outcome("mixture", ("a", "c"), "mixture", ("c", "a")),
        outcome("mixture", ("a", "c"), "identified", ("a",)),
    ]
    m = metrics(outs)
    assert m["top1"] == 0.5 and m["unknown_rejection"] == 0.5 and m["mixture2_both_found"] == 0.5
    assert m["unknown_family_ceiling"] is None
    rows, cols, mat = confusion(outs)
    assert cols[-1] in ("no_match", "mixture") and "a" in cols
    assert rows == ["(unknown)", "a", "b"] and int(np.sum(mat)) == 4


def test_family_metrics_separate_right_wrong_and_unnamed() -> None:
    outs = [
        replace(outcome("unknown", ("u",), "no_match", ()), family=fam)
        for fam in ("opioid", "stimulant", None, "opioid")
    ] + [replace(outcome("unknown", ("v",), "mixture", ("a", "b")), family="opioid")]
    m = metrics(outs, known_families={"stimulant"})
    assert m["unknown_family_named"] == 0.6 and m["unknown_family_accuracy"] == 0.4
    assert m["unknown_family_wrong"] == 0.2  # the mixture answer names no family at all
    assert m["unknown_family_ceiling"] == 0.0  # every query's family is opioid
    assert metrics(outs, known_families={"opioid"})["unknown_family_ceiling"] == 1.0
    assert m["unknown_family_mean_conf"] is None  # no family votes recorded
    near = (("x", "opioid", 0.8), ("y", "stimulant", 0.5))
    far = (("y", "stimulant", 0.4), ("x", "opioid", 0.3))
    voted = [
        replace(outcome("unknown", ("u",), "no_match", ()), evidence=ev, neighbours=nb)
        for ev, nb in (({"family_conf": 0.9}, near), ({"family_conf": 0.1}, far))
    ]
    m2 = metrics(voted)
    assert m2["unknown_family_mean_conf"] == 0.5 and m2["unknown_family_vote_accuracy"] == 0.5


def test_threshold_separates_singles_from_unknowns() -> None:
    singles = [
        outcome("single", ("a",), "identified", ("a",), r1=r) for r in np.linspace(0.93, 0.999, 50)
    ]
    unknowns = [
        outcome("unknown", ("u",), "no_match", (), r1=r) for r in np.linspace(0.3, 0.85, 50)
    ]
    t = fit_identify_threshold(singles + unknowns)
    assert 0.85 < t <= 0.93


def test_reliability_of_a_calibrated_and_an_overconfident_system() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 5000)
    good = [
        outcome(
            "unknown", ("u",), "no_match" if rng.uniform() < c else "identified", ("z",), conf=c
        )
        for c in conf
    ]
    rel = reliability(good)
    assert rel["ece"] < 0.03 and rel["n"] == 5000
    bad = [
        outcome(
            "unknown",
            ("u",),
            "no_match" if rng.uniform() < 0.5 else "identified",
            ("z",),
            conf=0.99,
        )
        for _ in range(500)
    ]
    assert reliability(bad)["ece"] > 0.4


def test_baseline_explains_unknowns_as_mixtures() -> None:
    lib = synthetic_library(30, seed=8)
    split = split_library(lib, 0.2, 1)
    outs = run(
        PlainCorrelation(lib.subset(split.known)),
        build_challenge(lib, split, seed=3, mixtures2=0, mixtures3=0),
    )
    m = metrics(outs)
    assert m["top1_hit"] > 0.9
    assert m["unknown_rejection"] < 0.5  # the weakness the product must not have


@pytest.mark.shared_data
@pytest.mark.timeout(600)
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/enfsi-atr not present")
def test_real_enfsi_figures(tmp_path: Path) -> None:
    """One seed on the real spectra (library built in tmp, never kept)."""
    from edge.evaluate.evaluate import evaluate_library
    from edge.library import load_library

    files = sorted(str(p) for p in SHARED.glob("*.json"))
    cmd = [
        sys.executable,
        "-m",
        "edge.cli",
        "library",
        "build",
        *files,
        "-o",
        str(tmp_path / "lib"),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    s = evaluate_library(load_library(tmp_path / "lib"), seed=0, mixtures2=100, mixtures3=20)
    p, b = s["product"], s["baseline"]
    assert p["top1"] >= 0.97
    assert p["mixture2_both_found"] >= 0.85
    assert p["unknown_rejection"] >= 0.8
    # Families of unknowns: named only when likely right (few wrong ones); the ceiling is the
    # share of unknowns whose family the known library has at all.
    assert p["unknown_family_wrong"] <= 0.1
    assert p["unknown_family_accuracy"] > p["unknown_family_wrong"]
    assert 0.5 <= p["unknown_family_ceiling"] <= 1.0
    assert s["beats_baseline_on_all_three"]
    assert b["unknown_rejection"] < p["unknown_rejection"]

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
from edge.evaluate.runner import Outcome, candidate_record, metrics, run

SHARED = SHARED_DATA / "enfsi-atr"


def test_split_and_challenge_are_reproducible_and_well_formed() -> None:
    lib = synthetic_library(30, seed=1)
    a, b = split_library(lib, 0.1, 4), split_library(lib, 0.1, 4)
    assert a == b and len(a.held_out) == 3 and not set(a.held_out) & set(a.known)
    assert all(lib.entries[i].category != "cutting_agent" for i in a.held_out)
    # benign unknowns on request: cutting agents held out too, two always kept for mixtures
    n_cut = sum(e.category == "cutting_agent" for e in lib.entries)
    c = split_library(lib, 0.1, 4, cutting_out=2)
    cut_out = [i for i in c.held_out if lib.entries[i].category == "cutting_agent"]
    assert len(cut_out) == min(2, n_cut - 2) and set(a.held_out) <= set(c.held_out)
    everything = split_library(lib, 0.1, 4, cutting_out=99)
    assert sum(lib.entries[i].category == "cutting_agent" for i in everything.known) == min(
        2, n_cut
    )
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
    family: str = "opioid",
    **kw: object,
) -> Outcome:
    q = Query(np.zeros(2), np.zeros(2), kind, truth, family=family)
    correct = {
        "single": status == "identified" and names == truth,
        "unknown": status in ("no_match", "inconclusive"),
        "mixture": status == "mixture" and set(truth) <= set(names),
    }[kind]
    out = Outcome(q, status, names, names or ("x",), None, conf, correct, {"r1": r1})
    return replace(out, **kw)


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
    assert m["identified_wrong"] == 0.5 and m["unknown_not_named"] == 0.5
    assert m["unknown_family_ceiling"] is None
    rows, cols, mat = confusion(outs)
    assert cols[-1] in ("no_match", "mixture") and "a" in cols
    assert rows == ["(unknown)", "a", "b"] and int(np.sum(mat)) == 4


def test_analogue_and_false_alarm_metrics() -> None:
    analogues = [
        outcome("unknown", ("u",), "no_match", (), severity="warn", suspected_family="opioid"),
        outcome("unknown", ("u",), "no_match", (), severity="warn", suspected_family="stimulant"),
        outcome("unknown", ("u",), "inconclusive", (), nearest="x"),
        outcome("unknown", ("u",), "no_match", ()),
    ]
    benign = [
        outcome("unknown", ("s",), "no_match", (), family="benign", severity="warn"),
        outcome("unknown", ("s",), "no_match", (), family="benign"),
        # a held-out precursor should be flagged: it is regulated, not benign
        outcome("unknown", ("r",), "inconclusive", (), family="precursor", severity="warn"),
        outcome("unknown", ("r",), "no_match", (), family="precursor"),
        outcome(
            "single",
            ("p",),
            "identified",
            ("heroin",),
            family="precursor",
            severity="alarm",
            conf=0.95,
        ),
        outcome("single", ("q",), "identified", ("q",), family="cutting_agent"),
    ]
    m = metrics(analogues + benign, known_families={"opioid"})
    assert m["unknown_not_named"] == 1.0 and m["unknown_inconclusive"] == pytest.approx(
        2 / 8, abs=1e-4
    )
    assert m["analogue_flagged"] == 0.5 and m["analogue_family_named"] == 0.5
    assert m["analogue_family_right_when_named"] == 0.5 and m["analogue_family_right"] == 0.25
    assert m["benign_unknown_flagged"] == 0.5 and m["unknown_family_ceiling"] == 1.0
    assert m["false_alarms"] == 1 and m["false_alarms_conf90"] == 1
    assert m["counts"]["analogue"] == 4 and m["counts"]["benign_unknown"] == 2
    assert m["regulated_unknown_flagged"] == 0.5 and m["counts"]["regulated_unknown"] == 2


def test_candidate_records_merge_twins_and_find_the_present_one() -> None:
    nb = (("pe", "benign", 0.95), ("pe fibre", "benign", 0.949), ("ep", "benign", 0.93))
    right = outcome("single", ("pe",), "inconclusive", (), neighbours=nb, twins=("pe fibre",))
    assert candidate_record(right) == {"scores": [0.95, 0.93], "target": 0}
    twin = outcome("single", ("pe fibre",), "inconclusive", (), neighbours=nb, twins=("pe fibre",))
    assert candidate_record(twin)["target"] == 0  # a twin of the top hit counts as the top
    second = outcome("single", ("ep",), "inconclusive", (), neighbours=nb, twins=("pe fibre",))
    assert candidate_record(second)["target"] == 1
    unknown = outcome("unknown", ("pp",), "no_match", (), neighbours=nb)
    assert candidate_record(unknown) == {"scores": [0.95, 0.949, 0.93], "target": -1}


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
        "--no-calibrate",  # the evaluation calibrates the known part of each split itself
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    s = evaluate_library(load_library(tmp_path / "lib"), seed=0)
    p, b = s["product"], s["baseline"]
    assert p["top1"] >= 0.97 and p["identified_wrong"] <= 0.01
    assert p["mixture2_both_found"] >= 0.85 and p["mixture2_no_match"] == 0.0
    assert p["unknown_not_named"] >= 0.95
    assert p["false_alarms"] == 0 and s["false_alarm_examples"] == []
    # Suspected families: when named, mostly right.
    if p["analogue_family_named"]:
        assert p["analogue_family_right_when_named"] >= 0.5
    assert 0.5 <= p["unknown_family_ceiling"] <= 1.0
    for key in ("top1", "mixture2_both_found", "unknown_not_named"):
        assert p[key] > b[key]
    assert s["calibration"]["reliability"]["ece"] < 0.1

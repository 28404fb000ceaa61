"""Suspected analogues: the family of an unknown from its neighbour vote, its calibrated
probability, the classifier's say; flagged only when a controlled substance is the nearest
neighbour."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from identify_helpers import band_spectrum, decisive_calibration, synthetic_library

from edge.evaluate.challenge import Query
from edge.evaluate.runner import Outcome, analogue_records, family_records
from edge.identify.calibration import (
    Calibration,
    DecisionParams,
    fit_calibration,
    sharp,
)
from edge.identify.decision import decide
from edge.identify.family import substance_families, vote, without
from edge.identify.reference import PreparedLibrary
from edge.preprocess.chain import preprocess_with_mask
from edge.preprocess.grid import STANDARD_GRID

X = STANDARD_GRID


def test_vote_evidence_nearest_member_margin_and_share() -> None:
    b = vote(["opioid", "opioid", "stimulant", "precursor"], [0.80, 0.78, 0.70, 0.30], k=8)
    assert b.family == "opioid"
    assert b.r == pytest.approx(0.80) and b.margin == pytest.approx(0.10)
    w = np.exp((np.array([0.80, 0.78, 0.70, 0.30]) - 0.80) / 0.03)
    assert b.share == pytest.approx((w[0] + w[1]) / w.sum())
    assert b.evidence() == {"family_r": b.r, "family_margin": b.margin, "family_share": b.share}
    # Only the best k vote; the family of the nearest member wins even when outnumbered.
    assert vote(["a", "b", "b"], [0.9, 0.5, 0.4], k=1) == vote(["a"], [0.9], k=1)
    assert vote(["a", "b", "b"], [0.9, 0.5, 0.4]).family == "a"
    assert vote([], []).family is None


def test_without_leaves_the_named_entry_out() -> None:
    fams, scores = without(
        ["x", "y", "z"], ["opioid", "stimulant", "opioid"], [0.99, 0.7, 0.6], "x"
    )
    assert fams == ["stimulant", "opioid"] and scores == [0.7, 0.6]


@pytest.fixture(scope="module")
def prepared() -> PreparedLibrary:
    # synthetic bands fall anywhere on the axis: every region counts alike here
    return PreparedLibrary(synthetic_library(30, seed=9), {"weights": []})


def family_calibration(**params: float) -> Calibration:
    """Decisive models (identified only above 0.99 correlation) with a family model that
    trusts close neighbours (P = 0.5 at family_r 0.9) and an analogue model that flags a
    controlled nearest neighbour above 0.9."""
    return decisive_calibration(**params)


def analogue(prepared: PreparedLibrary, row: int, seed: int, weight: float) -> np.ndarray:
    """A library spectrum with foreign bands mixed in: close to *row* but not it."""
    own = np.asarray(prepared.library.spectra[row], dtype=np.float64)
    return own + weight * band_spectrum(np.random.default_rng(seed), X)


def decide_on(prepared: PreparedLibrary, y: np.ndarray, cal: Calibration, prediction=None):
    noisy = y + np.random.default_rng(0).normal(0, 1e-3, X.size)
    v, keep = preprocess_with_mask(X, noisy, prepared.spec)
    return decide(prepared, v, keep, cal, prediction=prediction)


@dataclass
class FakePrediction:
    labels: tuple[str, ...]
    substance_probs: np.ndarray
    family_labels: tuple[str, ...]
    family_probs: np.ndarray


def clf(family: str, p: float, substance: str = "none", ps: float = 0.9) -> FakePrediction:
    """Family head *p* sure of *family*; substance head *ps* sure of *substance*."""
    other = "precursor" if family != "precursor" else "benign"
    return FakePrediction(
        (substance, "sub000"),
        np.array([ps, 1 - ps]),
        (family, other),
        np.array([p, 1 - p]),
    )


def test_close_analogue_named_far_unknown_not(prepared: PreparedLibrary) -> None:
    cal = family_calibration()
    close = decide_on(prepared, analogue(prepared, 5, 31, 0.3), cal)  # sub005: opioid
    r = close.identification
    assert r.status in ("no_match", "inconclusive") and r.family == "opioid"
    assert r.severity == "warn"  # a suspected analogue of a controlled substance
    assert r.nearest is not None and r.nearest.name == "sub005"
    assert r.suspected_family is not None and r.suspected_family.name == "opioid"
    assert r.suspected_family.probability == pytest.approx(close.evidence["family_conf"], 1e-3)
    assert close.evidence["family_conf"] >= 0.5 and close.evidence["family_r"] > 0.9
    far = decide_on(prepared, band_spectrum(np.random.default_rng(77), X), cal)
    assert far.identification.status == "no_match" and far.identification.family is None
    assert far.identification.severity == "info" and far.identification.nearest is None
    # The neighbours of every decision are kept (name, family, score), best first.
    assert close.neighbours[0][:2] == ("sub005", "opioid")
    assert [s for _, _, s in close.neighbours] == sorted(
        (s for _, _, s in close.neighbours), reverse=True
    )


def test_no_family_without_a_family_model(prepared: PreparedLibrary) -> None:
    cal = family_calibration()
    del cal.models["family"]
    d = decide_on(prepared, analogue(prepared, 5, 31, 0.3), cal, clf("opioid", 0.99))
    assert d.identification.family is None and d.identification.suspected_family is None


def test_benign_nearest_neighbour_flags_nothing(prepared: PreparedLibrary) -> None:
    """An unknown close to a cutting agent (sub003) is not a suspected analogue."""
    d = decide_on(prepared, analogue(prepared, 3, 31, 0.5), family_calibration())
    r = d.identification
    assert r.status in ("no_match", "inconclusive") and r.severity == "info"
    assert r.suspected_family is None


def test_classifier_backs_or_vetoes_the_neighbours(prepared: PreparedLibrary) -> None:
    cal = family_calibration(family_min_prob=0.6)
    y_close = analogue(prepared, 5, 31, 0.3)
    assert decide_on(prepared, y_close, cal, clf("opioid", 0.9)).identification.family == "opioid"
    # A sure family head that disagrees vetoes; an unsure one does not.
    assert decide_on(prepared, y_close, cal, clf("stimulant", 0.9)).identification.family is None
    # the same through a prediction made on demand (what the Identifier passes)
    lazy = decide_on(prepared, y_close, cal, lambda: clf("stimulant", 0.9))
    assert lazy.identification.family is None
    assert decide_on(prepared, y_close, cal, clf("stimulant", 0.55)).identification.family == (
        "opioid"
    )
    # A weak neighbour vote is named only when both classifier heads agree with it.
    y_far = analogue(prepared, 5, 32, 0.8)
    weak = decide_on(prepared, y_far, cal)
    assert weak.identification.family is None and weak.evidence["family_conf"] < 0.5
    assert weak.identification.severity == "warn"  # its nearest is controlled: look closer
    name, fam, _ = weak.neighbours[0]
    other = "precursor" if fam != "precursor" else "benign"
    lib = prepared.library
    stranger = next(e.name for e in lib.entries if (e.family or e.category) != fam)
    both = clf(fam, 0.9, substance=name)
    assert decide_on(prepared, y_far, cal, both).identification.family == fam
    head_only = clf(fam, 0.9, substance=stranger)
    assert decide_on(prepared, y_far, cal, head_only).identification.family is None
    unknown_label = clf(fam, 0.9, substance="not in the library", ps=1.0)
    assert decide_on(prepared, y_far, cal, unknown_label).identification.family is None
    # The substance head must put some real mass on the family, not just rank it first.
    little = FakePrediction(
        (name, "not in the library"), np.array([0.2, 0.8]), (fam, other), np.array([0.9, 0.1])
    )
    assert decide_on(prepared, y_far, cal, little).identification.family is None
    enough = FakePrediction(
        (name, "not in the library"), np.array([0.4, 0.6]), (fam, other), np.array([0.9, 0.1])
    )
    assert decide_on(prepared, y_far, cal, enough).identification.family == fam
    assert decide_on(prepared, y_far, cal, clf(other, 0.99)).identification.family is None


def test_substance_families_sum_per_family() -> None:
    fams = {"heroin": "opioid", "codeine": "opioid", "mdma": "stimulant"}
    got = substance_families(["heroin", "mdma", "codeine", "x"], [0.3, 0.4, 0.2, 0.1], fams.get)
    assert got == pytest.approx({"opioid": 0.5, "stimulant": 0.4})


def outcome(kind: str, truth: str, family: str, neighbours) -> Outcome:
    q = Query(np.zeros(2), np.zeros(2), kind, (truth,), family=family)
    return Outcome(q, "no_match", (), (), None, 0.5, True, {}, (), tuple(neighbours))


def test_analogue_records_leave_the_known_compound_out() -> None:
    single = outcome(
        "single",
        "morphine",
        "opioid",
        [("morphine", "opioid", 0.99), ("heroin", "opioid", 0.8), ("mdma", "stimulant", 0.7)],
    )
    benign = outcome(
        "unknown", "sugar", "benign", [("heroin", "opioid", 0.6), ("mdma", "stimulant", 0.5)]
    )
    not_ctrl = outcome(
        "unknown", "x", "benign", [("lactose", "cutting_agent", 0.9), ("mdma", "stimulant", 0.5)]
    )
    recs = analogue_records([single, benign, not_ctrl])
    assert [(q, ok) for q, _, ok in recs] == [("analogue", True), ("analogue", False)]
    assert recs[0][1] == {"r1": 0.8, "gap": pytest.approx(0.1)}  # morphine itself left out


def test_family_records_leave_the_known_compound_out() -> None:
    single = outcome(
        "single", "morphine", "opioid", [("morphine", "opioid", 0.99), ("mdma", "stimulant", 0.8)]
    )
    unknown = outcome(
        "unknown", "codeine", "opioid", [("heroin", "opioid", 0.85), ("mdma", "stimulant", 0.6)]
    )
    mixture = Outcome(
        Query(np.zeros(2), np.zeros(2), "mixture", ("a", "b"), family="opioid"),
        "mixture",
        (),
        (),
        None,
        0.5,
        True,
        {},
        (),
        (("a", "opioid", 0.9),),
    )
    recs = family_records([single, unknown, mixture])
    assert [(st, ok) for st, _, ok in recs] == [("family", False), ("family", True)]
    assert recs[0][1]["family_r"] == pytest.approx(0.8)  # morphine itself left out
    assert recs[1][1]["family_margin"] == pytest.approx(0.25)


def test_family_model_is_fitted_and_calibrated() -> None:
    """Records right with probability sigmoid(3 (sharp(r) - 0.6)): the fit predicts that."""
    rng = np.random.default_rng(3)
    r = rng.uniform(0.3, 0.99, 4000)
    p = 1 / (1 + np.exp(-3 * (np.array([sharp(a) for a in r]) - 0.6)))
    ok = rng.uniform(size=r.size) < p
    recs = [
        ("family", {"family_r": float(a), "family_share": 0.9}, bool(b))
        for a, b in zip(r, ok, strict=True)
    ]
    cal = fit_calibration(DecisionParams(), recs)
    assert cal.calibrated("family")
    pred = np.array([cal.probability("family", {"family_r": a, "family_share": 0.9}) for a in r])
    for lo, hi in ((0.0, 0.3), (0.3, 0.7), (0.7, 1.0)):
        m = (pred >= lo) & (pred < hi)
        assert m.sum() > 100
        assert abs(pred[m].mean() - ok[m].mean()) < 0.05
    assert not fit_calibration(DecisionParams(), []).calibrated("family")


def test_calibration_without_models_loads_and_decides_nothing() -> None:
    back = Calibration.from_json(Calibration().to_json())
    assert back.params == DecisionParams() and not back.calibrated("family")
    assert back.probability("component", {}) == 0.5

"""The decision and its calibration: statuses, severity, family of unknowns, stored models."""

from __future__ import annotations

import numpy as np
import pytest
from identify_helpers import band_spectrum, synthetic_library

from edge.errors import ModelError
from edge.identify.calibration import Calibration, DecisionParams, LogisticModel, fit_calibration
from edge.identify.decision import decide
from edge.identify.reference import PreparedLibrary
from edge.preprocess.chain import preprocess_with_mask
from edge.preprocess.grid import STANDARD_GRID

X = STANDARD_GRID


@pytest.fixture(scope="module")
def prepared() -> PreparedLibrary:
    return PreparedLibrary(synthetic_library(30, seed=9))


def run(prepared: PreparedLibrary, y: np.ndarray, **kw):
    rng = np.random.default_rng(0)
    v, keep = preprocess_with_mask(X, y + rng.normal(0, 1e-3, X.size))
    return decide(prepared, v, keep, Calibration(), **kw)


def test_identified_with_severity_and_hits(prepared: PreparedLibrary) -> None:
    d = run(prepared, np.asarray(prepared.library.spectra[5], float))  # sub005: narcotic opioid
    r = d.identification
    assert r.status == "identified" and r.substance is not None
    assert r.substance.name == "sub005" and r.severity == "alarm" and r.family == "opioid"
    assert r.hits[0].name == "sub005" and r.hits[0].score > 0.99
    assert len(r.hits) == 5 and d.evidence["gap"] > 0.1


def test_mixture_takes_the_most_severe_component(prepared: PreparedLibrary) -> None:
    lib = prepared.library
    y = 0.3 * np.asarray(lib.spectra[1], float) + 0.7 * np.asarray(lib.spectra[3], float)
    r = run(prepared, y).identification  # narcotic 30% + cutting agent 70%
    assert r.status == "mixture"
    assert {m.name for m in r.mixture} == {"sub001", "sub003"}
    assert r.substance is not None and r.substance.name == "sub001" and r.severity == "alarm"


def test_unknown_is_no_match(prepared: PreparedLibrary) -> None:
    r = run(prepared, band_spectrum(np.random.default_rng(77), X)).identification
    assert r.status == "no_match" and r.substance is None


def test_logistic_calibration_recovers_probabilities() -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 4, 4000)
    p_true = 1 / (1 + np.exp(-(2.0 * x - 4.0)))
    y = rng.uniform(size=x.size) < p_true
    m = LogisticModel.fit(("sharp_r1",), [{"sharp_r1": v} for v in x], list(y))
    assert m.coef[0] == pytest.approx(2.0, rel=0.15)
    assert m.intercept == pytest.approx(-4.0, rel=0.15)
    assert m.predict({"sharp_r1": 2.0}) == pytest.approx(0.5, abs=0.05)


def test_calibration_roundtrip(tmp_path) -> None:
    recs = [
        ("identified", {"r1": 0.99, "gap": 0.3}, True),
        ("identified", {"r1": 0.8, "gap": 0.01}, False),
    ] * 10
    cal = fit_calibration(DecisionParams(identify_min_r=0.93), recs, {"library": "x"})
    cal.save(tmp_path / "calibration.json")
    back = Calibration.load(tmp_path / "calibration.json")
    assert back.params.identify_min_r == 0.93
    ev = {"r1": 0.97, "gap": 0.2}
    assert back.confidence("identified", ev) == pytest.approx(cal.confidence("identified", ev))
    assert cal.confidence("identified", {"r1": 0.99, "gap": 0.3}) > cal.confidence(
        "identified", {"r1": 0.8, "gap": 0.01}
    )
    (tmp_path / "bad.json").write_text('{"format_version": 99}')
    with pytest.raises(ModelError):
        Calibration.load(tmp_path / "bad.json")

"""The decision and its calibration: statuses from calibrated probabilities, severity,
mixtures without phantoms, the stored models."""

from __future__ import annotations

import numpy as np
import pytest
from identify_helpers import band_spectrum, decisive_calibration, synthetic_library

from edge.errors import ModelError
from edge.identify.calibration import (
    Calibration,
    DecisionParams,
    LogisticModel,
    fit_calibration,
    fit_candidate_logit,
    sharp,
)
from edge.identify.decision import decide
from edge.identify.reference import PreparedLibrary
from edge.preprocess.chain import preprocess_with_mask
from edge.preprocess.grid import STANDARD_GRID

X = STANDARD_GRID


@pytest.fixture(scope="module")
def prepared() -> PreparedLibrary:
    return PreparedLibrary(synthetic_library(30, seed=9))


def run(prepared: PreparedLibrary, y: np.ndarray, cal: Calibration | None = None, **kw):
    rng = np.random.default_rng(0)
    v, keep = preprocess_with_mask(X, y + rng.normal(0, 1e-3, X.size))
    return decide(prepared, v, keep, cal or decisive_calibration(), **kw)


def test_identified_with_severity_and_hits(prepared: PreparedLibrary) -> None:
    d = run(prepared, np.asarray(prepared.library.spectra[5], float))  # sub005: narcotic opioid
    r = d.identification
    assert r.status == "identified" and r.substance is not None
    assert r.substance.name == "sub005" and r.severity == "alarm" and r.family == "opioid"
    assert r.hits[0].name == "sub005" and r.hits[0].score > 0.99
    assert len(r.hits) == 5 and d.evidence["gap"] > 0.1
    assert r.confidence >= 0.9 and d.probabilities["sub005"] == pytest.approx(r.confidence, 1e-3)


def test_uncalibrated_decision_never_claims_a_name(prepared: PreparedLibrary) -> None:
    """Without a calibration every probability is a coin toss: never identified."""
    r = run(prepared, np.asarray(prepared.library.spectra[5], float), Calibration())
    assert r.identification.status in ("inconclusive", "no_match")


def test_mixture_names_the_major_component_and_alarms_on_the_drug(
    prepared: PreparedLibrary,
) -> None:
    lib = prepared.library
    y = 0.35 * np.asarray(lib.spectra[1], float) + 0.65 * np.asarray(lib.spectra[3], float)
    r = run(prepared, y).identification  # narcotic 35% + cutting agent 65%
    assert r.status == "mixture"
    assert {m.name for m in r.mixture} == {"sub001", "sub003"}
    assert r.substance is not None and r.substance.name == "sub003"  # the major component
    assert r.severity == "alarm"  # the drug is confirmed on its own evidence
    drug = next(m for m in r.mixture if m.name == "sub001")
    assert drug.probability is not None and drug.probability >= 0.9
    assert r.confidence == pytest.approx(min(m.probability or 0 for m in r.mixture), abs=1e-3)


def test_pure_substance_on_another_instrument_is_no_phantom_mixture(
    prepared: PreparedLibrary,
) -> None:
    """Shifted by 3 cm-1 and broadened: the top hit's nuisance terms take the difference, no
    other entry enters, nothing else is named."""
    from scipy.ndimage import gaussian_filter1d

    lib = prepared.library
    for row in (0, 2, 4, 7, 11):
        y = gaussian_filter1d(np.asarray(lib.spectra[row], float), 1.2)
        shifted = np.interp(X, X + 3.0, y)
        r = run(prepared, shifted).identification
        assert r.status == "identified", (row, r.status, r.mixture)
        assert r.substance is not None and r.substance.name == lib.entries[row].name


def test_unknown_is_no_match(prepared: PreparedLibrary) -> None:
    r = run(prepared, band_spectrum(np.random.default_rng(77), X)).identification
    assert r.status == "no_match" and r.substance is None and r.confidence > 0.5


def test_candidate_logit_recovers_its_parameters() -> None:
    """Records drawn from the model itself: the fit finds its slope and intercept."""
    rng = np.random.default_rng(4)
    a, b, c = -6.0, 5.0, 1.5
    records = []
    for _ in range(3000):
        scores = np.sort(rng.uniform(0.3, 0.999, 4))[::-1]
        z = np.concatenate(([0.0], a + b * np.array([sharp(s) for s in scores])))
        z[1] += c
        p = np.exp(z - z.max())
        p /= p.sum()
        records.append({"scores": list(scores), "target": int(rng.choice(5, p=p)) - 1})
    m = fit_candidate_logit(records, balance=False)
    assert m.coef[0] == pytest.approx(b, rel=0.15) and m.intercept == pytest.approx(a, rel=0.15)
    assert m.coef[1] == pytest.approx(c, rel=0.3)
    cal = Calibration(models={"identified": m})
    p_top = cal.candidate_probabilities([0.999, 0.5])
    assert p_top[0] > 0.95 and sum(p_top) < 1
    twins = cal.candidate_probabilities([0.999, 0.999])
    assert twins[0] + twins[1] < 1 and twins[1] < 0.5  # equals share what the evidence has


def test_logistic_calibration_recovers_probabilities() -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 4, 4000)
    p_true = 1 / (1 + np.exp(-(2.0 * x - 4.0)))
    y = rng.uniform(size=x.size) < p_true
    m = LogisticModel.fit(("sharp_r1",), [{"sharp_r1": v} for v in x], list(y))
    assert m.coef[0] == pytest.approx(2.0, rel=0.15)
    assert m.intercept == pytest.approx(-4.0, rel=0.15)
    assert m.predict({"sharp_r1": 2.0}) == pytest.approx(0.5, abs=0.05)


def test_calibration_roundtrip_and_bad_files(tmp_path) -> None:
    recs = [
        ("component", {"fit": 0.99, "share": 0.5, "drop": 0.3, "replace": 0.2}, True),
        ("component", {"fit": 0.8, "share": 0.2, "drop": 0.01, "replace": 0.0}, False),
    ] * 15 + [("candidates", {"scores": [0.99, 0.7], "target": 0}, True)] * 10
    recs += [("candidates", {"scores": [0.7, 0.68], "target": -1}, True)] * 10
    cal = fit_calibration(DecisionParams(alarm_min_share=0.2), recs, {"library": "x"})
    cal.save(tmp_path / "calibration.json")
    back = Calibration.load(tmp_path / "calibration.json")
    assert back.params.alarm_min_share == 0.2 and back.floors == cal.floors
    ev = {"fit": 0.97, "share": 0.4, "drop": 0.2, "replace": 0.1}
    assert back.probability("component", ev) == pytest.approx(cal.probability("component", ev))
    assert back.candidate_probabilities([0.95, 0.8]) == pytest.approx(
        cal.candidate_probabilities([0.95, 0.8])
    )
    assert cal.candidate_probabilities([0.99, 0.7])[0] > cal.candidate_probabilities([0.7])[0]
    (tmp_path / "bad.json").write_text('{"format_version": 99}')
    with pytest.raises(ModelError):
        Calibration.load(tmp_path / "bad.json")
    doc = cal.to_json()
    doc["models"]["identified"]["names"] = ["sharp_r1", "gap"]  # another version's features
    doc["models"]["identified"]["coef"] = [1.0, 1.0]
    with pytest.raises(ModelError, match="recalibrate"):
        Calibration.from_json(doc)


def test_support_floor_caps_a_poorly_explained_component() -> None:
    cal = Calibration(
        models={
            "component": LogisticModel(
                ("sharp_fit", "share", "drop", "replace"), [0, 0, 0, 30.0], 0
            )
        },
        floors={"component": 0.9},
    )
    good = {"fit": 0.95, "share": 0.5, "drop": 0.3, "replace": 0.5}
    assert cal.probability("component", good) > 0.99
    assert cal.probability("component", {**good, "fit": 0.6}) < 0.5


def test_calibration_file_is_sealed_damage_is_an_error_and_old_ones_fall_back(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    from edge.identify.calibration import CALIBRATION_FILE, OutdatedCalibration, find_calibration

    cal = decisive_calibration()
    cal.meta["library_hash"] = "abc"
    cal.save(tmp_path / CALIBRATION_FILE)
    assert find_calibration(tmp_path).meta["source"] == str(tmp_path / CALIBRATION_FILE)
    doc = json.loads((tmp_path / CALIBRATION_FILE).read_text())
    doc["models"]["identified"]["intercept"] += 1.0  # a flipped number: still valid JSON
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="damaged or edited"):
        find_calibration(tmp_path)
    old = {"format_version": 1, "params": {}, "models": {}}
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(old))
    with pytest.raises(OutdatedCalibration):
        Calibration.load(tmp_path / CALIBRATION_FILE)
    with caplog.at_level("WARNING"):
        fallback = find_calibration(tmp_path)
    assert fallback.meta["source"] == "default" and "library calibrate" in caplog.text

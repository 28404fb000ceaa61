"""The Identifier end to end on synthetic libraries: statuses, quality gates, classifier
integration, and a calibration check on held-out simulated data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from identify_helpers import band_spectrum, decisive_calibration, synthetic_library

from edge.errors import ModelError
from edge.evaluate.challenge import Perturbation, build_challenge, split_library
from edge.evaluate.report import reliability
from edge.evaluate.runner import calibrate_library, run
from edge.identify.identifier import Identifier
from edge.preprocess.grid import STANDARD_GRID

X = STANDARD_GRID


@pytest.fixture(scope="module")
def library():
    return synthetic_library(30, seed=21)


@pytest.fixture(scope="module")
def ident(library) -> Identifier:
    return Identifier(library, calibration=decisive_calibration())


def measured(y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """On another instrument grid (2 cm^-1, 700-3900) with a little noise and baseline."""
    rng = np.random.default_rng(seed)
    x = np.arange(700.0, 3900.0, 2.0)
    a = np.interp(x, X, y) * 0.7 + 0.03 + 1e-5 * (x - 700) + rng.normal(0, 1e-3, x.size)
    return x, a


def test_identifies_a_library_substance(ident: Identifier, library) -> None:
    r = ident.identify(*measured(np.asarray(library.spectra[12], float)))
    assert r.status == "identified" and r.substance is not None and r.substance.name == "sub012"
    assert r.substance.category == "precursor" and r.severity == "warn"
    assert r.versions["library_hash"] == library.content_hash[:16]


def test_empty_crystal_is_rejected(ident: Identifier) -> None:
    x = np.arange(700.0, 3900.0, 2.0)
    r = ident.identify(x, 0.002 + np.random.default_rng(1).normal(0, 5e-4, x.size))
    assert r.status == "rejected" and r.reason == "no_sample" and r.substance is None


def test_unknown_is_no_match(ident: Identifier) -> None:
    r = ident.identify(*measured(band_spectrum(np.random.default_rng(99), X)))
    assert r.status == "no_match"


@dataclass
class FakeManifest:
    preprocessing: dict
    library: object
    model_version: str = "fake-1"


@dataclass
class LibRef:
    content_hash: str


class FakeClassifier:
    """Stands in for edge.identify.classifier.Classifier: same attributes and predict()."""

    def __init__(self, lib_hash: str, family: str) -> None:
        self.manifest = FakeManifest({}, LibRef(lib_hash))
        self.family = family
        self.calls = 0

    def predict(self, vector: np.ndarray) -> FakePrediction:
        self.calls += 1
        assert vector.dtype == np.float32 and vector.shape == X.shape
        fam = [0.95, 0.05] if self.family == "opioid" else [0.05, 0.95]
        return FakePrediction(
            ("sub000", "sub001"), np.array([0.5, 0.5]), ("opioid", "stimulant"), np.array(fam)
        )


@dataclass
class FakePrediction:
    labels: tuple[str, ...]
    substance_probs: np.ndarray
    family_labels: tuple[str, ...]
    family_probs: np.ndarray


def test_classifier_is_consulted_only_for_a_family_and_never_names_one_alone(library) -> None:
    """An identified substance never waits for the classifier (it only takes part in the
    family of an unknown). Without neighbour evidence for a family (no family model), even a
    sure classifier names none: on real data its family head alone is wrong more often than
    right."""
    clf = FakeClassifier(library.content_hash, "stimulant")
    known = Identifier(library, clf, calibration=decisive_calibration())
    r = known.identify(*measured(np.asarray(library.spectra[3], dtype=np.float64)))
    assert r.status == "identified" and clf.calls == 0
    cal = decisive_calibration()
    del cal.models["family"]
    ident = Identifier(library, clf, calibration=cal)
    r = ident.identify(*measured(band_spectrum(np.random.default_rng(98), X)))
    assert r.status in ("no_match", "inconclusive") and r.family is None
    assert r.versions["model"] == "fake-1"


def test_classifier_for_another_library_is_refused(library) -> None:
    with pytest.raises(ModelError):
        Identifier(library, FakeClassifier("0" * 64, "opioid"))


@pytest.mark.timeout(240)
def test_confidence_is_calibrated_on_held_out_challenges() -> None:
    """Fit on one simulated challenge, check reliability on another (other seed, other unknowns)."""
    lib = synthetic_library(40, seed=31)
    hard = Perturbation(noise_range=(0.01, 0.06), shift_cm1=6.0, fwhm_range=(4.0, 20.0))
    split = split_library(lib, 0.15, seed=5)
    known = lib.subset(split.known)
    cal = calibrate_library(
        known,
        seed=11,
        rounds=2,
        perturbation=hard,
        mixtures2=60,
        mixtures3=20,
        singles_per_compound=4,
    )
    ident = Identifier(known, calibration=cal)
    out = run(
        ident, build_challenge(lib, split, seed=77, perturbation=hard, mixtures2=60, mixtures3=20)
    )
    answered = [o for o in out if o.status != "rejected"]
    assert len(answered) > 0.5 * len(out)
    rel = reliability(out)
    assert rel["ece"] < 0.1, rel
    # confident answers are right more often than unconfident ones
    hi = [o.claim_right for o in answered if o.confidence >= 0.9]
    lo = [o.claim_right for o in answered if o.confidence < 0.9]
    assert hi and lo and np.mean(hi) > np.mean(lo) + 0.1
    assert np.mean(hi) >= 0.9  # what is claimed at >= 0.9 is right at least that often

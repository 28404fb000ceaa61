"""Calibrated confidence: one logistic (Platt) model per decision status, stored as JSON data.

Each model maps evidence features of a decision to the probability that the decision is
right (identified: the named substance is correct; mixture: every named component is present;
no_match: the substance is really not in the library). The models are fitted on a simulated
challenge set (:mod:`edge.evaluate`) and travel with the library/model as ``calibration.json``,
together with the decision thresholds they were fitted for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from edge.errors import ModelError
from edge.identify.mixture import MixtureParams
from spectra_io.atomic import atomic_write_text

CALIBRATION_FILE = "calibration.json"
DEFAULT_PATH = Path(__file__).with_name("calibration_default.json")
FORMAT_VERSION = 1
#: Parameters older calibration files may still carry; ignored when loading.
RETIRED_PARAMS = ("neighbour_family_min_r",)

#: Features each status' model uses (names of :func:`features` keys).
FEATURES: dict[str, tuple[str, ...]] = {
    "identified": ("sharp_r1", "gap", "clf_top"),
    "mixture": ("sharp_fit", "min_share", "gain"),
    "no_match": ("sharp_r1", "sharp_fit"),
    # P(the neighbours' family of an unknown is right), see edge.identify.family.
    "family": ("sharp_family_r", "family_share"),
}


def sharp(r: float) -> float:
    """Spread correlations near 1: ``-log10(1 - r)``, capped at 4."""
    return float(min(-math.log10(max(1.0 - r, 1e-4)), 4.0))


def features(evidence: Mapping[str, float]) -> dict[str, float]:
    """Derived features from raw evidence (r1, gap, fit, single_fit, min_share, clf_top,
    family_r, family_margin, family_share)."""
    r1 = float(evidence.get("r1", 0.0))
    fit = float(evidence.get("fit", r1))
    return {
        "sharp_r1": sharp(r1),
        "gap": float(evidence.get("gap", 0.0)),
        "clf_top": float(evidence.get("clf_top", 0.5)),
        "sharp_fit": sharp(fit),
        "min_share": float(evidence.get("min_share", 1.0)),
        "gain": fit - float(evidence.get("single_fit", r1)),
        "sharp_family_r": sharp(float(evidence.get("family_r", 0.0))),
        "family_margin": float(evidence.get("family_margin", 0.0)),
        "family_share": float(evidence.get("family_share", 0.0)),
    }


@dataclass
class LogisticModel:
    """P(correct) = sigmoid(intercept + coef . x)."""

    names: tuple[str, ...]
    coef: list[float]
    intercept: float
    n_fit: int = 0

    def predict(self, feats: Mapping[str, float]) -> float:
        """Calibrated probability for one decision's features."""
        z = self.intercept + sum(c * feats[n] for c, n in zip(self.coef, self.names, strict=True))
        return float(1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0))))

    @classmethod
    def fit(
        cls,
        names: Sequence[str],
        rows: Sequence[Mapping[str, float]],
        correct: Sequence[bool],
        l2: float = 1e-2,
    ) -> LogisticModel:
        """Maximum-likelihood fit (small L2 penalty; standardised features)."""
        x = np.array([[r[n] for n in names] for r in rows], dtype=np.float64).reshape(
            len(rows), len(names)
        )
        y = np.asarray(correct, dtype=np.float64)
        if len(rows) == 0 or y.min() == y.max():
            p = float(np.clip(y.mean() if len(rows) else 0.5, 0.02, 0.98))
            return cls(tuple(names), [0.0] * len(names), math.log(p / (1 - p)), len(rows))
        mu, sd = x.mean(axis=0), x.std(axis=0)
        sd[sd == 0] = 1.0
        xs = (x - mu) / sd

        def loss(w: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
            z = w[0] + xs @ w[1:]
            pz = 1.0 / (1.0 + np.exp(-z))
            ll = np.sum(np.logaddexp(0, z) - y * z) + 0.5 * l2 * float(w[1:] @ w[1:])
            g = np.concatenate([[np.sum(pz - y)], xs.T @ (pz - y) + l2 * w[1:]])
            return float(ll), g

        res = minimize(loss, np.zeros(len(names) + 1), jac=True, method="L-BFGS-B")
        w = res.x
        coef = w[1:] / sd
        intercept = float(w[0] - np.sum(w[1:] * mu / sd))
        return cls(tuple(names), [float(c) for c in coef], intercept, len(rows))


@dataclass
class DecisionParams:
    """Thresholds of the decision (fitted together with the calibration)."""

    identify_min_r: float = 0.9
    #: A classifier this sure of an unknown's family backs the neighbours' family.
    family_min_prob: float = 0.6
    #: A weak neighbour vote needs at least this much of the classifier's substance
    #: probability on its family (and both heads' top family equal to it).
    family_min_substance_mass: float = 0.3
    #: Name an unknown's family when its calibrated probability reaches this.
    family_min_conf: float = 0.5
    #: Neighbours that vote on an unknown's family.
    family_neighbours: int = 8
    mixture: MixtureParams = field(default_factory=MixtureParams)


@dataclass
class Calibration:
    """Decision thresholds plus one calibration model per status."""

    params: DecisionParams = field(default_factory=DecisionParams)
    models: dict[str, LogisticModel] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def confidence(self, status: str, evidence: Mapping[str, float]) -> float:
        """Calibrated probability that a decision of *status* is right (0.5 when uncalibrated)."""
        model = self.models.get(status)
        return model.predict(features(evidence)) if model is not None else 0.5

    def calibrated(self, status: str) -> bool:
        """True when a model for *status* was fitted."""
        return status in self.models

    def to_json(self) -> dict[str, Any]:
        """JSON-able document."""
        return {
            "format_version": FORMAT_VERSION,
            "params": asdict(self.params),
            "models": {k: asdict(m) for k, m in self.models.items()},
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Calibration:
        """Parse :meth:`to_json` output; :class:`ModelError` when malformed."""
        try:
            if doc.get("format_version") != FORMAT_VERSION:
                raise ModelError(f"calibration format {doc.get('format_version')!r} not supported")
            p = dict(doc["params"])
            mix = MixtureParams(**p.pop("mixture"))
            for retired in RETIRED_PARAMS:
                p.pop(retired, None)
            params = DecisionParams(mixture=mix, **p)
            models = {
                k: LogisticModel(
                    tuple(m["names"]), list(m["coef"]), float(m["intercept"]), int(m["n_fit"])
                )
                for k, m in doc["models"].items()
            }
            return cls(params, models, dict(doc.get("meta", {})))
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, ModelError):
                raise
            raise ModelError(f"malformed calibration: {err}") from err

    def save(self, path: Path | str) -> None:
        """Write as JSON (atomic rename)."""
        atomic_write_text(path, json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path | str) -> Calibration:
        """Read a calibration file."""
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot read calibration {path}: {err}") from err
        return cls.from_json(doc)


def find_calibration(*dirs: Path | None) -> Calibration:
    """The first ``calibration.json`` in *dirs* (library, model), else the shipped default."""
    for d in dirs:
        if d is not None and (Path(d) / CALIBRATION_FILE).is_file():
            return Calibration.load(Path(d) / CALIBRATION_FILE)
    if DEFAULT_PATH.is_file():
        return Calibration.load(DEFAULT_PATH)
    return Calibration()


def fit_calibration(
    params: DecisionParams,
    records: Sequence[tuple[str, Mapping[str, float], bool]],
    meta: Mapping[str, Any] | None = None,
) -> Calibration:
    """Fit one model per status from ``(status, evidence, correct)`` records.

    Status ``family`` records carry the family vote's evidence and whether its family was
    right; without any, no family model is fitted (the decision then names no family from
    neighbours).
    """
    models = {}
    for status, names in FEATURES.items():
        if status == "family" and not any(st == status for st, _, _ in records):
            continue
        rows = [features(ev) for st, ev, _ in records if st == status]
        ok = [c for st, _, c in records if st == status]
        models[status] = LogisticModel.fit(names, rows, ok)
    return Calibration(params, models, dict(meta or {}))

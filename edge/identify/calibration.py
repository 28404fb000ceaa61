"""Calibrated probabilities: one logistic (Platt) model per question, stored as JSON data.

Each model maps evidence features to a probability:

``identified``
    that the best single match (the top hit) is present: a conditional logit over the
    candidates, ``P(i) = exp(z_i) / (1 + sum_j exp(z_j))`` with ``z = a + b * sharp(r) + c *
    [first]`` for every candidate's own correlation ``r`` (and whether it is the best one)
    and the 1 standing for "none of them" (an unknown). Each candidate answers for itself:
    close rivals share the probability, a poor best match leaves it to "none", and a large
    gap at a poor match never reads as certainty (which an additive model of score and gap
    would extrapolate to);
``component``
    that one component of an accepted mixture is present (its own evidence: share, fit lost
    without it, fit lost when another candidate takes its place);
``family``
    that the family the nearest neighbours of an unknown vote for is right
    (:mod:`edge.identify.family`);
``analogue``
    that an unknown whose nearest library neighbour is a controlled substance is itself a
    controlled analogue (rather than a benign substance that happens to resemble one).

The models are fitted on variation between instruments and laboratories
(:mod:`edge.evaluate.runner`: the library's own spectra re-measured under the field
perturbation model, and, where the library holds one material from several sources, those
real cross-source spectra leave-one-source-out). They travel with the library as
``calibration.json``; the verdict's probability levels are fixed and documented
(:data:`edge.identify.result.IDENTIFY_PROBABILITY`, ``INCONCLUSIVE_PROBABILITY``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from edge.errors import ModelError
from edge.identify.match import MatchParams
from edge.identify.mixture import MixtureParams
from spectra_io.atomic import atomic_write_text
from spectra_io.sealed import seal, seal_problem

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
#: Questions whose answer depends on how often the field meets unknowns: their positive and
#: negative records get equal weight (a neutral prior, not the challenge's mix). Whether a
#: component the mixture model proposes is real is a property of the model itself: those
#: records keep their natural frequencies.
BALANCED = frozenset({"identified", "family", "analogue"})
#: Member of calibration.json holding the sha256 of the rest (spectra_io.sealed).
SEAL_KEY = "calibration_sha256"


class OutdatedCalibration(ModelError):
    """A calibration file written by an older version (intact, but not usable here)."""


DEFAULT_PATH = Path(__file__).with_name("calibration_default.json")
FORMAT_VERSION = 2

#: Features each model uses (names of :func:`features` keys).
FEATURES: dict[str, tuple[str, ...]] = {
    "identified": ("sharp_r", "first"),
    "component": ("sharp_fit", "share", "drop", "replace"),
    # P(the neighbours' family of an unknown is right), see edge.identify.family.
    "family": ("sharp_family_r", "family_share"),
    "analogue": ("sharp_r1", "gap"),
}

#: The fit feature whose calibrated support each question is checked against. A logistic
#: model extrapolates (a large gap at a poor fit would read as certainty): below the
#: :data:`FLOOR_QUANTILE` of that feature over the right answers it was fitted on, a
#: probability is capped under :data:`~edge.identify.result.INCONCLUSIVE_PROBABILITY`, so a
#: spectrum explained worse than any right answer the calibration saw is never named.
FLOORS: dict[str, str] = {"component": "fit"}
FLOOR_QUANTILE = 0.01
#: The cap below a floor.
BELOW_FLOOR = 0.45


def sharp(r: float) -> float:
    """Spread correlations near 1: ``-log10(1 - r)``, capped at 4."""
    return float(min(-math.log10(max(1.0 - r, 1e-4)), 4.0))


def features(evidence: Mapping[str, float]) -> dict[str, float]:
    """Derived features from raw evidence.

    Raw keys: ``r1`` (best shift-tolerant correlation), ``gap`` (r1 minus the next entry's),
    ``fit1`` / ``replace1`` (the top hit alone with its nuisance terms: fit correlation, and
    the fit lost when the best other candidate replaces it), ``fit``, ``share``, ``drop``,
    ``replace`` (one mixture component), ``family_r``, ``family_margin``, ``family_share``.
    """
    r1 = float(evidence.get("r1", 0.0))
    return {
        "sharp_r": sharp(float(evidence.get("r", r1))),
        "sharp_r1": sharp(r1),
        "gap": float(evidence.get("gap", 0.0)),
        "sharp_fit1": sharp(float(evidence.get("fit1", r1))),
        "replace1": float(evidence.get("replace1", evidence.get("gap", 0.0))),
        "sharp_fit": sharp(float(evidence.get("fit", r1))),
        "share": float(evidence.get("share", 1.0)),
        "drop": float(evidence.get("drop", 0.0)),
        "replace": float(evidence.get("replace", 0.0)),
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

    def predict_logit(self, feats: Mapping[str, float]) -> float:
        """The linear score ``intercept + coef . x``."""
        z = self.intercept + sum(c * feats[n] for c, n in zip(self.coef, self.names, strict=True))
        return float(max(min(z, 50.0), -50.0))

    def predict(self, feats: Mapping[str, float]) -> float:
        """Calibrated probability for one decision's features."""
        return float(1.0 / (1.0 + math.exp(-self.predict_logit(feats))))

    @classmethod
    def fit(
        cls,
        names: Sequence[str],
        rows: Sequence[Mapping[str, float]],
        correct: Sequence[bool],
        l2: float = 1e-2,
        weights: Sequence[float] | None = None,
    ) -> LogisticModel:
        """Maximum-likelihood fit (small L2 penalty; standardised features; optional record
        *weights*, e.g. to give positive and negative records equal total weight)."""
        x = np.array([[r[n] for n in names] for r in rows], dtype=np.float64).reshape(
            len(rows), len(names)
        )
        y = np.asarray(correct, dtype=np.float64)
        w8 = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(rows) == 0 or y.min() == y.max():
            p = float(np.clip(y.mean() if len(rows) else 0.5, 0.02, 0.98))
            return cls(tuple(names), [0.0] * len(names), math.log(p / (1 - p)), len(rows))
        mu, sd = x.mean(axis=0), x.std(axis=0)
        sd[sd == 0] = 1.0
        xs = (x - mu) / sd

        def loss(w: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
            z = w[0] + xs @ w[1:]
            pz = 1.0 / (1.0 + np.exp(-z))
            ll = np.sum(w8 * (np.logaddexp(0, z) - y * z)) + 0.5 * l2 * float(w[1:] @ w[1:])
            g = np.concatenate([[np.sum(w8 * (pz - y))], xs.T @ (w8 * (pz - y)) + l2 * w[1:]])
            return float(ll), g

        res = minimize(loss, np.zeros(len(names) + 1), jac=True, method="L-BFGS-B")
        w = res.x
        coef = w[1:] / sd
        intercept = float(w[0] - np.sum(w[1:] * mu / sd))
        return cls(tuple(names), [float(c) for c in coef], intercept, len(rows))


@dataclass
class DecisionParams:
    """Settings of the decision (stored with the calibration they were fitted with)."""

    #: A classifier this sure of an unknown's family backs the neighbours' family.
    family_min_prob: float = 0.6
    #: A weak neighbour vote needs at least this much of the classifier's substance
    #: probability on its family (and both heads' top family equal to it).
    family_min_substance_mass: float = 0.3
    #: Name an unknown's suspected family when its calibrated probability reaches this.
    family_min_conf: float = 0.5
    #: Neighbours that vote on an unknown's family.
    family_neighbours: int = 8
    #: Flag a suspected analogue when its calibrated probability reaches this.
    analogue_min_prob: float = 0.5
    #: A confirmed threat component raises ``alarm`` only with at least this spectral share.
    alarm_min_share: float = 0.15
    match: MatchParams = field(default_factory=MatchParams)
    mixture: MixtureParams = field(default_factory=MixtureParams)


@dataclass
class Calibration:
    """Decision settings plus one calibrated model per question."""

    params: DecisionParams = field(default_factory=DecisionParams)
    models: dict[str, LogisticModel] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    #: Per question, the lowest fit (:data:`FLOORS`) the calibration saw right answers at.
    floors: dict[str, float] = field(default_factory=dict)

    def probability(self, question: str, evidence: Mapping[str, float]) -> float:
        """Calibrated probability for *question* (a :data:`FEATURES` key; 0.5 when no model),
        never above its floor model (:data:`FLOORS`) when there is one."""
        model = self.models.get(question)
        if model is None:
            return 0.5
        p = model.predict(features(evidence))
        floor = self.floors.get(question)
        if floor is not None and float(evidence.get(FLOORS[question], 1.0)) < floor:
            return min(p, BELOW_FLOOR)
        return p

    def candidate_probabilities(self, scores: Sequence[float]) -> list[float]:
        """P(each candidate is the substance present), best first, from the ``identified``
        conditional logit; *scores* are the candidates' correlations (spectral twins
        merged). 1/(n+1) each when uncalibrated."""
        model = self.models.get("identified")
        if model is None or not len(scores):
            return [1.0 / (len(scores) + 1)] * len(scores)
        x = candidate_features(scores)
        z = np.array(
            [model.predict_logit({"sharp_r": float(v[0]), "first": float(v[1])}) for v in x]
        )
        top = max(float(z.max()), 0.0)
        e = np.exp(z - top)
        return [float(v) for v in e / (np.exp(-top) + e.sum())]

    def calibrated(self, question: str) -> bool:
        """True when a model for *question* was fitted."""
        return question in self.models

    def to_json(self) -> dict[str, Any]:
        """JSON-able document."""
        return {
            "format_version": FORMAT_VERSION,
            "params": asdict(self.params),
            "models": {k: asdict(m) for k, m in self.models.items()},
            "floors": dict(self.floors),
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Calibration:
        """Parse :meth:`to_json` output; :class:`ModelError` when malformed."""
        try:
            if doc.get("format_version") != FORMAT_VERSION:
                raise OutdatedCalibration(
                    f"calibration format {doc.get('format_version')!r} not supported"
                )
            p = dict(doc["params"])
            mix = MixtureParams(**p.pop("mixture"))
            match = MatchParams(**p.pop("match"))
            params = DecisionParams(mixture=mix, match=match, **p)
            models = {
                k: LogisticModel(
                    tuple(m["names"]), list(m["coef"]), float(m["intercept"]), int(m["n_fit"])
                )
                for k, m in doc["models"].items()
            }
            for k, m in models.items():
                if k in FEATURES and m.names != FEATURES[k]:
                    raise ModelError(
                        f"calibration model {k!r} uses {list(m.names)}, this version expects"
                        f" {list(FEATURES[k])}: recalibrate"
                    )
            floors = {str(k): float(v) for k, v in dict(doc.get("floors", {})).items()}
            return cls(params, models, dict(doc.get("meta", {})), floors)
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, ModelError):
                raise
            raise ModelError(f"malformed calibration: {err}") from err

    def save(self, path: Path | str) -> None:
        """Write as JSON, sealed with the sha256 of its content (atomic rename)."""
        doc = seal(self.to_json(), SEAL_KEY)
        atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path | str) -> Calibration:
        """Read a calibration file; :class:`ModelError` when unreadable, damaged (its seal does
        not hold) or malformed, :class:`OutdatedCalibration` when written by an older
        version."""
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot read calibration {path}: {err}") from err
        if not isinstance(doc, dict):
            raise ModelError(f"calibration {path}: not a JSON object")
        if doc.get("format_version") != FORMAT_VERSION:
            raise OutdatedCalibration(
                f"calibration {path} has format {doc.get('format_version')!r}, this version"
                f" reads {FORMAT_VERSION}: run 'spectra-edge library calibrate'"
            )
        problem = seal_problem(doc, SEAL_KEY)
        if problem is not None:
            raise ModelError(f"calibration {path}: {problem}")
        return cls.from_json({k: v for k, v in doc.items() if k != SEAL_KEY})


def find_calibration(*dirs: Path | None) -> Calibration:
    """The first ``calibration.json`` in *dirs* (library, model), else the shipped default.

    A library without its own calibration (or with one an older version wrote) is identified
    with the default fitted on the starter library, whose probabilities need not carry over:
    that is logged as a warning and recorded in ``meta["source"]`` (``health`` reports it).
    A damaged one is an error (:class:`ModelError`): it must not be replaced silently.
    """
    for d in dirs:
        if d is None:
            continue
        path = Path(d) / CALIBRATION_FILE
        if path.is_file():
            try:
                cal = Calibration.load(path)
            except OutdatedCalibration as err:
                log.warning("%s", err)
                continue
            cal.meta["source"] = str(path)
            return cal
    named = [str(d) for d in dirs if d is not None]
    if named:
        log.warning(
            "no calibration.json in %s: using the shipped default, fitted on the starter "
            "library; run 'spectra-edge library calibrate LIB' to fit one",
            ", ".join(named),
        )
    cal = Calibration.load(DEFAULT_PATH) if DEFAULT_PATH.is_file() else Calibration()
    cal.meta["source"] = "default"
    return cal


def fit_calibration(
    params: DecisionParams,
    records: Sequence[tuple[str, Mapping[str, Any], bool]],
    meta: Mapping[str, Any] | None = None,
    balance: bool = True,
) -> Calibration:
    """Fit one model per question from ``(question, evidence, correct)`` records.

    Question ``candidates`` records (``{"scores", "target"}``) fit the ``identified``
    conditional logit (:func:`fit_candidate_logit`); the others a logistic model each.

    With *balance*, the positive and negative records of the :data:`BALANCED` questions get
    equal total weight: those probabilities then do not depend on how many knowns and
    unknowns the challenge happened to hold (a neutral prior). A question without records
    gets no model (``family``, ``analogue``: the decision then names no family and flags no
    analogue).
    """
    models = {}
    floors: dict[str, float] = {}
    for question, key in FLOORS.items():
        right = [float(ev.get(key, 0.0)) for q, ev, c in records if q == question and c]
        if len(right) >= 20:
            floors[question] = round(float(np.quantile(right, FLOOR_QUANTILE)), 4)
    cand = [ev for q, ev, _ in records if q == "candidates"]
    if cand:
        models["identified"] = fit_candidate_logit(cand, balance=balance)
    for question, names in FEATURES.items():
        if question == "identified":
            continue
        rows = [features(ev) for q, ev, _ in records if q == question]
        ok = [c for q, _, c in records if q == question]
        if not rows:
            continue
        weights = None
        if balance and question in BALANCED and 0 < sum(ok) < len(ok):
            pos = sum(ok)
            neg = len(ok) - pos
            weights = [0.5 * len(ok) / (pos if c else neg) for c in ok]
        models[question] = LogisticModel.fit(names, rows, ok, weights=weights)
    return Calibration(params, models, dict(meta or {}), floors)


def candidate_features(scores: Sequence[float]) -> npt.NDArray[np.float64]:
    """Per candidate: ``sharp(r)`` and whether it is the best candidate (first place)."""
    x = np.zeros((len(scores), 2))
    x[:, 0] = [sharp(float(r)) for r in scores]
    if len(scores):
        x[0, 1] = 1.0
    return x


def fit_candidate_logit(
    records: Sequence[Mapping[str, Any]], balance: bool = True, l2: float = 1e-3
) -> LogisticModel:
    """Fit the ``identified`` conditional logit by maximum likelihood.

    ``z_i = a + b * sharp(r_i) + c * [i is the best candidate]``: besides each candidate's own
    correlation, first place itself carries evidence (another instrument lowers every score,
    the right one stays first). Each record holds ``scores`` (candidates' correlations, best
    first, twins merged) and ``target``: the index of the candidate that is present, or -1
    when none is. With *balance*, records with and without a present candidate carry equal
    total weight.
    """
    feats = [candidate_features(rec["scores"]) for rec in records]
    target = [int(rec["target"]) for rec in records]
    n_pos = sum(t >= 0 for t in target)
    n_neg = len(target) - n_pos
    if balance and n_pos and n_neg:
        w8 = [0.5 * len(target) / (n_pos if t >= 0 else n_neg) for t in target]
    else:
        w8 = [1.0] * len(target)

    def loss(theta: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        a, w = float(theta[0]), theta[1:]
        total = 0.0
        grad = np.zeros(3)
        for x, t, wt in zip(feats, target, w8, strict=True):
            z = np.concatenate(([0.0], a + x @ w))  # index 0: none of them
            m = float(z.max())
            e = np.exp(z - m)
            p = e / e.sum()
            k = t + 1
            total -= wt * (z[k] - m - math.log(float(e.sum())))
            dz = p.copy()  # gradient of -log p_k with respect to z
            dz[k] -= 1.0
            grad[0] += wt * float(dz[1:].sum())
            grad[1:] += wt * (dz[1:] @ x)
        total += 0.5 * l2 * float(theta @ theta)
        return total, grad + l2 * theta

    res = minimize(loss, np.array([-3.0, 3.0, 0.0]), jac=True, method="L-BFGS-B")
    a, b, c = (float(v) for v in res.x)
    return LogisticModel(("sharp_r", "first"), [b, c], a, len(records))

"""The one decision: search hits + mixture fit + classifier -> status, substance, confidence.

Rules, in order (thresholds in :class:`~edge.identify.calibration.DecisionParams`):

1. A failed quality gate: ``rejected`` with its reason code.
2. A significant, well-fitting mixture of 2-3 library substances: ``mixture``; the substance
   reported is the most severe component, the severity the highest of them.
3. Best hit correlation at least ``identify_min_r``: ``identified``.
4. Otherwise ``no_match``, naming the family the nearest library neighbours point to when its
   calibrated probability (status ``family``) reaches ``family_min_conf``, or falls short of
   it but both classifier heads (the family head, and the substance head summed per family,
   with at least ``family_min_substance_mass``) agree with it; a family head at least
   ``family_min_prob`` sure of another family vetoes it (no family rather than a wrong one).
   The classifier never names a family alone.

The confidence comes from the status' calibration model, fitted on simulated challenge data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.identify.calibration import Calibration
from edge.identify.family import substance_families, vote
from edge.identify.mixture import analyse_mixture
from edge.identify.reference import PreparedLibrary
from edge.identify.result import Hit, Identification, MixtureComponent
from edge.library.categories import SEVERITY_ORDER

SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITY_ORDER)}


@dataclass(frozen=True)
class Decision:
    """An identification with the evidence behind it (for evaluation and calibration)."""

    identification: Identification
    evidence: dict[str, float] = field(default_factory=dict)
    rows: tuple[int, ...] = ()
    #: Names of the best multi-component model, accepted or not (calibration re-decides).
    multi: tuple[str, ...] = ()
    #: Search neighbours ``(name, family, score)``, best first (calibration of the family).
    neighbours: tuple[tuple[str, str, float], ...] = ()


def family_name(prepared: PreparedLibrary, row: int) -> str:
    """Family of a library row: its narcotic family, else its category."""
    e = prepared.library.entries[row]
    return e.family or e.category


def decide(
    prepared: PreparedLibrary,
    vector: npt.NDArray[np.float64],
    keep: npt.NDArray[np.bool_],
    calibration: Calibration,
    *,
    prediction: Any | None = None,
    top_k: int = 5,
    quality: dict[str, float] | None = None,
    versions: dict[str, str] | None = None,
) -> Decision:
    """Decide on one preprocessed spectrum (*vector* zero outside *keep*)."""
    params = calibration.params
    lib = prepared.library
    k = max(top_k, params.mixture.candidates)
    vector, keep = prepared.reduce(vector, keep)
    found = prepared.index.search(vector, k, keep)
    rows = [int(i) for i in found.indices]
    scores = np.clip(found.scores, -1.0, 1.0)
    hits = tuple(
        Hit(lib.entries[r].name, round(max(float(s), 0.0), 4))
        for r, s in zip(rows, scores, strict=False)
    )[:top_k]
    common: dict[str, Any] = {
        "hits": hits,
        "quality": dict(quality or {}),
        "versions": dict(versions or {}),
    }
    if not rows:
        return Decision(Identification("no_match", None, 0.0, reason="empty_library", **common))
    mix = analyse_mixture(prepared.index, vector, keep, found.indices, params.mixture)
    r1 = float(scores[0])
    evidence: dict[str, float] = {
        "r1": r1,
        "gap": float(scores[0] - scores[1]) if len(scores) > 1 else r1,
        "fit": mix.fit,
        "single_fit": mix.single_fit,
        "min_share": min(mix.contributions) if mix.contributions else 1.0,
        "n_components": float(len(mix.rows)),
        "multi_fit": mix.multi_fit,
    }
    multi = tuple(lib.entries[r].name for r in mix.multi_rows)
    neighbours = tuple(
        (lib.entries[r].name, family_name(prepared, r), float(s))
        for r, s in zip(rows, scores, strict=False)
    )
    clf_probs = _classifier_probs(prediction)
    if mix.is_mixture:
        comps = tuple(
            MixtureComponent(
                lib.entries[r].name, round(c, 4), lib.entries[r].category, lib.entries[r].severity
            )
            for r, c in zip(mix.rows, mix.contributions, strict=True)
        )
        lead = max(
            zip(mix.rows, mix.contributions, strict=True),
            key=lambda rc: (SEVERITY_RANK[lib.entries[rc[0]].severity], rc[1]),
        )[0]
        evidence["clf_top"] = clf_probs.get(lib.entries[lead].name, 0.5) if clf_probs else 0.5
        conf = calibration.confidence("mixture", evidence)
        return Decision(
            Identification(
                "mixture",
                lib.substance(lead),
                round(conf, 4),
                mixture=comps,
                severity=lib.entries[lead].severity,
                family=family_name(prepared, lead),
                **common,
            ),
            evidence,
            mix.rows,
            multi,
            neighbours,
        )
    evidence["clf_top"] = clf_probs.get(lib.entries[rows[0]].name, 0.5) if clf_probs else 0.5
    if r1 >= params.identify_min_r:
        conf = calibration.confidence("identified", evidence)
        entry = lib.entries[rows[0]]
        return Decision(
            Identification(
                "identified",
                lib.substance(rows[0]),
                round(conf, 4),
                severity=entry.severity,
                family=family_name(prepared, rows[0]),
                **common,
            ),
            evidence,
            (rows[0],),
            multi,
            neighbours,
        )
    fam = _family_for_unknown(prepared, neighbours, prediction, calibration, evidence)
    conf = calibration.confidence("no_match", evidence)
    return Decision(
        Identification("no_match", None, round(conf, 4), family=fam, **common),
        evidence,
        (),
        multi,
        neighbours,
    )


def _classifier_probs(prediction: Any | None) -> dict[str, float]:
    if prediction is None:
        return {}
    labels = list(getattr(prediction, "labels", ()))
    probs = np.asarray(getattr(prediction, "substance_probs", ()), dtype=np.float64).ravel()
    return {str(lab): float(p) for lab, p in zip(labels, probs, strict=False)}


def _family_for_unknown(
    prepared: PreparedLibrary,
    neighbours: tuple[tuple[str, str, float], ...],
    prediction: Any | None,
    calibration: Calibration,
    evidence: dict[str, float],
) -> str | None:
    """Most probable family of an unknown, or None when the evidence does not support one.

    Adds the vote's evidence and ``family_conf`` (its calibrated probability) to *evidence*.
    """
    params = calibration.params
    if not calibration.calibrated("family"):
        return None
    ballot = vote(
        [f for _, f, _ in neighbours], [s for _, _, s in neighbours], params.family_neighbours
    )
    if ballot.family is None:
        return None
    evidence.update(ballot.evidence())
    conf = calibration.confidence("family", evidence)
    evidence["family_conf"] = conf
    sure = conf >= params.family_min_conf
    fam_labels = [str(x) for x in getattr(prediction, "family_labels", ())]
    fam_probs = np.asarray(getattr(prediction, "family_probs", ()), dtype=np.float64).ravel()
    if not fam_labels or fam_probs.size != len(fam_labels):
        return ballot.family if sure else None
    best = int(np.argmax(fam_probs))
    if fam_labels[best] != ballot.family:
        vetoed = fam_probs[best] >= params.family_min_prob
        return ballot.family if sure and not vetoed else None
    if sure:
        return ballot.family
    per_family = substance_families(
        [str(x) for x in getattr(prediction, "labels", ())],
        np.asarray(getattr(prediction, "substance_probs", ()), dtype=np.float64).ravel().tolist(),
        lambda name: _family_of_name(prepared, name),
    )
    top = max(per_family, key=per_family.__getitem__) if per_family else None
    agree = top == ballot.family and per_family[top] >= params.family_min_substance_mass
    return ballot.family if agree else None


def _family_of_name(prepared: PreparedLibrary, name: str) -> str | None:
    try:
        return family_name(prepared, prepared.library.index(name))
    except ValueError:
        return None

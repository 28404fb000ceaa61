"""The one decision: shift-tolerant search + nuisance-first mixture fit + calibrated probabilities.

For one preprocessed spectrum:

1. Search (:mod:`edge.identify.match`): every library entry's best correlation over small
   axis shifts; ``hits`` are the best of them. Entries the library itself cannot tell apart
   from the top hit (its spectral twins, :meth:`PreparedLibrary.twins`) are no rivals: the
   gap is measured to the best entry that is not one.
2. Mixture model (:mod:`edge.identify.mixture`) on the query aligned with the top hit: the
   top hit with its shift/width nuisance terms, then other entries only where they explain
   what instrument variants of the top hit cannot.
3. Probabilities (:mod:`edge.identify.calibration`): that the top hit is present (the
   ``identified`` conditional logit over the top hit, its rivals and "none of them") and that
   each mixture component is present (``component`` model);
   for an unknown, the family its neighbours vote for (``family``) and whether it is a
   controlled analogue (``analogue``).
4. The verdict (:mod:`edge.identify.verdict`): status, substance, severity and a confidence
   that never contradicts the status.

The classifier, when there is one, only takes part in the family of an unknown: its family
head can veto the neighbours' family, and both heads agreeing can back a weak vote; it never
names a family alone (on real data its family head alone is wrong more often than right).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.identify.calibration import Calibration
from edge.identify.family import substance_families, vote
from edge.identify.match import best_matches, shift_vector, shifts_in_points
from edge.identify.mixture import analyse_mixture
from edge.identify.reference import PreparedLibrary
from edge.identify.result import (
    Hit,
    Identification,
    MixtureComponent,
    Nearest,
    SuspectedFamily,
)
from edge.identify.verdict import Candidate, verdict


@dataclass(frozen=True)
class Decision:
    """An identification with the evidence behind it (for evaluation and calibration)."""

    identification: Identification
    #: Evidence about the top hit as a single substance (r1, gap, fit1, replace1, ...).
    evidence: dict[str, float] = field(default_factory=dict)
    #: Library rows of the search hits, best first.
    rows: tuple[int, ...] = ()
    #: Each mixture component's name and evidence (fit, share, drop, replace); empty when the
    #: mixture model holds one component.
    components: tuple[tuple[str, dict[str, float]], ...] = ()
    #: Search neighbours ``(name, family, score)``, best first (calibration of the family).
    neighbours: tuple[tuple[str, str, float], ...] = ()
    #: Calibrated probabilities the verdict used: top hit, each component (by name).
    probabilities: dict[str, float] = field(default_factory=dict)
    #: Names of the top hit's spectral twins (library entries it cannot be told from).
    twins: tuple[str, ...] = ()


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
    """Decide on one preprocessed spectrum (*vector* zero outside *keep*).

    *prediction* is the classifier's, or a function without arguments that makes it: it is
    consulted only for the family of an unknown, so an identified substance never waits for
    the classifier.
    """
    params = calibration.params
    lib = prepared.library
    k = max(top_k, params.mixture.candidates, params.family_neighbours, 2)
    vector, keep = prepared.reduce(vector, keep)
    step = float(prepared.grid[1] - prepared.grid[0]) * prepared.stride
    found = best_matches(prepared.index, vector, keep, k, shifts_in_points(params.match, step))
    rows = [int(i) for i in found.rows]
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
    aligned, aligned_keep = shift_vector(vector, keep, float(found.shifts[0]))
    twins = prepared.twins(rows[0])
    mix = analyse_mixture(
        prepared.index, aligned, aligned_keep, found.rows, params.mixture, twins=twins
    )
    r1 = float(scores[0])
    rivals = [float(s) for r, s in zip(rows[1:], scores[1:], strict=False) if r not in twins]
    evidence: dict[str, float] = {
        "r1": r1,
        "gap": r1 - rivals[0] if rivals else r1,
        "fit1": mix.single_fit,
        "replace1": mix.single_replace,
        "fit": mix.fit,
        "shift": float(found.shifts[0]) * step,
    }
    p_single = calibration.candidate_probabilities([r1, *rivals])[0]
    probabilities = {lib.entries[rows[0]].name: p_single}
    single = Candidate(rows[0], p_single, lib.entries[rows[0]].severity)
    components: list[tuple[str, dict[str, float]]] = []
    candidates: list[Candidate] = []
    if mix.is_mixture:
        for c in mix.components:
            ev = {"fit": mix.fit, "share": c.share, "drop": c.drop, "replace": c.replace}
            p = calibration.probability("component", ev)
            name = lib.entries[c.row].name
            components.append((name, ev))
            candidates.append(Candidate(c.row, p, lib.entries[c.row].severity, c.share))
            probabilities[f"component:{name}"] = p
    neighbours = tuple(
        (lib.entries[r].name, family_name(prepared, r), float(s))
        for r, s in zip(rows, scores, strict=False)
    )
    analogue = _analogue(prepared, rows[0], evidence, calibration)
    v = verdict(
        single, tuple(candidates), analogue=analogue, alarm_min_share=params.alarm_min_share
    )
    conf = round(float(v.confidence), 4)
    out = _identification(
        prepared, v, conf, evidence, neighbours, prediction, calibration, analogue
    )
    return Decision(
        Identification(**out, **common),
        evidence,
        tuple(rows),
        tuple(components),
        neighbours,
        probabilities,
        tuple(lib.entries[t].name for t in sorted(twins)),
    )


def _identification(
    prepared: PreparedLibrary,
    v: Any,
    conf: float,
    evidence: dict[str, float],
    neighbours: tuple[tuple[str, str, float], ...],
    prediction: Any | None,
    calibration: Calibration,
    analogue: bool,
) -> dict[str, Any]:
    """The fields of the :class:`Identification` for verdict *v* (without hits etc.)."""
    lib = prepared.library
    out: dict[str, Any] = {"status": v.status, "confidence": conf, "severity": v.severity}
    if v.status in ("identified", "mixture"):
        lead = v.named[0].row
        out["substance"] = lib.substance(lead)
        out["family"] = family_name(prepared, lead)
        if v.status == "mixture":
            out["mixture"] = tuple(
                MixtureComponent(
                    lib.entries[c.row].name,
                    round(c.share, 4),
                    lib.entries[c.row].category,
                    lib.entries[c.row].severity,
                    round(c.probability, 4),
                )
                for c in v.listed
            )
        return out
    out["substance"] = None
    top_row = v.nearest.row if v.nearest is not None else None
    if top_row is None and analogue:
        top_row = int(evidence["analogue_row"])
    if top_row is not None:
        e = lib.entries[top_row]
        score = next((s for n, _, s in neighbours if n == e.name), 0.0)
        out["nearest"] = Nearest(e.name, e.category, e.family, round(max(score, 0.0), 4))
    if not (analogue or v.status == "inconclusive"):
        return out  # a plain no_match names no family: nothing more to work out
    fam = _family_for_unknown(prepared, neighbours, prediction, calibration, evidence)
    if fam is not None and fam not in _controlled_families(prepared):
        fam = None  # a suspected family is a controlled one, or none is named
    if fam is not None:
        out["suspected_family"] = SuspectedFamily(fam, round(evidence["family_conf"], 4))
        out["family"] = fam
    return out


def _controlled_families(prepared: PreparedLibrary) -> set[str]:
    """Families (narcotic family, else category) of the library's alarm-severity entries."""
    lib = prepared.library
    return {family_name(prepared, i) for i, e in enumerate(lib.entries) if e.severity == "alarm"}


def _analogue(
    prepared: PreparedLibrary, top: int, evidence: dict[str, float], calibration: Calibration
) -> bool:
    """Whether an unknown looks like a controlled analogue: its nearest neighbour is controlled
    (``alarm`` severity) and the calibrated analogue probability reaches the threshold."""
    if prepared.library.entries[top].severity != "alarm" or not calibration.calibrated("analogue"):
        return False
    p = calibration.probability("analogue", evidence)
    evidence["analogue_prob"] = p
    evidence["analogue_row"] = float(top)
    return p >= calibration.params.analogue_min_prob


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
    conf = calibration.probability("family", evidence)
    evidence["family_conf"] = conf
    sure = conf >= params.family_min_conf
    if callable(prediction):
        prediction = prediction()  # the classifier runs only now, when a family is wanted
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

"""Run identification over a challenge set: per-query outcomes, metrics and calibration fits.

:func:`calibrate_library` fits the decision threshold and the confidence models for a library
using only that library (an inner split holds some of its compounds out as pseudo-unknowns),
so an outer evaluation never sees its own unknowns while calibrating.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge.evaluate.challenge import Query, Split, build_challenge, split_library
from edge.identify.calibration import Calibration, DecisionParams, fit_calibration
from edge.identify.decision import Decision
from edge.identify.family import vote, without
from edge.identify.identifier import Identifier
from edge.library import Library


@dataclass(frozen=True)
class Outcome:
    """One query's answer, scored against its truth."""

    query: Query
    status: str
    names: tuple[str, ...]  # identified substance or mixture components
    hits: tuple[str, ...]
    family: str | None
    confidence: float
    correct: bool
    evidence: dict[str, float] = field(default_factory=dict)
    multi: tuple[str, ...] = ()  # best multi-component model, accepted or not
    neighbours: tuple[tuple[str, str, float], ...] = ()  # (name, family, score), best first


def score(q: Query, d: Decision) -> Outcome:
    """Compare one decision with the query's ground truth."""
    r = d.identification
    if r.status == "mixture":
        names = tuple(m.name for m in r.mixture)
    elif r.substance is not None:
        names = (r.substance.name,)
    else:
        names = ()
    if q.kind == "single":
        correct = r.status == "identified" and names == q.truth
    elif q.kind == "unknown":
        correct = r.status == "no_match"
    else:
        correct = r.status == "mixture" and set(q.truth) <= set(names)
    return Outcome(
        q,
        r.status,
        names,
        tuple(h.name for h in r.hits),
        r.family,
        r.confidence,
        correct,
        dict(d.evidence),
        d.multi,
        d.neighbours,
    )


class Analyser(Protocol):
    """Anything with the :meth:`Identifier.analyse` call (the product, the baseline)."""

    def analyse(self, wavenumbers: npt.ArrayLike, absorbance: npt.ArrayLike) -> Decision: ...


def run(identifier: Analyser, queries: Sequence[Query]) -> list[Outcome]:
    """Identify every query with *identifier*."""
    return [score(q, identifier.analyse(q.wavenumbers, q.absorbance)) for q in queries]


def metrics(
    outcomes: Sequence[Outcome], known_families: Collection[str] | None = None
) -> dict[str, Any]:
    """Top-1/top-3, unknown rejection and family, mixture recall, statuses per kind.

    With *known_families* (the families present in the searched library) also the ceiling
    of family naming: the share of unknowns whose family the library has at all.
    """
    singles = [o for o in outcomes if o.query.kind == "single"]
    unknowns = [o for o in outcomes if o.query.kind == "unknown"]
    mix2 = [o for o in outcomes if o.query.kind == "mixture" and len(o.query.truth) == 2]
    mix3 = [o for o in outcomes if o.query.kind == "mixture" and len(o.query.truth) == 3]

    voted = [o for o in unknowns if o.status == "no_match" and "family_conf" in o.evidence]

    def frac(xs: Sequence[bool] | Sequence[float]) -> float | None:
        return round(float(np.mean(xs)), 4) if len(xs) else None

    def recall(o: Outcome) -> float:
        return (
            len(set(o.query.truth) & set(o.names)) / len(o.query.truth)
            if o.status == "mixture"
            else 0.0
        )

    return {
        "n_queries": len(outcomes),
        "top1": frac([o.correct for o in singles]),
        "top1_hit": frac([bool(o.hits) and o.hits[0] == o.query.truth[0] for o in singles]),
        "top3": frac([o.query.truth[0] in o.hits[:3] for o in singles]),
        "unknown_rejection": frac([o.status == "no_match" for o in unknowns]),
        "unknown_family_named": frac(
            [o.status == "no_match" and o.family is not None for o in unknowns]
        ),
        "unknown_family_accuracy": frac(
            [o.status == "no_match" and o.family == o.query.family for o in unknowns]
        ),
        "unknown_family_wrong": frac(
            [
                o.status == "no_match" and o.family is not None and o.family != o.query.family
                for o in unknowns
            ]
        ),
        # Calibration in the large of the family confidence: its mean against how often the
        # neighbours' candidate family (named or not) is right, over no_match unknowns.
        "unknown_family_mean_conf": frac([o.evidence["family_conf"] for o in voted]),
        "unknown_family_vote_accuracy": frac([_vote_family(o) == o.query.family for o in voted]),
        "unknown_family_ceiling": (
            frac([o.query.family in known_families for o in unknowns])
            if known_families is not None
            else None
        ),
        "mixture2_both_found": frac([o.correct for o in mix2]),
        "mixture3_all_found": frac([o.correct for o in mix3]),
        "mixture3_component_recall": frac([recall(o) for o in mix3]),
        "counts": {
            "single": len(singles),
            "unknown": len(unknowns),
            "mixture2": len(mix2),
            "mixture3": len(mix3),
        },
        "statuses": {
            kind: dict(Counter(o.status for o in outcomes if o.query.kind == kind))
            for kind in ("single", "unknown", "mixture")
        },
    }


def _vote_family(o: Outcome, k: int | None = None) -> str | None:
    """The neighbours' candidate family of an outcome (as the decision computed it)."""
    k = DecisionParams().family_neighbours if k is None else k
    return vote([f for _, f, _ in o.neighbours], [s for _, _, s in o.neighbours], k).family


def fit_identify_threshold(
    outcomes: Sequence[Outcome], grid: Sequence[float] | None = None
) -> float:
    """The ``identify_min_r`` that best separates known singles from unknowns.

    Objective: singles identified correctly plus unknowns rejected (equal weight, as rates);
    ties resolve to the middle of the best plateau.
    """
    return fit_thresholds(outcomes, DecisionParams(), r_grid=grid, fit_grid=())[0]


def fit_thresholds(
    outcomes: Sequence[Outcome],
    params: DecisionParams,
    r_grid: Sequence[float] | None = None,
    fit_grid: Sequence[float] | None = None,
) -> tuple[float, float]:
    """Jointly fit ``identify_min_r`` and the mixture ``min_fit`` on simulated outcomes.

    Objective: rate of singles identified correctly + rate of unknowns answered no_match +
    rate of two-component mixtures with both parts named (each kind weighted equally); ties
    resolve to the middle of the best plateau (in grid order). An empty *fit_grid* keeps
    ``params.mixture.min_fit``.
    """
    r_cand = list(r_grid or np.round(np.arange(0.70, 0.991, 0.005), 3))
    f_cand = (
        list(fit_grid) if fit_grid is not None else list(np.round(np.arange(0.90, 0.991, 0.005), 3))
    )
    if not f_cand:
        f_cand = [params.mixture.min_fit]
    kinds = {k: [o for o in outcomes if _kind(o) == k] for k in ("single", "unknown", "mixture2")}
    if not kinds["single"] or not kinds["unknown"]:
        return params.identify_min_r, params.mixture.min_fit
    scored: list[tuple[float, float, float]] = []
    for f in f_cand:
        for t in r_cand:
            p = replace(
                params, identify_min_r=float(t), mixture=replace(params.mixture, min_fit=float(f))
            )
            total = 0.0
            for group in kinds.values():
                if group:
                    total += float(np.mean([_redecide(o, p).correct for o in group]))
            scored.append((total, float(t), float(f)))
    best = max(v for v, _, _ in scored)
    plateau = [(t, f) for v, t, f in scored if v >= best - 1e-9]
    return plateau[len(plateau) // 2]


def _kind(o: Outcome) -> str:
    if o.query.kind == "mixture":
        return "mixture2" if len(o.query.truth) == 2 else "mixture3"
    return o.query.kind


def calibration_records(
    outcomes: Sequence[Outcome], family_neighbours: int | None = None
) -> list[tuple[str, dict[str, float], bool]]:
    """``(status, evidence, correct)`` for every non-rejected outcome, plus family records."""
    records = [(o.status, o.evidence, o.correct) for o in outcomes if o.status != "rejected"]
    return records + family_records(outcomes, family_neighbours)


def family_records(
    outcomes: Sequence[Outcome], k: int | None = None
) -> list[tuple[str, dict[str, float], bool]]:
    """``("family", vote evidence, family right)`` for every unknown and single query.

    An unknown's neighbours vote as they are; a known single's vote leaves its own library
    entry out (leave-one-out), so every library compound also serves as a pseudo-unknown.
    """
    k = DecisionParams().family_neighbours if k is None else k
    records: list[tuple[str, dict[str, float], bool]] = []
    for o in outcomes:
        if o.query.kind not in ("unknown", "single") or not o.neighbours or not o.query.family:
            continue
        names = [n for n, _, _ in o.neighbours]
        fams = [f for _, f, _ in o.neighbours]
        scores = [s for _, _, s in o.neighbours]
        if o.query.kind == "single":
            fams, scores = without(names, fams, scores, o.query.truth[0])
        ballot = vote(fams, scores, k)
        if ballot.family is not None:
            records.append(("family", ballot.evidence(), ballot.family == o.query.family))
    return records


def calibrate_library(
    library: Library,
    *,
    classifier: Any | None = None,
    holdout: float = 0.1,
    seed: int = 0,
    rounds: int = 2,
    base: DecisionParams | None = None,
    **challenge_options: Any,
) -> Calibration:
    """Fit threshold and confidence models for *library* from its own simulated challenges.

    Each round holds a different tenth of *library* out as pseudo-unknowns.
    """
    params = base or DecisionParams()
    outcomes: list[Outcome] = []
    for k in range(rounds):
        split = split_library(library, holdout, seed + 7919 * (k + 1))
        inner = library.subset(split.known)
        ident = Identifier(inner, None, calibration=Calibration(params))
        queries = build_challenge(library, split, seed=seed + 104729 * (k + 1), **challenge_options)
        outcomes += run(ident, queries)
    threshold, min_fit = fit_thresholds(outcomes, params)
    params = replace(
        params, identify_min_r=threshold, mixture=replace(params.mixture, min_fit=min_fit)
    )
    # Re-score with the fitted threshold, then fit the confidence models on those decisions.
    rescored = [_redecide(o, params) for o in outcomes]
    meta = {
        "library": library.name,
        "library_hash": library.content_hash,
        "rounds": rounds,
        "holdout": holdout,
        "seed": seed,
        "n_records": len(rescored),
    }
    return fit_calibration(params, calibration_records(rescored, params.family_neighbours), meta)


def _redecide(o: Outcome, params: DecisionParams) -> Outcome:
    """The outcome had the decision used *params* (thresholds only; the evidence is kept)."""
    if o.status == "rejected":
        return o
    q = o.query
    if len(o.multi) > 1 and o.evidence.get("multi_fit", 0.0) >= params.mixture.min_fit:
        names, status = o.multi, "mixture"
        correct = q.kind == "mixture" and set(q.truth) <= set(names)
    elif o.evidence.get("r1", 0.0) >= params.identify_min_r:
        names, status = o.hits[:1], "identified"
        correct = q.kind == "single" and names == q.truth
    else:
        names, status = (), "no_match"
        correct = q.kind == "unknown"
    return replace(o, status=status, names=names, correct=correct)


__all__ = [
    "Outcome",
    "Split",
    "calibrate_library",
    "calibration_records",
    "family_records",
    "fit_identify_threshold",
    "fit_thresholds",
    "metrics",
    "run",
    "score",
]

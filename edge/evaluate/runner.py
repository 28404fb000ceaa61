"""Run identification over a challenge set: per-query outcomes, metrics and calibration fits.

:func:`calibrate_library` fits the calibrated probabilities for a library using only that
library: its spectra re-measured under the field perturbation model
(:data:`edge.evaluate.challenge.FIELD`, ranges checked against real cross-laboratory pairs),
an inner split holding some compounds out as pseudo-unknowns, and, where the library holds
one material from several sources, those real cross-source spectra leave-one-source-out
(:mod:`edge.evaluate.sources`). An outer evaluation never sees its own unknowns while
calibrating.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge.evaluate.challenge import FIELD, Query, Split, build_challenge, split_library
from edge.identify.calibration import Calibration, DecisionParams, fit_calibration
from edge.identify.decision import Decision
from edge.identify.family import vote, without
from edge.identify.identifier import Identifier
from edge.identify.result import IDENTIFY_PROBABILITY
from edge.library import Library
from edge.preprocess.chain import spec_hash

#: Statuses that name a substance.
NAMING = ("identified", "mixture")


@dataclass(frozen=True)
class Outcome:
    """One query's answer, scored against its truth."""

    query: Query
    status: str
    names: tuple[str, ...]  # identified substance or confirmed mixture components
    hits: tuple[str, ...]
    family: str | None
    confidence: float
    correct: bool
    evidence: dict[str, float] = field(default_factory=dict)
    components: tuple[tuple[str, dict[str, float]], ...] = ()
    neighbours: tuple[tuple[str, str, float], ...] = ()  # (name, family, score), best first
    severity: str = "info"
    nearest: str | None = None
    suspected_family: str | None = None
    listed: tuple[str, ...] = ()  # every mixture component listed, confirmed or not
    twins: tuple[str, ...] = ()  # the top hit's spectral twins

    @property
    def claim_right(self) -> bool:
        """Whether what the answer claims with its confidence is true: the named substance or
        components are present (identified, mixture), the nearest is (inconclusive), nothing
        of the library is (no_match). Reliability is measured on this."""
        ok = present(self.query)
        if self.status == "identified":
            return bool(self.names) and self.names[0] in ok
        if self.status == "mixture":
            return bool(self.names) and set(self.names) <= ok
        if self.status == "inconclusive":
            return self.nearest in ok
        return self.query.kind == "unknown"


def present(q: Query) -> set[str]:
    """Names whose presence is true for *q* (truth plus accepted equivalents)."""
    return set() if q.kind == "unknown" else {*q.truth, *q.accept}


def score(q: Query, d: Decision) -> Outcome:
    """Compare one decision with the query's ground truth.

    single: right when ``identified`` with the truth (or an accepted equivalent); unknown:
    right when no substance is named (``no_match`` or ``inconclusive``); mixture: right when
    ``mixture`` names every true component.
    """
    r = d.identification
    listed = tuple(m.name for m in r.mixture)
    if r.status == "mixture":
        names = tuple(
            m.name
            for m in r.mixture
            if m.probability is None or m.probability >= IDENTIFY_PROBABILITY
        )
    elif r.status == "identified" and r.substance is not None:
        names = (r.substance.name,)
    else:
        names = ()
    ok = present(q)
    if q.kind == "single":
        correct = r.status == "identified" and bool(names) and names[0] in ok
    elif q.kind == "unknown":
        correct = r.status in ("no_match", "inconclusive")
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
        d.components,
        d.neighbours,
        r.severity,
        r.nearest.name if r.nearest is not None else None,
        r.suspected_family.name if r.suspected_family is not None else None,
        listed,
        d.twins,
    )


class Analyser(Protocol):
    """Anything with the :meth:`Identifier.analyse` call (the product, the baseline)."""

    def analyse(self, wavenumbers: npt.ArrayLike, absorbance: npt.ArrayLike) -> Decision: ...


def run(
    identifier: Analyser,
    queries: Sequence[Query],
    progress: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Identify every query with *identifier* (*progress* is called with 1 per query)."""
    out = []
    for q in queries:
        out.append(score(q, identifier.analyse(q.wavenumbers, q.absorbance)))
        if progress is not None:
            progress(1)
    return out


def _frac(xs: Sequence[bool] | Sequence[float]) -> float | None:
    return round(float(np.mean(xs)), 4) if len(xs) else None


def metrics(
    outcomes: Sequence[Outcome],
    known_families: Collection[str] | None = None,
    controlled: Callable[[Query], bool] | None = None,
) -> dict[str, Any]:
    """Every figure of issue 10 for one set of outcomes.

    *controlled* tells whether a query's truth is a controlled (alarm-severity) substance
    (default: the query's family is a narcotic family, i.e. not a category name).
    """
    is_ctrl = controlled or _narcotic_family
    singles = [o for o in outcomes if o.query.kind == "single"]
    unknowns = [o for o in outcomes if o.query.kind == "unknown"]
    mix2 = [o for o in outcomes if o.query.kind == "mixture" and len(o.query.truth) == 2]
    mix3 = [o for o in outcomes if o.query.kind == "mixture" and len(o.query.truth) == 3]
    benign_singles = [o for o in singles if not is_ctrl(o.query)]
    analogues = [o for o in unknowns if is_ctrl(o.query)]
    # unknowns that are neither narcotic nor regulated (a held-out precursor, oxidiser or
    # toxic chemical *should* be flagged: it counts apart, as regulated)
    benign_unknowns = [
        o for o in unknowns if not is_ctrl(o.query) and _truth_severity(o.query) == "info"
    ]
    regulated_unknowns = [
        o for o in unknowns if not is_ctrl(o.query) and _truth_severity(o.query) != "info"
    ]
    named_fam = [o for o in analogues if o.suspected_family is not None]

    def hit1(o: Outcome) -> bool:
        return bool(o.hits) and o.hits[0] in present(o.query)

    def recall(o: Outcome) -> float:
        return (
            len(set(o.query.truth) & set(o.names)) / len(o.query.truth)
            if o.status == "mixture"
            else 0.0
        )

    false_alarms = [o for o in benign_singles + benign_unknowns if o.severity == "alarm"]
    return {
        "n_queries": len(outcomes),
        # single (known) substances
        "top1": _frac([o.correct for o in singles]),
        "top1_hit": _frac([hit1(o) for o in singles]),
        "top3": _frac([bool(present(o.query) & set(o.hits[:3])) for o in singles]),
        "identified_wrong": _frac(
            [o.status in NAMING and not set(o.names) <= present(o.query) for o in singles]
        ),
        "inconclusive_right": _frac(
            [o.status == "inconclusive" and o.nearest in present(o.query) for o in singles]
        ),
        "single_no_match": _frac([o.status == "no_match" for o in singles]),
        # false alarms on pure non-controlled substances (known or not)
        "false_alarms": len(false_alarms),
        "false_alarms_conf90": sum(o.confidence >= 0.9 for o in false_alarms),
        "false_alarm_rate": _frac(
            [o.severity == "alarm" for o in benign_singles + benign_unknowns]
        ),
        # unknowns (held-out compounds)
        "unknown_not_named": _frac([o.status not in NAMING for o in unknowns]),
        "unknown_rejection": _frac([o.status == "no_match" for o in unknowns]),
        "unknown_inconclusive": _frac([o.status == "inconclusive" for o in unknowns]),
        "analogue_flagged": _frac([o.severity == "warn" for o in analogues]),
        "analogue_family_named": _frac([o.suspected_family is not None for o in analogues]),
        "analogue_family_right_when_named": _frac(
            [o.suspected_family == o.query.family for o in named_fam]
        ),
        "analogue_family_right": _frac([o.suspected_family == o.query.family for o in analogues]),
        "analogue_nearest_family_right": _frac(
            [bool(o.neighbours) and o.neighbours[0][1] == o.query.family for o in analogues]
        ),
        "benign_unknown_flagged": _frac(
            [o.severity != "info" or o.suspected_family is not None for o in benign_unknowns]
        ),
        "regulated_unknown_flagged": _frac([o.severity != "info" for o in regulated_unknowns]),
        "unknown_family_ceiling": (
            _frac([o.query.family in known_families for o in analogues])
            if known_families is not None
            else None
        ),
        # mixtures
        "mixture2_both_found": _frac([o.correct for o in mix2]),
        "mixture2_no_match": _frac([o.status == "no_match" for o in mix2]),
        "mixture2_drug_named": _frac([o.query.truth[0] in o.names for o in mix2]),
        "mixture2_drug_missed": _frac(
            [
                o.query.truth[0] not in o.names
                and o.nearest != o.query.truth[0]
                and o.query.truth[0] not in o.listed
                for o in mix2
            ]
        ),
        "mixture3_all_found": _frac([o.correct for o in mix3]),
        "mixture3_component_recall": _frac([recall(o) for o in mix3]),
        "counts": {
            "single": len(singles),
            "unknown": len(unknowns),
            "analogue": len(analogues),
            "benign_unknown": len(benign_unknowns),
            "regulated_unknown": len(regulated_unknowns),
            "mixture2": len(mix2),
            "mixture3": len(mix3),
        },
        "statuses": {
            kind: dict(Counter(o.status for o in outcomes if o.query.kind == kind))
            for kind in ("single", "unknown", "mixture")
        },
    }


#: Metrics and the count each is a rate over (for pooling seeds).
WEIGHTS = {
    "top1": "single",
    "top1_hit": "single",
    "top3": "single",
    "identified_wrong": "single",
    "inconclusive_right": "single",
    "single_no_match": "single",
    "false_alarm_rate": "single",
    "unknown_not_named": "unknown",
    "unknown_rejection": "unknown",
    "unknown_inconclusive": "unknown",
    "analogue_flagged": "analogue",
    "analogue_family_named": "analogue",
    "analogue_family_right_when_named": "analogue",
    "analogue_family_right": "analogue",
    "analogue_nearest_family_right": "analogue",
    "benign_unknown_flagged": "benign_unknown",
    "regulated_unknown_flagged": "regulated_unknown",
    "unknown_family_ceiling": "analogue",
    "mixture2_both_found": "mixture2",
    "mixture2_no_match": "mixture2",
    "mixture2_drug_named": "mixture2",
    "mixture2_drug_missed": "mixture2",
    "mixture3_all_found": "mixture3",
    "mixture3_component_recall": "mixture3",
}


def _truth_severity(q: Query) -> str:
    """The severity a query's own substance raises (its family is a narcotic family or a
    category name; anything unrecognised counts as ``info``)."""
    from edge.library.categories import severity_of

    if _narcotic_family(q):
        return "alarm"
    try:
        return severity_of(q.family or "benign")
    except ValueError:
        return "info"


def _narcotic_family(q: Query) -> bool:
    from edge.library.categories import NarcoticFamily

    return q.family in {f.value for f in NarcoticFamily}


def calibration_records(
    outcomes: Sequence[Outcome], params: DecisionParams | None = None
) -> list[tuple[str, Any, bool]]:
    """``(question, evidence, label)`` records for :func:`fit_calibration`.

    ``candidates``: the top hit and its rivals with the one present (single and unknown
    queries; :func:`candidate_record`); ``component``: was each mixture component present;
    ``family`` and ``analogue``: see :func:`family_records`, :func:`analogue_records`.
    """
    p = params or DecisionParams()
    records: list[tuple[str, Any, bool]] = []
    for o in outcomes:
        if o.status == "rejected" or not o.neighbours:
            continue
        ok = present(o.query)
        if o.query.kind in ("single", "unknown"):
            records.append(("candidates", candidate_record(o), True))
        for name, ev in o.components:
            records.append(("component", ev, name in ok))
    return records + family_records(outcomes, p.family_neighbours) + analogue_records(outcomes)


def candidate_record(o: Outcome) -> dict[str, Any]:
    """The top hit and its rivals (spectral twins merged into the top hit) with the index of
    the one present (-1: none), for the ``identified`` conditional logit."""
    ok = present(o.query)
    twins = set(o.twins)
    names = [o.neighbours[0][0]] + [n for n, _, _ in o.neighbours[1:] if n not in twins]
    scores = [o.neighbours[0][2]] + [s for n, _, s in o.neighbours[1:] if n not in twins]
    target = -1
    if o.neighbours[0][0] in ok or ok & twins:
        target = 0
    else:
        target = next((i for i, n in enumerate(names) if n in ok), -1)
    return {"scores": scores, "target": target}


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


def analogue_records(
    outcomes: Sequence[Outcome], controlled_families: Collection[str] | None = None
) -> list[tuple[str, dict[str, float], bool]]:
    """``("analogue", {r1, gap}, query is controlled)`` whenever the nearest library
    neighbour of an unknown is controlled; known singles serve leave-one-out."""
    from edge.library.categories import NarcoticFamily

    ctrl = set(controlled_families or {f.value for f in NarcoticFamily})
    records: list[tuple[str, dict[str, float], bool]] = []
    for o in outcomes:
        if o.query.kind not in ("unknown", "single") or not o.neighbours:
            continue
        nb = [
            (n, f, s)
            for n, f, s in o.neighbours
            if not (o.query.kind == "single" and n in present(o.query))
        ]
        if len(nb) < 2 or nb[0][1] not in ctrl:
            continue
        ev = {"r1": nb[0][2], "gap": nb[0][2] - nb[1][2]}
        records.append(("analogue", ev, o.query.family in ctrl))
    return records


def calibrate_library(
    library: Library,
    *,
    holdout: float = 0.15,
    seed: int = 0,
    rounds: int = 3,
    base: DecisionParams | None = None,
    max_queries: int = 1500,
    progress: Callable[[int], None] | None = None,
    **challenge_options: Any,
) -> Calibration:
    """Fit the calibrated probabilities for *library* from its own simulated challenges.

    Each round holds a different part of *library* out as pseudo-unknowns and re-measures
    the rest under the field perturbation model (override with ``perturbation=``); large
    libraries are sampled so that a round stays under *max_queries* queries. Where the
    library holds one material from several sources, leave-one-source-out records from those
    real spectra are added (:mod:`edge.evaluate.sources`).
    """
    from edge.evaluate.sources import cross_source_queries

    params = base or DecisionParams()
    opts = dict(challenge_options)
    opts.setdefault("perturbation", FIELD)
    per = max(1, min(4, max_queries // max(len(library), 1)))
    opts.setdefault("singles_per_compound", per)
    opts.setdefault("unknowns_per_compound", per)
    opts.setdefault("mixtures2", min(150, max_queries // 4))
    opts.setdefault("mixtures3", min(40, max_queries // 12))
    outcomes: list[Outcome] = []
    full = Identifier(library, None, calibration=Calibration(params))
    for k in range(rounds):
        split = split_library(library, holdout, seed + 7919 * (k + 1))
        queries = build_challenge(library, split, seed=seed + 104729 * (k + 1), **opts)
        outcomes += run(full.subset(split.known), queries, progress)
    loso = cross_source_queries(library)
    for inner_rows, queries in loso:
        outcomes += run(full.subset(inner_rows), queries, progress)
    meta = {
        "library": library.name,
        "library_hash": library.content_hash,
        "spec_hash": spec_hash(full.prepared.spec),
        "rounds": rounds,
        "holdout": holdout,
        "seed": seed,
        "perturbation": "field" if opts["perturbation"] is FIELD else "custom",
        "cross_source_queries": sum(len(q) for _, q in loso),
        "n_records": len(outcomes),
    }
    return fit_calibration(params, calibration_records(outcomes, params), meta)


__all__ = [
    "Outcome",
    "Split",
    "analogue_records",
    "calibrate_library",
    "calibration_records",
    "family_records",
    "metrics",
    "present",
    "run",
    "score",
]

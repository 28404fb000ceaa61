"""The verdict: status, named substance, severity and confidence from calibrated probabilities.

Pure rules over what :mod:`edge.identify.decision` measured (no spectra here):

1. ``mixture`` when the accepted mixture model has at least two components that reach
   :data:`~edge.identify.result.INCONCLUSIVE_PROBABILITY`, one of them
   :data:`~edge.identify.result.IDENTIFY_PROBABILITY` (confirmed): ``substance`` is the
   major confirmed component (largest spectral share), every such component is listed with
   its own probability (the unconfirmed ones are "possible"), ``confidence`` is the smallest
   probability among the confirmed ones. A confirmed component raises its severity only
   with at least ``alarm_min_share`` of the signal; an unconfirmed component of ``alarm``
   severity makes the result ``warn`` at most.
2. ``identified`` when the best single match reaches
   :data:`~edge.identify.result.IDENTIFY_PROBABILITY`; its severity. (A mixture model with
   only one confirmed component is no mixture: its component probabilities assume the model.)
3. ``inconclusive`` when the most probable candidate reaches
   :data:`~edge.identify.result.INCONCLUSIVE_PROBABILITY`: ``nearest`` names it ("closest:
   X, confirm in the laboratory"), severity ``warn`` when X is controlled (``alarm`` or
   ``warn`` severity), else ``info``; its confidence stays below the identification level
   (a component confirmed only inside an unconfirmed mixture model is capped there).
4. ``no_match`` otherwise, ``confidence`` = 1 - the best candidate's probability; a suspected
   analogue (a controlled nearest neighbour with a calibrated analogue probability) makes it
   ``warn`` with ``nearest`` and ``suspected_family``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.identify.result import (
    IDENTIFY_PROBABILITY,
    INCONCLUSIVE_PROBABILITY,
    Severity,
    Status,
)
from edge.library.categories import SEVERITY_ORDER

RANK = {s: i for i, s in enumerate(SEVERITY_ORDER)}


@dataclass(frozen=True)
class Candidate:
    """A library entry the evidence points to, with the probability that it is present."""

    row: int
    probability: float
    severity: Severity
    share: float = 1.0


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`verdict`."""

    status: Status
    confidence: float
    severity: Severity
    named: tuple[Candidate, ...] = ()  # identified: one; mixture: the confirmed, major first
    listed: tuple[Candidate, ...] = ()  # mixture: every component, major first
    nearest: Candidate | None = None  # inconclusive: the closest candidate


def verdict(
    single: Candidate,
    components: tuple[Candidate, ...] = (),
    *,
    analogue: bool = False,
    alarm_min_share: float = 0.15,
    identify_at: float = IDENTIFY_PROBABILITY,
    inconclusive_at: float = INCONCLUSIVE_PROBABILITY,
) -> Verdict:
    """Decide from the best single match and the accepted mixture model's components."""
    comps = tuple(sorted(components, key=lambda c: -c.share))
    confirmed = tuple(c for c in comps if c.probability >= identify_at)
    possible = tuple(c for c in comps if inconclusive_at <= c.probability < identify_at)
    if len(comps) > 1 and confirmed and len(confirmed) + len(possible) >= 2:
        severity: Severity = "info"
        for c in confirmed + possible:
            if c in confirmed and (c.severity != "alarm" or c.share >= alarm_min_share):
                sev = c.severity
            elif c.severity == "info":
                sev = "info"
            else:
                sev = "warn"  # an unconfirmed (or too small) threat: look closer
            if RANK[sev] > RANK[severity]:
                severity = sev
        conf = min(c.probability for c in confirmed)
        listed = tuple(c for c in comps if c in confirmed or c in possible)
        return Verdict("mixture", conf, severity, confirmed, listed)
    if single.probability >= identify_at:
        return Verdict("identified", single.probability, single.severity, (single,))
    pool = [single, *comps]
    top = max(pool, key=lambda c: c.probability)
    if top.probability >= inconclusive_at:
        near_sev: Severity = "warn" if top.severity in ("alarm", "warn") or analogue else "info"
        # A component confirmed only inside an unconfirmed mixture model supports no more
        # than "inconclusive": its confidence stays below the identification level.
        conf = min(top.probability, float(np.nextafter(identify_at, 0.0)))
        return Verdict("inconclusive", conf, near_sev, nearest=top)
    return Verdict("no_match", 1.0 - top.probability, "warn" if analogue else "info")

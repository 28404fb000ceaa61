"""The family of an unknown from its nearest library neighbours.

An unknown analogue of a known drug tends to lie closest to members of its own family, but on
real libraries the nearest neighbour's family is right only when the match is close (pharmaco-
logical families are not spectral classes). So the neighbours give a candidate family and
evidence about it; a calibration model (:mod:`edge.identify.calibration`, status ``family``)
turns the evidence into the probability that the family is right, and the decision names the
family only above a threshold.

Evidence: ``family_r`` (correlation of the family's nearest member), ``family_margin`` (that
minus the nearest member of any other family) and ``family_share`` (score-weighted share of
the neighbours' votes for it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: Temperature of the vote weights ``exp((score - best) / T)``: neighbours within a few
#: hundredths of correlation of the best count, farther ones hardly.
VOTE_TEMPERATURE = 0.03


@dataclass(frozen=True)
class FamilyVote:
    """The neighbours' candidate family and the evidence for it."""

    family: str | None
    r: float = 0.0
    margin: float = 0.0
    share: float = 0.0

    def evidence(self) -> dict[str, float]:
        """The vote as decision evidence (``family_r``, ``family_margin``, ``family_share``)."""
        return {"family_r": self.r, "family_margin": self.margin, "family_share": self.share}


def vote(families: Sequence[str], scores: Sequence[float], k: int = 8) -> FamilyVote:
    """Family vote of the best *k* neighbours (*families*, *scores*: best first)."""
    pairs = list(zip(families, (float(s) for s in scores), strict=False))[: max(k, 0)]
    if not pairs:
        return FamilyVote(None)
    nearest: dict[str, float] = {}
    weight: dict[str, float] = {}
    top = max(s for _, s in pairs)
    for fam, s in pairs:
        nearest[fam] = max(nearest.get(fam, -1.0), s)
        weight[fam] = weight.get(fam, 0.0) + float(np.exp((s - top) / VOTE_TEMPERATURE))
    ranked = sorted(nearest.items(), key=lambda fs: -fs[1])
    fam, r = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    return FamilyVote(fam, r, r - runner_up, weight[fam] / sum(weight.values()))


def without(
    names: Sequence[str], families: Sequence[str], scores: Sequence[float], exclude: str
) -> tuple[list[str], list[float]]:
    """*families*/*scores* with the neighbours named *exclude* removed (leave-one-out)."""
    kept = [(f, s) for n, f, s in zip(names, families, scores, strict=True) if n != exclude]
    return [f for f, _ in kept], [s for _, s in kept]


def substance_families(
    labels: Sequence[str], probs: Sequence[float], family_of: Callable[[str], str | None]
) -> dict[str, float]:
    """A substance classifier's probabilities summed per family (unknown labels skipped)."""
    out: dict[str, float] = {}
    for label, p in zip(labels, probs, strict=False):
        fam = family_of(label)
        if fam is not None:
            out[fam] = out.get(fam, 0.0) + float(p)
    return out

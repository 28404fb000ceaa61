"""The verdict from calibrated probabilities: status and confidence never contradict, a
threat raises an alarm only on its own evidence, the major component is the substance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge.identify.result import IDENTIFY_PROBABILITY, INCONCLUSIVE_PROBABILITY
from edge.identify.verdict import Candidate, verdict


def test_identified_only_at_the_documented_probability() -> None:
    v = verdict(Candidate(3, 0.95, "alarm"))
    assert v.status == "identified" and v.confidence == 0.95 and v.severity == "alarm"
    assert v.named[0].row == 3
    v = verdict(Candidate(3, 0.89, "alarm"))
    assert v.status == "inconclusive" and v.nearest is not None and v.nearest.row == 3
    assert v.severity == "warn"  # a controlled closest substance: look closer, no alarm
    v = verdict(Candidate(3, 0.7, "info"))
    assert v.status == "inconclusive" and v.severity == "info"
    v = verdict(Candidate(3, 0.2, "alarm"))
    assert v.status == "no_match" and v.confidence == pytest.approx(0.8)
    assert v.severity == "info"
    assert verdict(Candidate(3, 0.2, "alarm"), analogue=True).severity == "warn"


def test_status_and_confidence_never_contradict() -> None:
    rng = np.random.default_rng(0)
    sev = ("alarm", "warn", "info")
    for _ in range(3000):
        single = Candidate(0, float(rng.uniform()), sev[int(rng.integers(3))])
        comps = tuple(
            Candidate(i + 1, float(rng.uniform()), sev[int(rng.integers(3))], float(s))
            for i, s in enumerate(rng.dirichlet(np.ones(int(rng.integers(0, 4)) or 1)))
        )
        comps = comps if len(comps) > 1 else ()
        v = verdict(single, comps, analogue=bool(rng.integers(2)))
        if v.status in ("identified", "mixture"):
            assert v.confidence >= IDENTIFY_PROBABILITY
        elif v.status == "inconclusive":
            assert INCONCLUSIVE_PROBABILITY <= v.confidence < IDENTIFY_PROBABILITY
        else:
            assert v.status == "no_match" and v.confidence > 1 - INCONCLUSIVE_PROBABILITY
        if v.severity == "alarm":  # only ever on a confirmed threat with a real share
            threats = [c for c in v.named if c.severity == "alarm"]
            assert threats and all(c.probability >= IDENTIFY_PROBABILITY for c in threats)


def test_mixture_names_the_major_component_and_alarms_on_the_threats_own_evidence() -> None:
    drug = Candidate(1, 0.97, "alarm", 0.3)
    cutter = Candidate(2, 0.99, "info", 0.7)
    v = verdict(Candidate(2, 0.6, "info"), (drug, cutter))
    assert v.status == "mixture" and v.named[0] == cutter and v.severity == "alarm"
    assert [c.row for c in v.listed] == [2, 1] and v.confidence == 0.97
    # the same threat, unconfirmed: listed, not named, never an alarm
    weak = Candidate(1, 0.6, "alarm", 0.3)
    third = Candidate(3, 0.95, "info", 0.2)
    v = verdict(Candidate(2, 0.6, "info"), (cutter, weak, third))
    assert v.status == "mixture" and v.severity == "warn" and weak in v.listed
    assert weak not in v.named
    # a confirmed threat with a tiny share: warn, not alarm
    tiny = Candidate(1, 0.99, "alarm", 0.1)
    v = verdict(Candidate(2, 0.6, "info"), (Candidate(2, 0.99, "info", 0.9), tiny))
    assert v.status == "mixture" and v.severity == "warn"


def test_a_possible_threat_beside_a_confirmed_component_is_shown_never_alarmed() -> None:
    """Cutting agent confirmed, drug at 0.6: a mixture listing both, severity warn (look
    closer), the drug not named; the confidence is the confirmed component's."""
    comps = (Candidate(2, 0.99, "info", 0.8), Candidate(1, 0.6, "alarm", 0.2))
    v = verdict(Candidate(2, 0.3, "info"), comps)
    assert v.status == "mixture" and v.severity == "warn" and v.confidence == 0.99
    assert [c.row for c in v.listed] == [2, 1] and [c.row for c in v.named] == [2]


def test_without_a_second_plausible_component_the_single_match_decides() -> None:
    """Component probabilities assume the mixture model; with no second component worth
    listing, the single match decides."""
    comps = (Candidate(2, 0.99, "info", 0.8), Candidate(1, 0.3, "alarm", 0.2))
    for p_single, status in ((0.95, "identified"), (0.7, "inconclusive"), (0.1, "inconclusive")):
        v = verdict(Candidate(2, p_single, "info"), comps)
        assert v.status == status
    v = verdict(Candidate(2, 0.1, "info"), comps)
    assert v.nearest == comps[0] and v.confidence < 0.9


@pytest.mark.parametrize("p", [0.0, 0.49999, 0.5, 0.89999, 0.9, 1.0])
def test_levels_are_inclusive(p: float) -> None:
    v = verdict(Candidate(0, p, "info"))
    expected = "identified" if p >= 0.9 else "inconclusive" if p >= 0.5 else "no_match"
    assert v.status == expected
    assert list(itertools.islice(iter(v.named), 1)) == (
        [Candidate(0, p, "info")] if p >= 0.9 else []
    )

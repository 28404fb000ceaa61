"""The identification result: what a scan concluded, shared by the CLI, the archive and MQTT.

This is the contract between identification (:mod:`edge.identify`) and publishing
(:mod:`edge.publish`): the MQTT ``scan/result`` schema carries every field here.

One verdict, derived from calibrated probability (:mod:`edge.identify.verdict`):

``identified``
    The calibrated probability that ``substance`` is present reaches
    :data:`IDENTIFY_PROBABILITY`; ``confidence`` is that probability.
``mixture``
    At least two components each reach :data:`IDENTIFY_PROBABILITY`; ``substance`` is the
    major one (largest spectral share), ``mixture`` lists every component with its own
    probability, ``confidence`` is the smallest probability of the confirmed ones.
``inconclusive``
    The evidence points to a substance (``nearest``: "closest: X, confirm in the
    laboratory") with a probability of at least :data:`INCONCLUSIVE_PROBABILITY` but below
    :data:`IDENTIFY_PROBABILITY`; ``confidence`` is that probability, ``substance`` is None.
``no_match``
    No substance reaches :data:`INCONCLUSIVE_PROBABILITY`; ``confidence`` is the probability
    that none of the candidates is present. When a controlled substance is the nearest
    neighbour above a calibrated similarity, ``nearest`` names it, ``suspected_family`` gives
    the family with its probability, and the severity is ``warn`` (a suspected analogue).
``rejected``
    A quality gate failed; ``reason`` says which.

So status and confidence never contradict: ``identified`` and ``mixture`` always carry at
least :data:`IDENTIFY_PROBABILITY`, ``inconclusive`` lies between the two levels, and
``no_match`` says how sure it is that nothing in the library is there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

Status = Literal["identified", "mixture", "inconclusive", "no_match", "rejected"]
Severity = Literal["alarm", "warn", "info"]

#: ``identified`` (and every confirmed mixture component) needs at least this calibrated
#: probability that the named substance is present.
IDENTIFY_PROBABILITY = 0.9
#: Below :data:`IDENTIFY_PROBABILITY` but at least this: ``inconclusive`` (confirm in the lab).
INCONCLUSIVE_PROBABILITY = 0.5


@dataclass(frozen=True)
class Substance:
    """A reference substance as reported to the officer and the control room."""

    name: str
    category: str
    family: str | None
    severity: Severity
    cas: str | None = None


@dataclass(frozen=True)
class Hit:
    """One library hit: substance name and hit-quality score in [0, 1]."""

    name: str
    score: float


@dataclass(frozen=True)
class MixtureComponent:
    """One component of a mixture: its *spectral share* and its own probability.

    ``contribution`` is the component's share of the explained spectral signal (0..1), not a
    concentration or a purity: show it as "spectral share", never as a bare percentage.
    ``probability`` is the calibrated probability that this component is present.
    """

    name: str
    contribution: float
    category: str | None = None
    severity: Severity | None = None
    probability: float | None = None


@dataclass(frozen=True)
class Nearest:
    """The closest library substance to an answer that names none (inconclusive, no_match)."""

    name: str
    category: str
    family: str | None
    score: float


@dataclass(frozen=True)
class SuspectedFamily:
    """The family an unknown most probably belongs to, with its calibrated probability."""

    name: str
    probability: float


@dataclass(frozen=True)
class Identification:
    """The decision for one spectrum."""

    status: Status
    substance: Substance | None
    confidence: float
    hits: tuple[Hit, ...] = ()
    mixture: tuple[MixtureComponent, ...] = ()
    family: str | None = None
    reason: str | None = None
    severity: Severity = "info"
    quality: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    nearest: Nearest | None = None
    suspected_family: SuspectedFamily | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (lists, not tuples)."""
        # Field by field rather than dataclasses.asdict (its generic deep copy was half of
        # the cost of building a scan/result message); the members are flat dataclasses of
        # scalars, so a copy of their attributes is their dict.
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["substance"] = None if self.substance is None else dict(vars(self.substance))
        d["hits"] = [dict(vars(h)) for h in self.hits]
        d["mixture"] = [dict(vars(m)) for m in self.mixture]
        d["quality"] = dict(self.quality)
        d["versions"] = dict(self.versions)
        d["nearest"] = None if self.nearest is None else dict(vars(self.nearest))
        d["suspected_family"] = (
            None if self.suspected_family is None else dict(vars(self.suspected_family))
        )
        return d


def mixture_text(mixture: Any) -> str:
    """Mixture components as an officer or a court should read them.

    ``"Cocaine HCl (spectral share 0.63, p 0.99) + Lactose (spectral share 0.37, p 0.97)"``:
    a component's share of the explained spectral signal is not a concentration or a
    purity, so it is never shown as a bare percentage. *mixture* is a result's ``mixture``
    list (dicts) or :class:`~edge.identify.result.MixtureComponent` objects.
    """
    parts = []
    for m in mixture or ():
        d = m if isinstance(m, Mapping) else vars(m)
        prob = d.get("probability")
        p = f", p {float(prob):.2f}" if isinstance(prob, int | float) else ""
        share = d.get("contribution")
        s = f"spectral share {float(share):.2f}" if isinstance(share, int | float) else ""
        detail = ", ".join(x for x in (s, p.lstrip(", ")) if x)
        parts.append(f"{d.get('name')} ({detail})" if detail else str(d.get("name")))
    return " + ".join(parts)

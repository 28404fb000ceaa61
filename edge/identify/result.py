"""The identification result: what a scan concluded, shared by the CLI, the archive and MQTT.

This is the contract between identification (:mod:`edge.identify`) and publishing
(:mod:`edge.publish`): the MQTT ``scan/result`` schema carries every field here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

Status = Literal["identified", "mixture", "no_match", "rejected"]
Severity = Literal["alarm", "warn", "info"]


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
    """One component of a mixture and its share of the explained spectral signal (0..1).

    ``contribution`` is a spectral contribution, not a concentration.
    """

    name: str
    contribution: float
    category: str | None = None
    severity: Severity | None = None


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
        return d

"""The sample stage: what is on the ATR crystal (the officer's hands, simulated)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hal.sim.substances import AbsorbanceFn, AbsorbanceSource, FloatArray, as_absorbance_fn

#: Turns a substance name into its absorbance (KeyError when unknown).
Resolver = Callable[[str], AbsorbanceSource]


@dataclass(frozen=True)
class Component:
    """One substance of a sample and its share of the absorbance."""

    name: str
    fraction: float
    absorbance: AbsorbanceFn


@dataclass(frozen=True)
class Sample:
    """What lies on the crystal: components plus the baseline of this placement."""

    components: tuple[Component, ...]
    baseline_offset: float
    baseline_slope_per_cm1: float

    def absorbance(self, nu: FloatArray) -> FloatArray:
        """Total absorbance at *nu*: fraction-weighted sum plus a sloping baseline."""
        a = self.baseline_offset + self.baseline_slope_per_cm1 * (nu - 650.0)
        total = np.full_like(nu, 0.0) + a
        for c in self.components:
            total += c.fraction * c.absorbance(nu)
        return total


def parse_sample_spec(spec: str) -> list[tuple[str, float]]:
    """``"NAME[:FRACTION],..."`` as (name, fraction) pairs; fractions default to equal shares."""
    parts = [s.strip() for s in spec.split(",") if s.strip()]
    if not parts:
        raise ValueError("empty sample specification")
    named: list[tuple[str, float | None]] = []
    for part in parts:
        name, _, frac = part.partition(":")
        if not name:
            raise ValueError(f"missing substance name in {part!r}")
        try:
            value = float(frac) if frac else None
        except ValueError as err:
            raise ValueError(f"bad fraction in {part!r}") from err
        if value is not None and not 0.0 < value <= 1.0:
            raise ValueError(f"fraction of {name!r} must be in (0, 1], got {value}")
        named.append((name.strip(), value))
    given = sum(v for _, v in named if v is not None)
    missing = [n for n, v in named if v is None]
    if given > 1.0 + 1e-9:
        raise ValueError(f"fractions add up to {given:g} > 1")
    share = (1.0 - given) / len(missing) if missing else 0.0
    if missing and share <= 0.0:
        raise ValueError("no fraction left for components given without one")
    return [(n, v if v is not None else share) for n, v in named]


class Stage:
    """Place a sample on the crystal or take it off. Baselines are drawn from the seeded RNG."""

    def __init__(self, resolver: Resolver, rng: np.random.Generator) -> None:
        self._resolve = resolver
        self._rng = rng
        self.sample: Sample | None = None

    def place(self, *components: str | tuple[str | AbsorbanceSource, float]) -> Sample:
        """Put a sample on: names (equal shares) or (name-or-absorbance, fraction) pairs."""
        if not components:
            raise ValueError("place() needs at least one component")
        pairs: list[tuple[str | AbsorbanceSource, float]] = [
            (c, 1.0 / len(components)) if isinstance(c, str) else c for c in components
        ]
        comps = []
        for i, (what, fraction) in enumerate(pairs):
            if fraction <= 0:
                raise ValueError(f"fraction must be > 0, got {fraction}")
            if isinstance(what, str):
                try:
                    source = self._resolve(what)
                except KeyError as err:
                    raise KeyError(f"unknown substance {what!r}") from err
                name = what
            else:
                source, name = what, f"component{i + 1}"
            comps.append(Component(name, float(fraction), as_absorbance_fn(source)))
        self.sample = Sample(
            tuple(comps),
            baseline_offset=float(self._rng.uniform(0.0, 0.02)),
            baseline_slope_per_cm1=float(self._rng.uniform(-5e-6, 1.5e-5)),
        )
        return self.sample

    def check_spec(self, spec: str) -> list[tuple[str, float]]:
        """Parse *spec* and resolve every name without placing anything.

        ValueError for a malformed spec, KeyError naming an unknown substance.
        """
        pairs = parse_sample_spec(spec)
        for name, _ in pairs:
            try:
                self._resolve(name)
            except KeyError as err:
                raise KeyError(f"unknown substance {name!r}") from err
        return pairs

    def place_spec(self, spec: str) -> Sample:
        """Place from a ``"NAME[:FRACTION],..."`` string."""
        return self.place(*parse_sample_spec(spec))

    def remove(self) -> None:
        """Clean the crystal: nothing on it."""
        self.sample = None

    @property
    def empty(self) -> bool:
        """True when nothing is on the crystal."""
        return self.sample is None

    def absorbance(self, nu: FloatArray) -> FloatArray:
        """Absorbance of what is on the crystal (zeros when empty)."""
        if self.sample is None:
            return np.zeros_like(nu)
        return self.sample.absorbance(nu)

"""Absorbance spectra synthesised from band tables (position, intensity, width, shape).

Each band is a pseudo-Voigt profile, ``eta * Lorentzian + (1 - eta) * Gaussian`` with a
common full width at half maximum, scaled so its peak equals the band's height. Solid-state
fingerprint bands are close to Lorentzian (eta ~0.6-0.8); hydrogen-bonded O-H and N-H
stretches are broad and close to Gaussian (eta ~0). Used to generate the starter library
from published band positions (see ``scripts/make_starter_library.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.library.metadata import ENTRY_FIELDS

_LN2 = float(np.log(2.0))


@dataclass(frozen=True)
class Band:
    """One infrared band: centre (cm^-1), peak height (absorbance), FWHM (cm^-1), eta."""

    position: float
    height: float
    fwhm: float
    eta: float = 0.6

    def __post_init__(self) -> None:
        if not (self.fwhm > 0 and self.height >= 0 and 0.0 <= self.eta <= 1.0):
            raise ValueError(f"bad band {self}: need fwhm > 0, height >= 0, 0 <= eta <= 1")


def pseudo_voigt(
    x: npt.NDArray[np.float64], position: float, fwhm: float, eta: float
) -> npt.NDArray[np.float64]:
    """Unit-height pseudo-Voigt profile centred at *position* evaluated at *x*."""
    d = (x - position) / (fwhm / 2.0)
    lorentz = 1.0 / (1.0 + d * d)
    gauss = np.exp(-_LN2 * d * d)
    return eta * lorentz + (1.0 - eta) * gauss


def synthesize(bands: Iterable[Band], grid: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Sum of the *bands* on *grid* (absorbance, float64)."""
    x = np.asarray(grid, dtype=np.float64)
    out = np.zeros_like(x)
    for b in bands:
        out += b.height * pseudo_voigt(x, b.position, b.fwhm, b.eta)
    return out


def parse_bands(rows: Sequence[Sequence[Any]], default_eta: float = 0.6) -> list[Band]:
    """Bands from table rows ``[position, relative_height, fwhm]`` or ``[..., eta]``.

    Raises ``ValueError`` naming the bad row.
    """
    out: list[Band] = []
    for i, row in enumerate(rows):
        if len(row) not in (3, 4):
            raise ValueError(f"band row {i + 1}: expected [position, height, fwhm(, eta)]: {row}")
        try:
            vals = [float(v) for v in row]
        except (TypeError, ValueError) as err:
            raise ValueError(f"band row {i + 1}: non-numeric value in {row}") from err
        eta = vals[3] if len(vals) == 4 else default_eta
        out.append(Band(vals[0], vals[1], vals[2], eta))
    return out


@dataclass(frozen=True)
class BandSubstance:
    """One substance of a band table: its metadata and bands (relative heights)."""

    meta: dict[str, Any]
    bands: tuple[Band, ...]
    peak_absorbance: float

    def absorbance(self, grid: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The substance's absorbance on *grid*, its strongest point scaled to peak_absorbance.

        The maximum is taken over the whole band sum (not just inside *grid*), so the
        scaling does not depend on the grid.
        """
        dense = np.arange(400.0, 4400.0, 0.5)
        top = float(synthesize(self.bands, dense).max())
        if top <= 0:
            raise ValueError(f"{self.meta.get('name')}: all band heights are zero")
        return synthesize(self.bands, grid) * (self.peak_absorbance / top)


_META_KEYS = ENTRY_FIELDS


def parse_band_table(doc: dict[str, Any], origin: str = "") -> list[BandSubstance]:
    """Substances from a parsed band-table TOML document (``[[substance]]`` tables).

    Each table holds the metadata keys (name, aliases, cas, formula, salt_form, category,
    family, notes, source), ``peak_absorbance`` (default 0.5), optional ``default_eta``
    and ``bands = [[position, relative_height, fwhm(, eta)], ...]``. Raises ``ValueError``.
    """
    out: list[BandSubstance] = []
    for i, table in enumerate(doc.get("substance", [])):
        label = f"{origin}: substance {i + 1} ({table.get('name', '?')})"
        unknown = set(table) - {*_META_KEYS, "bands", "peak_absorbance", "default_eta"}
        if unknown:
            raise ValueError(f"{label}: unknown keys {sorted(unknown)}")
        for key in ("name", "category", "source", "bands"):
            if not table.get(key):
                raise ValueError(f"{label}: missing {key!r}")
        try:
            bands = parse_bands(table["bands"], float(table.get("default_eta", 0.6)))
        except ValueError as err:
            raise ValueError(f"{label}: {err}") from err
        meta = {k: table[k] for k in _META_KEYS if k in table}
        out.append(BandSubstance(meta, tuple(bands), float(table.get("peak_absorbance", 0.5))))
    return out

"""The in-memory spectrum every reader returns and every writer takes, and its limits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from spectra_io.atomic import atomic_write_text
from spectra_io.errors import SpectrumFileError
from spectra_io.textfile import MAX_FILE_BYTES, MAX_POINTS, TextFile

#: Ordinate kinds a record may carry.
Y_UNITS: tuple[str, ...] = (
    "absorbance",
    "transmittance",
    "percent_transmittance",
    "counts",
    "reflectance",
    "kubelka_munk",
    "arbitrary",
)

#: Transmittance below this is clipped when converting to absorbance (absorbance <= 6).
_T_FLOOR = 1e-6

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class SpectrumRecord:
    """One spectrum: ``x`` wavenumbers (cm^-1, float64, strictly increasing), ``y`` float64.

    ``y_units`` is one of :data:`Y_UNITS`; ``metadata`` holds strings such as ``cas``,
    ``formula``, ``names``, ``origin``, ``category``, ``form``, ``aliases``, ``inchikey``.
    ``source`` names where it came from (the file a reader read it from); errors about the
    record name it. Construction checks shape, finiteness and ordering and raises
    :class:`~spectra_io.errors.SpectrumFileError` (naming ``source``) when they are wrong.
    """

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    y_units: str
    title: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = field(default="<record>", compare=False)

    def __post_init__(self) -> None:
        x = np.ascontiguousarray(self.x, dtype=np.float64)
        y = np.ascontiguousarray(self.y, dtype=np.float64)
        reason = _problem(x, y, self.y_units)
        if reason is not None:
            raise SpectrumFileError(self.source, reason)
        x.flags.writeable = False
        y.flags.writeable = False
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    def __len__(self) -> int:
        return int(self.x.size)

    def absorbance(self) -> npt.NDArray[np.float64]:
        """The ordinate as absorbance (transmittance clipped at 1e-6, i.e. absorbance <= 6)."""
        if self.y_units == "absorbance":
            return self.y.copy()
        if self.y_units in ("transmittance", "percent_transmittance"):
            t = self.y / 100.0 if self.y_units == "percent_transmittance" else self.y
            return np.asarray(-np.log10(np.clip(t, _T_FLOOR, None)), dtype=np.float64)
        raise SpectrumFileError(
            self.source, f"cannot convert {self.y_units!r} to absorbance (needs a reference)"
        )


def _problem(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], units: str) -> str | None:
    """Why ``x``/``y``/``units`` do not make a valid record, or None."""
    if units not in Y_UNITS:
        return f"unknown y units {units!r} (expected one of {', '.join(Y_UNITS)})"
    if x.ndim != 1 or y.ndim != 1:
        return "x and y must be one-dimensional"
    if x.size != y.size:
        return f"x has {x.size} points but y has {y.size}"
    if x.size < 2:
        return f"a spectrum needs at least 2 points, got {x.size}"
    if x.size > MAX_POINTS:
        return f"{x.size} points exceed the limit of {MAX_POINTS}"
    if not np.all(np.isfinite(x)):
        return "x contains NaN or infinite values"
    if not np.all(np.isfinite(y)):
        return "y contains NaN or infinite values"
    if not np.all(np.diff(x) > 0):
        return "x must be strictly increasing (duplicate wavenumbers?)"
    if x[0] <= 0:
        return f"wavenumbers must be positive, got {x[0]:g}"
    return None


def build_record(
    path: PathLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    y_units: str,
    title: str = "",
    metadata: dict[str, str] | None = None,
    line: int | None = None,
) -> SpectrumRecord:
    """Sort ``x`` increasing (carrying ``y``) and build a record; errors name ``path``/``line``."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.ndim == 1 and xa.shape == ya.shape and xa.size > 1 and np.all(np.isfinite(xa)):
        order = np.argsort(xa, kind="stable")
        xa, ya = xa[order], ya[order]
    try:
        return SpectrumRecord(xa, ya, y_units, title, dict(metadata or {}), str(path))
    except SpectrumFileError as err:
        raise SpectrumFileError(str(path), err.reason, line) from err


def read_text(path: PathLike, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The text of ``path`` (UTF-8, else Latin-1), refusing missing, empty or oversized files.

    Line-based readers use :class:`~spectra_io.textfile.TextFile` instead and stream.
    """
    return TextFile(path, max_bytes).text()


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` atomically (temporary file, then rename)."""
    p = Path(path)
    try:
        atomic_write_text(p, text)
    except OSError as err:
        raise SpectrumFileError(str(p), f"cannot write: {err.strerror or err}") from err

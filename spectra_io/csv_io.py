"""Two-column CSV spectra: ``wavenumber_cm-1,absorbance`` and the like.

The header names the units of both columns. The x column may be ``wavenumber`` (cm^-1),
``wavelength_um`` or ``wavelength_nm``; the y column ``absorbance``, ``transmittance``,
``percent_transmittance`` (or ``%T``), ``counts``, ``reflectance``, ``kubelka_munk`` or
``arbitrary``. Delimiter: comma, semicolon (decimal commas then allowed) or tab. Lines starting
with ``#`` are comments; ``# key: value`` comments before the header become metadata.
"""

from __future__ import annotations

import math
import re

from spectra_io.errors import SpectrumFileError
from spectra_io.record import (
    MAX_POINTS,
    PathLike,
    SpectrumRecord,
    build_record,
    read_text,
    write_text,
)

_Y_NAMES = [
    (re.compile(r"absorbance|^abs\b|^a$"), "absorbance"),
    (re.compile(r"transmittance|transmission|^t$"), "transmittance"),
    (re.compile(r"counts|single.?beam|intensity"), "counts"),
    (re.compile(r"kubelka|^km$"), "kubelka_munk"),
    (re.compile(r"reflectance"), "reflectance"),
    (re.compile(r"arbitrary|^au$|a\.u\."), "arbitrary"),
]
_Y_HEADER = {
    "absorbance": "absorbance",
    "transmittance": "transmittance",
    "percent_transmittance": "percent_transmittance",
    "counts": "counts",
    "reflectance": "reflectance",
    "kubelka_munk": "kubelka_munk",
    "arbitrary": "arbitrary",
}


def _x_unit(name: str) -> str | None:
    n = name.lower().replace(" ", "").replace("µ", "u")
    if "wavenumber" in n or "cm-1" in n or "1/cm" in n or "cm^-1" in n:
        return "cm-1"
    if "nm" in n or "nanomet" in n:
        return "nm"
    if "um" in n or "micro" in n or "micron" in n:
        return "um"
    return None


def _y_unit(name: str) -> str | None:
    n = name.strip().lower()
    if "transmit" in n or "transmis" in n or n in ("%t", "t"):
        pct = bool(re.search(r"percent|%|pct", n))
        return "percent_transmittance" if pct else "transmittance"
    for pattern, unit in _Y_NAMES:
        if pattern.search(n):
            return unit
    return None


def _delimiter(header: str) -> str:
    for d in ("\t", ";", ","):
        if d in header:
            return d
    raise SpectrumFileError("", "header must hold two columns separated by , ; or tab")


def read_csv(path: PathLike) -> SpectrumRecord:
    """Read a two-column CSV spectrum whose header names the units."""
    p = str(path)
    meta: dict[str, str] = {}
    header: tuple[int, list[str]] | None = None
    delim = ","
    xs: list[float] = []
    ys: list[float] = []
    for no, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line:
            continue
        if line.startswith("#"):
            if header is None and ":" in line:
                key, value = line[1:].split(":", 1)
                meta[key.strip().lower().replace(" ", "_")] = value.strip()
            continue
        if header is None:
            try:
                delim = _delimiter(line)
            except SpectrumFileError:
                raise SpectrumFileError(p, "header must name two columns", no) from None
            names = [c.strip().strip('"') for c in line.split(delim)]
            if len(names) != 2:
                raise SpectrumFileError(p, f"header has {len(names)} columns, expected 2", no)
            try:
                float(names[0].replace(",", "."))
            except ValueError:
                header = (no, names)
                continue
            raise SpectrumFileError(
                p, "no header: the first line must name the units, e.g. wavenumber_cm-1,absorbance",
                no,
            )  # fmt: skip
        cells = line.split(delim)
        if len(cells) != 2:
            raise SpectrumFileError(p, f"expected 2 columns, found {len(cells)}", no)
        try:
            xv, yv = (float(c.strip().strip('"').replace(",", ".")) for c in cells)
        except ValueError:
            raise SpectrumFileError(p, f"non-numeric value in {line[:60]!r}", no) from None
        if not (math.isfinite(xv) and math.isfinite(yv)):
            raise SpectrumFileError(p, "NaN or infinite value", no)
        xs.append(xv)
        ys.append(yv)
        if len(xs) > MAX_POINTS:
            raise SpectrumFileError(p, f"more than {MAX_POINTS} points", no)
    if header is None:
        raise SpectrumFileError(p, "no header and no data")
    hline, (xname, yname) = header
    x_unit, y_unit = _x_unit(xname), _y_unit(yname)
    if x_unit is None:
        raise SpectrumFileError(p, f"x column {xname!r} names no wavenumber/wavelength unit", hline)
    if y_unit is None:
        raise SpectrumFileError(p, f"y column {yname!r} names no known ordinate", hline)
    if x_unit != "cm-1":
        if any(v <= 0 for v in xs):
            raise SpectrumFileError(p, "wavelengths must be positive", hline)
        xs = [(1e4 if x_unit == "um" else 1e7) / v for v in xs]
    title = meta.pop("title", "")
    return build_record(p, xs, ys, y_unit, title, meta, hline)


def csv_text(record: SpectrumRecord, metadata: bool = True) -> str:
    """CSV text of ``record``: optional ``# key: value`` lines, header, one row per point."""
    lines: list[str] = []
    if metadata:
        if record.title:
            lines.append(f"# title: {' '.join(record.title.split())}")
        lines += [f"# {k}: {' '.join(v.split())}" for k, v in record.metadata.items() if v]
    lines.append(f"wavenumber_cm-1,{_Y_HEADER[record.y_units]}")
    lines += [f"{xv:.10g},{yv:.10g}" for xv, yv in zip(record.x, record.y, strict=True)]
    return "\n".join(lines) + "\n"


def write_csv(path: PathLike, record: SpectrumRecord, metadata: bool = True) -> None:
    """Write ``record`` as CSV (atomically); ``metadata=False`` writes the two columns only."""
    write_text(path, csv_text(record, metadata))

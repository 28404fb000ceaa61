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
from array import array

import numpy as np

from spectra_io.errors import SpectrumFileError
from spectra_io.record import MAX_POINTS, PathLike, SpectrumRecord, build_record, write_text
from spectra_io.textfile import TextFile

#: ``# key: value`` comment lines kept as metadata; later ones are plain comments.
MAX_META_KEYS = 256
#: Characters of one metadata value kept.
MAX_META_CHARS = 4096

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
    """Read a two-column CSV spectrum whose header names the units.

    Streamed line by line (:class:`~spectra_io.textfile.TextFile`); at most
    :data:`MAX_META_KEYS` ``# key: value`` lines become metadata (later ones are comments),
    each value cut at :data:`MAX_META_CHARS`.
    """
    p = str(path)
    meta: dict[str, str] = {}
    header: tuple[int, list[str], str] | None = None
    delim = ","
    xs: array[float] = array("d")
    ys: array[float] = array("d")
    for no, raw in TextFile(path).lines():
        line = raw.strip().lstrip("\ufeff")
        if not line:
            continue
        if line.startswith("#"):
            if header is None and ":" in line and len(meta) < MAX_META_KEYS:
                key, value = line[1:].split(":", 1)
                meta[key.strip().lower().replace(" ", "_")[:100]] = value.strip()[:MAX_META_CHARS]
            continue
        if header is None:
            header = _header(p, no, line)
            delim = header[2]
            continue
        cells = line.split(delim, 2)
        if len(cells) != 2:
            found = len(cells) if len(cells) < 3 else line.count(delim) + 1
            raise SpectrumFileError(p, f"expected 2 columns, found {found}", no)
        try:
            xv, yv = (float(c.strip().strip('"').replace(",", ".")) for c in cells)
        except ValueError:
            raise SpectrumFileError(p, f"non-numeric value in {line[:60]!r}", no) from None
        if not (math.isfinite(xv) and math.isfinite(yv)):
            raise SpectrumFileError(p, "NaN or infinite value", no)
        if len(xs) >= MAX_POINTS:
            raise SpectrumFileError(p, f"more than {MAX_POINTS} points", no)
        xs.append(xv)
        ys.append(yv)
    if header is None:
        raise SpectrumFileError(p, "no header and no data")
    hline, (xname, yname), _ = header
    x_unit, y_unit = _x_unit(xname), _y_unit(yname)
    if x_unit is None:
        raise SpectrumFileError(p, f"x column {xname!r} names no wavenumber/wavelength unit", hline)
    if y_unit is None:
        raise SpectrumFileError(p, f"y column {yname!r} names no known ordinate", hline)
    x = np.frombuffer(xs, dtype=np.float64)
    if x_unit != "cm-1":
        if np.any(x <= 0):
            raise SpectrumFileError(p, "wavelengths must be positive", hline)
        x = (1e4 if x_unit == "um" else 1e7) / x
    title = meta.pop("title", "")
    return build_record(p, x, np.frombuffer(ys, dtype=np.float64), y_unit, title, meta, hline)


def _header(path: str, no: int, line: str) -> tuple[int, list[str], str]:
    """(line number, the two column names, delimiter) of the header line, or an error."""
    try:
        delim = _delimiter(line)
    except SpectrumFileError:
        raise SpectrumFileError(path, "header must name two columns", no) from None
    names = [c.strip().strip('"')[:200] for c in line.split(delim, 2)]
    if len(names) != 2:
        found = len(names) if len(names) < 3 else line.count(delim) + 1
        raise SpectrumFileError(path, f"header has {found} columns, expected 2", no)
    try:
        float(names[0].replace(",", "."))
    except ValueError:
        return no, names, delim
    raise SpectrumFileError(
        path, "no header: the first line must name the units, e.g. wavenumber_cm-1,absorbance", no
    )


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

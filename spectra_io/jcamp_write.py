"""JCAMP-DX 5.01 writer: ``##XYDATA=(X++(Y..Y))`` in AFFN for evenly spaced spectra.

Ordinates are written as integers scaled by ``YFACTOR`` (9 significant digits), abscissae as
``X / XFACTOR`` with ``XFACTOR = 1``. Unevenly spaced spectra are written as
``##XYPOINTS=(XY..XY)``. Percent transmittance is written as TRANSMITTANCE (0..1).
"""

from __future__ import annotations

import math

import numpy as np

from spectra_io.errors import SpectrumFileError
from spectra_io.record import PathLike, SpectrumRecord, write_text

_Y_LABEL = {
    "absorbance": "ABSORBANCE",
    "transmittance": "TRANSMITTANCE",
    "percent_transmittance": "TRANSMITTANCE",
    "counts": "COUNTS",
    "reflectance": "REFLECTANCE",
    "kubelka_munk": "KUBELKA-MUNK",
    "arbitrary": "ARBITRARY UNITS",
}
#: Metadata keys written as standard labels; any other key becomes a ``##$KEY=`` record.
_STANDARD = {
    "cas": "CAS REGISTRY NO",
    "formula": "MOLFORM",
    "names": "NAMES",
    "date": "LONGDATE",
    "spectrometer": "SPECTROMETER/DATA SYSTEM",
    "state": "STATE",
    "resolution": "RESOLUTION",
    "sampling": "SAMPLING PROCEDURE",
    "cas_name": "CAS NAME",
    "mw": "MW",
    "source_reference": "SOURCE REFERENCE",
}
_SKIP = {"origin", "owner", "jcamp_dx", "data_type", "x_units_in_file"}
_LINE_MAX = 80
_SIG_DIGITS = 9


def _clean(value: str) -> str:
    """A header value on one line, without anything a reader would take for a label."""
    return " ".join(value.replace("##", "#").replace("$$", "$").split())


def _evenly_spaced(x: np.ndarray) -> bool:
    step = (x[-1] - x[0]) / (x.size - 1)
    return bool(np.allclose(np.diff(x), step, rtol=1e-6, atol=1e-9 * abs(step)))


def _header(record: SpectrumRecord) -> list[str]:
    meta = record.metadata
    lines = [
        f"##TITLE={_clean(record.title) or 'untitled'}",
        "##JCAMP-DX=5.01",
        "##DATA TYPE=INFRARED SPECTRUM",
        f"##ORIGIN={_clean(meta.get('origin', '')) or 'spectra-edge'}",
        f"##OWNER={_clean(meta.get('owner', '')) or 'unknown'}",
    ]
    for key, value in meta.items():
        if key in _SKIP or not value.strip():
            continue
        label = _STANDARD.get(key, "$" + key.upper().replace("_", " "))
        lines.append(f"##{label}={_clean(value)}")
    return lines


def _affn_table(x: np.ndarray, ints: list[int]) -> list[str]:
    """Lines of ``X Y Y Y ...`` with the X of each line's first ordinate, <= 80 columns."""
    lines: list[str] = []
    i = 0
    while i < len(ints):
        line = f"{x[i]:.6f}".rstrip("0").rstrip(".")
        j = i
        while j < len(ints) and len(line) + 1 + len(str(ints[j])) <= _LINE_MAX:
            line += f" {ints[j]}"
            j += 1
        lines.append(line)
        i = j
    return lines


def jcamp_text(record: SpectrumRecord) -> str:
    """The JCAMP-DX 5.01 text of ``record``."""
    x = record.x
    y = record.y / 100.0 if record.y_units == "percent_transmittance" else record.y
    lines = _header(record)
    lines += [
        "##XUNITS=1/CM",
        f"##YUNITS={_Y_LABEL[record.y_units]}",
        f"##FIRSTX={x[0]:.10g}",
        f"##LASTX={x[-1]:.10g}",
        f"##NPOINTS={x.size}",
    ]
    peak = float(np.max(np.abs(y)))
    yfactor = 10.0 ** (math.floor(math.log10(peak)) - (_SIG_DIGITS - 1)) if peak > 0 else 1.0
    ints = [int(v) for v in np.rint(y / yfactor).astype(np.int64)]
    if _evenly_spaced(x):
        lines += [
            "##XFACTOR=1",
            f"##YFACTOR={yfactor:.6g}",
            f"##DELTAX={(x[-1] - x[0]) / (x.size - 1):.10g}",
            f"##FIRSTY={ints[0] * yfactor:.10g}",
            f"##MAXY={max(ints) * yfactor:.10g}",
            f"##MINY={min(ints) * yfactor:.10g}",
            "##XYDATA=(X++(Y..Y))",
        ]
        lines += _affn_table(x, ints)
    else:
        lines += ["##XFACTOR=1", f"##YFACTOR={yfactor:.6g}", "##XYPOINTS=(XY..XY)"]
        lines += [f"{xv:.10g}, {iv}" for xv, iv in zip(x, ints, strict=True)]
    lines.append("##END=")
    return "\n".join(lines) + "\n"


def write_jcamp(path: PathLike, record: SpectrumRecord) -> None:
    """Write ``record`` as a JCAMP-DX 5.01 file (atomically)."""
    if not isinstance(record, SpectrumRecord):
        raise SpectrumFileError(str(path), "write_jcamp needs a SpectrumRecord")
    write_text(path, jcamp_text(record))

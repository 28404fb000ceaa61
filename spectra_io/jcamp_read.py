"""JCAMP-DX reader (4.24 / 5.01, infrared): XYDATA in AFFN or ASDF, XYPOINTS, LINK blocks.

Why our own reader: the maintained ``jcamp`` package (1.3.2; used in the tests as an
independent cross-check) misdecodes DUP counts of more than one digit (``%S7`` = 17 repeats),
raises a bare ``Exception`` on ``$$`` comments inside data lines, ignores labels indented by
blanks, only prints Y-check and length failures, gives no line numbers, accepts truncated files
and does not convert wavelength units. Here every problem raises
:class:`~spectra_io.errors.SpectrumFileError` with the file, the line and the reason, and nothing
half-read is returned.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from spectra_io import asdf
from spectra_io.errors import SpectrumFileError
from spectra_io.record import MAX_POINTS, PathLike, SpectrumRecord, build_record, read_text

_X_UNITS = {
    "1/CM": "cm-1", "CM-1": "cm-1", "CM^-1": "cm-1", "CM**-1": "cm-1", "WAVENUMBERS": "cm-1",
    "WAVENUMBER": "cm-1", "WAVENUMBER(CM-1)": "cm-1", "MICROMETERS": "um", "MICROMETER": "um",
    "MICRONS": "um", "MICRON": "um", "UM": "um", "NANOMETERS": "nm",
    "NANOMETER": "nm", "NM": "nm",
}  # fmt: skip
_Y_UNITS = {
    "ABSORBANCE": "absorbance", "ABS": "absorbance", "A": "absorbance",
    "TRANSMITTANCE": "transmittance", "TRANSMISSION": "transmittance", "T": "transmittance",
    "%T": "percent_transmittance", "%TRANSMITTANCE": "percent_transmittance",
    "PERCENTTRANSMITTANCE": "percent_transmittance", "TRANSMITTANCE(%)": "percent_transmittance",
    "REFLECTANCE": "reflectance", "KUBELKA-MUNK": "kubelka_munk", "KUBELKAMUNK": "kubelka_munk",
    "COUNTS": "counts", "SINGLEBEAM": "counts", "ARBITRARYUNITS": "arbitrary",
    "ARBITRARY": "arbitrary",
}  # fmt: skip
#: Header labels kept in metadata under a short name; others keep their own lower-case name.
_META = {
    "CASREGISTRYNO": "cas", "MOLFORM": "formula", "NAMES": "names", "ORIGIN": "origin",
    "OWNER": "owner", "DATE": "date", "LONGDATE": "date", "SPECTROMETERDATASYSTEM": "spectrometer",
    "STATE": "state", "RESOLUTION": "resolution", "SAMPLINGPROCEDURE": "sampling",
    "CASNAME": "cas_name", "MW": "mw", "DATATYPE": "data_type", "JCAMPDX": "jcamp_dx",
    "SOURCEREFERENCE": "source_reference",
}  # fmt: skip
_DATA_LABELS = {"XYDATA", "XYPOINTS", "PEAKTABLE", "NTUPLES"}
_NUMERIC = {
    "FIRSTX", "LASTX", "NPOINTS", "XFACTOR", "YFACTOR", "FIRSTY", "DELTAX", "MAXX", "MINX",
    "MAXY", "MINY", "XUNITS", "YUNITS", "BLOCKS", "BLOCKID", "PAGE", "ENDNTUPLES",
}  # fmt: skip
_LABEL_NOISE = re.compile(r"[\s\-_/]")


@dataclass
class _Ldr:
    """One labelled data record: ``##LABEL=value`` plus the lines that follow it."""

    label: str
    raw_label: str
    value: str
    line: int
    more: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Block:
    start: int
    ldrs: dict[str, _Ldr] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


def _norm_label(raw: str) -> str:
    """Label as compared by the spec: upper case, no spaces, dashes, slashes or underscores."""
    return _LABEL_NOISE.sub("", raw).upper()


def _split_ldrs(path: str, text: str) -> list[_Ldr]:
    """The file as a list of LDRs, ``$$`` comments removed."""
    ldrs: list[_Ldr] = []
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("$$", 1)[0].rstrip()
        if line.lstrip().startswith("##"):
            body = line.lstrip()[2:]
            if "=" not in body:
                raise SpectrumFileError(path, f"label without '=': {raw.strip()[:60]!r}", no)
            label, value = body.split("=", 1)
            ldrs.append(_Ldr(_norm_label(label), label.strip(), value.strip(), no))
        elif line.strip():
            if not ldrs:
                raise SpectrumFileError(path, "not JCAMP-DX: text before the first ##TITLE=", no)
            ldrs[-1].more.append((no, line))
    return ldrs


def _blocks(path: str, ldrs: list[_Ldr]) -> list[_Block]:
    """Blocks (TITLE ... END), nested LINK blocks included, in order of their start."""
    stack: list[_Block] = []
    done: list[_Block] = []
    for ldr in ldrs:
        if ldr.label == "TITLE":
            stack.append(_Block(ldr.line))
        if not stack:
            raise SpectrumFileError(path, f"##{ldr.raw_label}= outside a ##TITLE= block", ldr.line)
        if ldr.label == "END":
            done.append(stack.pop())
            continue
        block = stack[-1]
        if ldr.label not in block.ldrs:
            block.order.append(ldr.label)
            block.ldrs[ldr.label] = ldr
    if stack:
        last = ldrs[-1]
        raise SpectrumFileError(path, "truncated: a block has no ##END=", last.line)
    return sorted(done, key=lambda b: b.start)


def _number(path: str, block: _Block, label: str, default: float | None = None) -> float:
    """A numeric header value (decimal comma accepted); required unless ``default`` given."""
    ldr = block.ldrs.get(label)
    if ldr is None:
        if default is None:
            raise SpectrumFileError(path, f"missing required ##{label}=", block.start)
        return default
    text = ldr.value.strip().replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        raise SpectrumFileError(
            path, f"##{ldr.raw_label}={ldr.value!r} is not a number", ldr.line
        ) from None
    if not math.isfinite(value):
        raise SpectrumFileError(path, f"##{ldr.raw_label}= is not finite", ldr.line)
    return value


def _units(path: str, block: _Block, label: str, table: dict[str, str]) -> str:
    ldr = block.ldrs.get(label)
    if ldr is None:
        raise SpectrumFileError(path, f"missing required ##{label}=", block.start)
    key = ldr.value.replace("µ", "U").replace("μ", "U").upper().replace(" ", "")
    if key not in table:
        kind = "wavenumber or wavelength" if label == "XUNITS" else "supported ordinate"
        raise SpectrumFileError(path, f"##{label}={ldr.value} is not a {kind} unit", ldr.line)
    return table[key]


def _metadata(block: _Block) -> dict[str, str]:
    meta: dict[str, str] = {}
    for label in block.order:
        ldr = block.ldrs[label]
        if label in _DATA_LABELS or label in _NUMERIC or label == "TITLE":
            continue
        key = _META.get(label, ldr.raw_label.lstrip("$").strip().lower().replace(" ", "_"))
        value = " ".join([ldr.value, *(t.strip() for _, t in ldr.more)]).strip()
        if key and value:
            meta.setdefault(key, value)
    return meta


def _xydata(path: str, block: _Block) -> tuple[np.ndarray, np.ndarray]:
    """Abscissae (file units, scaled) and ordinates (scaled) of an (X++(Y..Y)) table."""
    ldr = block.ldrs["XYDATA"]
    if ldr.value.replace(" ", "").upper() != "(X++(Y..Y))":
        raise SpectrumFileError(path, f"unsupported XYDATA form {ldr.value!r}", ldr.line)
    first_x = _number(path, block, "FIRSTX")
    last_x = _number(path, block, "LASTX")
    npoints_f = _number(path, block, "NPOINTS")
    xfactor = _number(path, block, "XFACTOR", 1.0)
    yfactor = _number(path, block, "YFACTOR", 1.0)
    npoints = int(npoints_f)
    if npoints != npoints_f or not 2 <= npoints <= MAX_POINTS:
        raise SpectrumFileError(path, f"NPOINTS={npoints_f:g} outside 2..{MAX_POINTS}", ldr.line)
    if xfactor == 0 or yfactor == 0:
        raise SpectrumFileError(path, "XFACTOR and YFACTOR must not be 0", ldr.line)
    delta = (last_x - first_x) / (npoints - 1)
    if delta == 0:
        raise SpectrumFileError(path, "FIRSTX equals LASTX", ldr.line)
    ys: list[float] = []
    prev_dif = False
    for no, text in ldr.more:
        try:
            tokens = asdf.tokenize(text)
            if not tokens:
                continue
            if tokens[0].kind != "abs" or len(tokens) < 2:
                raise ValueError("a data line needs an abscissa and at least one ordinate")
            values, ends_dif = asdf.expand(tokens[1:], MAX_POINTS - len(ys) + 1)
        except ValueError as err:
            raise SpectrumFileError(path, f"bad XYDATA line: {err}", no) from None
        index = len(ys)
        expected = (tokens[0].value * xfactor - first_x) / delta
        # after a DIF line the first ordinate repeats the last one (Y-check); the abscissa
        # tells whether this writer put it there (point index - 1) or left it out (index)
        if prev_dif and ys and abs(expected - (index - 1)) <= abs(expected - index):
            check = values.pop(0)
            if abs(check - ys[-1]) > 1e-9 * max(1.0, abs(check)):
                raise SpectrumFileError(
                    path, f"Y-check failed: line starts with {check:g}, expected {ys[-1]:g}", no
                )
            index -= 1
        if abs(expected - index) > 1.0:
            raise SpectrumFileError(
                path, f"X-check failed: abscissa {tokens[0].value:g} is not point {index}", no
            )
        ys.extend(values)
        if len(ys) > npoints:
            raise SpectrumFileError(path, f"more ordinates than NPOINTS={npoints}", no)
        prev_dif = ends_dif
    if len(ys) != npoints:
        last = ldr.more[-1][0] if ldr.more else ldr.line
        raise SpectrumFileError(
            path, f"truncated XYDATA: NPOINTS={npoints} but {len(ys)} ordinates found", last
        )
    y = np.asarray(ys, dtype=np.float64) * yfactor
    if "FIRSTY" in block.ldrs:
        first_y = _number(path, block, "FIRSTY")
        tolerance = 1e-3 * max(float(np.max(np.abs(y))), 1e-300) + abs(yfactor)
        if abs(first_y - y[0]) > tolerance:
            raise SpectrumFileError(
                path,
                f"FIRSTY={first_y:g} but the first ordinate is {y[0]:g} (wrong YFACTOR?)",
                block.ldrs["FIRSTY"].line,
            )
    x = first_x + np.arange(npoints, dtype=np.float64) * delta
    return x, y


def _xypoints(path: str, block: _Block) -> tuple[np.ndarray, np.ndarray]:
    """Abscissae and ordinates (scaled) of an (XY..XY) table."""
    ldr = block.ldrs["XYPOINTS"]
    if ldr.value.replace(" ", "").upper() != "(XY..XY)":
        raise SpectrumFileError(path, f"unsupported XYPOINTS form {ldr.value!r}", ldr.line)
    xfactor = _number(path, block, "XFACTOR", 1.0)
    yfactor = _number(path, block, "YFACTOR", 1.0)
    values: list[float] = []
    for no, text in ldr.more:
        for item in re.split(r"[,;\s]+", text.strip()):
            if not item:
                continue
            try:
                value = float(item)
            except ValueError:
                raise SpectrumFileError(path, f"bad XYPOINTS value {item!r}", no) from None
            if not math.isfinite(value):
                raise SpectrumFileError(path, f"NaN or infinite XYPOINTS value {item!r}", no)
            values.append(value)
            if len(values) > 2 * MAX_POINTS:
                raise SpectrumFileError(path, f"more than {MAX_POINTS} points", no)
    if len(values) % 2:
        raise SpectrumFileError(path, "XYPOINTS holds an odd number of values", ldr.line)
    pairs = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    if "NPOINTS" in block.ldrs and int(_number(path, block, "NPOINTS")) != len(pairs):
        raise SpectrumFileError(
            path, f"truncated XYPOINTS: NPOINTS says otherwise, {len(pairs)} found", ldr.line
        )
    return pairs[:, 0] * xfactor, pairs[:, 1] * yfactor


def read_jcamp(path: PathLike) -> SpectrumRecord:
    """Read the first full spectrum of a JCAMP-DX file (or LINK file) as a record.

    x is converted to cm^-1 (from 1/CM, MICROMETERS or NANOMETERS) and sorted increasing.
    PEAK TABLE blocks are not spectra: a file holding only those is refused with that reason.
    """
    p = str(path)
    blocks = _blocks(p, _split_ldrs(p, read_text(path)))
    if not blocks:
        raise SpectrumFileError(p, "not JCAMP-DX: no ##TITLE= ... ##END= block")
    chosen = next((b for b in blocks if "XYDATA" in b.ldrs or "XYPOINTS" in b.ldrs), None)
    if chosen is None:
        if any("PEAKTABLE" in b.ldrs for b in blocks):
            raise SpectrumFileError(
                p, "skipped: only a PEAK TABLE (peak positions), not a full spectrum"
            )
        if any("NTUPLES" in b.ldrs for b in blocks):
            raise SpectrumFileError(p, "NTUPLES (multi-page data) is not supported")
        raise SpectrumFileError(p, "no XYDATA or XYPOINTS spectrum in the file")
    x_units = _units(p, chosen, "XUNITS", _X_UNITS)
    y_units = _units(p, chosen, "YUNITS", _Y_UNITS)
    if "XYDATA" in chosen.ldrs:
        x, y = _xydata(p, chosen)
        line = chosen.ldrs["XYDATA"].line
    else:
        x, y = _xypoints(p, chosen)
        line = chosen.ldrs["XYPOINTS"].line
    if not np.all(np.isfinite(y)):
        raise SpectrumFileError(p, "ordinates overflow to infinity", line)
    if x_units != "cm-1":
        if np.any(x <= 0):
            raise SpectrumFileError(p, "wavelengths must be positive", line)
        x = (1e4 if x_units == "um" else 1e7) / x
    if y_units == "transmittance" and 5.0 < float(np.max(y)) <= 200.0:
        y_units = "percent_transmittance"  # instruments that write %T under TRANSMITTANCE
    title = chosen.ldrs["TITLE"].value if "TITLE" in chosen.ldrs else ""
    meta = _metadata(chosen)
    meta["x_units_in_file"] = chosen.ldrs["XUNITS"].value
    return build_record(p, x, y, y_units, title, meta, line)

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
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from spectra_io import asdf
from spectra_io.errors import SpectrumFileError, warn_file
from spectra_io.record import MAX_POINTS, PathLike, SpectrumRecord, build_record
from spectra_io.textfile import TextFile

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


#: Labels the reader itself needs: always kept, whatever the metadata limit.
_KEPT = _DATA_LABELS | _NUMERIC | {"TITLE"}
#: Metadata labels kept per block; later ones are read past (their text is not kept).
MAX_META_LABELS = 256
#: Characters of one metadata value kept (its first line and continuation lines).
MAX_META_CHARS = 4096
#: LINK blocks nested deeper than this are refused.
MAX_BLOCK_DEPTH = 8
#: FIRSTY may differ from the first decoded ordinate by this fraction of the largest ordinate:
#: read with a warning (R. S. McDonald's test file jtpolysd.jdx: 0.2 %, a YFACTOR typo);
#: beyond it the file is refused (typically a YFACTOR wrong by a power of ten).
FIRSTY_TOLERANCE = 0.01
#: ... and up to this fraction it is rounding, read without a word.
_FIRSTY_ROUNDING = 1e-3
#: A line repeating the last ordinate is its Y-check when its abscissa is nearer than this
#: (in points) to the checked point, even if nearer to the next one.
_DRIFT_WINDOW = 0.95


@dataclass(slots=True)
class _Ldr:
    """One labelled data record: ``##LABEL=value`` plus (bounded) what follows it.

    A data label (XYDATA ...) keeps only the line span of its table, read in a second pass;
    a metadata label keeps at most :data:`MAX_META_CHARS` of continuation text.
    """

    label: str
    raw_label: str
    value: str
    line: int
    parts: list[str] = field(default_factory=list)
    chars: int = 0
    data_first: int | None = None
    data_last: int | None = None

    def add(self, no: int, text: str) -> None:
        """Take one continuation line (comment and blanks removed)."""
        if self.label in _DATA_LABELS:
            if self.data_first is None:
                self.data_first = no
            self.data_last = no
        elif self.label not in _KEPT and self.chars < MAX_META_CHARS:
            piece = text[: MAX_META_CHARS - self.chars]
            self.parts.append(piece)
            self.chars += len(piece)


@dataclass(slots=True)
class _Block:
    start: int
    ldrs: dict[str, _Ldr] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    meta_labels: int = 0

    def take(self, ldr: _Ldr) -> None:
        """Keep *ldr*: the caller checked it is the first of its label, within the limit."""
        if ldr.label not in _KEPT:
            self.meta_labels += 1
            ldr.value = ldr.value[:MAX_META_CHARS]
            ldr.chars = len(ldr.value)
        self.order.append(ldr.label)
        self.ldrs[ldr.label] = ldr


@dataclass
class _Scan:
    """What the first pass found: the spectrum block, and what else the file held."""

    chosen: _Block | None = None
    blocks: int = 0
    peak_table: bool = False
    ntuples: bool = False


_LABEL_CACHE: dict[str, str] = {}


def _norm_label(raw: str) -> str:
    """Label as compared by the spec: upper case, no spaces, dashes, slashes or underscores."""
    label = _LABEL_CACHE.get(raw)
    if label is None:
        label = _LABEL_NOISE.sub("", raw).upper()
        if len(_LABEL_CACHE) < 1024:
            _LABEL_CACHE[raw] = label
    return label


def _content(raw: str) -> str:
    """A line without its ``$$`` comment and surrounding blanks."""
    return (raw.partition("$$")[0] if "$$" in raw else raw).strip()


def _scan(path: str, source: TextFile) -> _Scan:
    """First pass: the block structure, the headers of the spectrum block, its table's lines.

    Keeps one finished block (the first to start that holds XYDATA or XYPOINTS) and the open
    ones; everything else is checked and dropped, so memory does not grow with the file.
    """
    scan = _Scan()
    stack: list[_Block] = []
    current: _Ldr | None = None  # the LDR continuation lines belong to (None: ignored)
    any_ldr = False
    last_ldr_line = 0
    for no, raw in source.lines():
        body = _content(raw)
        if not body:
            continue
        if not body.startswith("##"):
            if current is not None:
                current.add(no, body)
            elif not any_ldr:
                raise SpectrumFileError(path, "not JCAMP-DX: text before the first ##TITLE=", no)
            continue
        label, equals, value = body[2:].partition("=")
        if not equals:
            raise SpectrumFileError(path, f"label without '=': {body[:60]!r}", no)
        name = _norm_label(label)
        any_ldr, last_ldr_line, current = True, no, None
        if name == "TITLE":
            if len(stack) >= MAX_BLOCK_DEPTH:
                raise SpectrumFileError(path, f"blocks nested more than {MAX_BLOCK_DEPTH} deep", no)
            stack.append(_Block(no))
        elif not stack:
            raise SpectrumFileError(path, f"##{label.strip()[:60]}= outside a ##TITLE= block", no)
        if name == "END":
            _finish(scan, stack.pop())
            continue
        block = stack[-1]
        if name in block.ldrs or (name not in _KEPT and block.meta_labels >= MAX_META_LABELS):
            continue  # a repeated label, or metadata beyond the limit: its lines are ignored
        current = _Ldr(name, label.strip()[:200], value.strip(), no)
        block.take(current)
    if stack:
        raise SpectrumFileError(path, "truncated: a block has no ##END=", last_ldr_line)
    return scan


def _finish(scan: _Scan, block: _Block) -> None:
    """A block ended: keep it if it is the spectrum to read, else note what it held."""
    scan.blocks += 1
    spectrum = "XYDATA" in block.ldrs or "XYPOINTS" in block.ldrs
    if spectrum and (scan.chosen is None or block.start < scan.chosen.start):
        scan.chosen = block
    scan.peak_table = scan.peak_table or "PEAKTABLE" in block.ldrs
    scan.ntuples = scan.ntuples or "NTUPLES" in block.ldrs


def _table_lines(source: TextFile, ldr: _Ldr) -> Iterator[tuple[int, str]]:
    """Second pass: the non-blank lines of *ldr*'s table, comments and blanks removed."""
    first, last = ldr.data_first, ldr.data_last
    if first is None or last is None:
        return
    for no, raw in source.lines():
        if no < first:
            continue
        if no > last:
            return
        line = _content(raw)
        if line:
            yield no, line


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
            path, f"##{ldr.raw_label}={ldr.value[:60]!r} is not a number", ldr.line
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
        raise SpectrumFileError(path, f"##{label}={ldr.value[:60]} is not a {kind} unit", ldr.line)
    return table[key]


def _metadata(block: _Block) -> dict[str, str]:
    meta: dict[str, str] = {}
    for label in block.order:
        ldr = block.ldrs[label]
        if label in _KEPT:
            continue
        key = _META.get(label, ldr.raw_label.lstrip("$").strip().lower().replace(" ", "_"))
        value = " ".join([ldr.value, *ldr.parts]).strip()[:MAX_META_CHARS]
        if key and value:
            meta.setdefault(key, value)
    return meta


def _xydata(path: str, source: TextFile, block: _Block) -> tuple[np.ndarray, np.ndarray]:
    """Abscissae (file units, scaled) and ordinates (scaled) of an (X++(Y..Y)) table."""
    ldr = block.ldrs["XYDATA"]
    if ldr.value.replace(" ", "").upper() != "(X++(Y..Y))":
        raise SpectrumFileError(path, f"unsupported XYDATA form {ldr.value[:60]!r}", ldr.line)
    first_x = _number(path, block, "FIRSTX")
    last_x = _number(path, block, "LASTX")
    npoints_f = _number(path, block, "NPOINTS")
    xfactor = _number(path, block, "XFACTOR", 1.0)
    yfactor = _number(path, block, "YFACTOR", 1.0)
    if npoints_f != int(npoints_f) or not 2 <= npoints_f <= MAX_POINTS:
        raise SpectrumFileError(path, f"NPOINTS={npoints_f:g} outside 2..{MAX_POINTS}", ldr.line)
    npoints = int(npoints_f)
    if xfactor == 0 or yfactor == 0:
        raise SpectrumFileError(path, "XFACTOR and YFACTOR must not be 0", ldr.line)
    delta = (last_x - first_x) / (npoints - 1)
    if delta == 0:
        raise SpectrumFileError(path, "FIRSTX equals LASTX", ldr.line)
    ys: array[float] = array("d")
    prev_dif = False
    last_no = ldr.line
    for no, text in _table_lines(source, ldr):
        last_no = no
        try:
            plain = asdf.plain_affn(text, npoints - len(ys) + 1)
            if plain is not None:
                abscissa, values, ends_dif = plain
            else:
                tokens = asdf.iter_tokens(text)
                first = next(tokens, None)
                if first is None:
                    continue
                if first.kind != "abs":
                    raise ValueError("a data line needs an abscissa and at least one ordinate")
                abscissa = first.value
                values, ends_dif = asdf.expand(tokens, npoints - len(ys) + 1)
            if not values:
                raise ValueError("a data line needs an abscissa and at least one ordinate")
        except asdf.TooManyValues as err:
            reason = str(err) if err.dup else f"more ordinates than NPOINTS={npoints}"
            raise SpectrumFileError(path, reason, no) from None
        except ValueError as err:
            raise SpectrumFileError(path, f"bad XYDATA line: {err}", no) from None
        index = len(ys)
        expected = (abscissa * xfactor - first_x) / delta
        if prev_dif and ys and _is_y_check(expected, index, values[0], ys[-1]):
            check = values.pop(0)
            if abs(check - ys[-1]) > 1e-9 * max(1.0, abs(check)):
                if values or index != npoints or check != 0:
                    raise SpectrumFileError(
                        path, f"Y-check failed: line starts with {check:g}, expected {ys[-1]:g}", no
                    )
                # a closing line of abscissa and 0 only: a placeholder where the Y-check value
                # belongs (jcamp-dx.org's SPECFILE.DX); the table itself is complete
                warn_file(
                    path, f"closing Y-check line holds 0, the last ordinate is {ys[-1]:g}", no
                )
            index -= 1
        if abs(expected - index) > 1.0:
            raise SpectrumFileError(
                path, f"X-check failed: abscissa {abscissa:g} is not point {index}", no
            )
        ys.extend(values)
        if len(ys) > npoints:
            raise SpectrumFileError(path, f"more ordinates than NPOINTS={npoints}", no)
        prev_dif = ends_dif
    if len(ys) != npoints:
        raise SpectrumFileError(
            path, f"truncated XYDATA: NPOINTS={npoints} but {len(ys)} ordinates found", last_no
        )
    y = np.frombuffer(ys, dtype=np.float64) * yfactor
    if "FIRSTY" in block.ldrs:
        _check_first_y(path, block, y, yfactor)
    x = first_x + np.arange(npoints, dtype=np.float64) * delta
    return x, y


def _is_y_check(expected: float, index: int, first: float, last: float) -> bool:
    """Whether a line after a DIF line starts with the Y-check (the last ordinate repeated).

    The spec asks for it; some writers leave it out. The abscissa tells which: the check
    is point ``index - 1``, a new value point ``index``. Writers whose abscissae drift from
    the FIRSTX/LASTX grid (jcamp-dx.org's SPECFILE.DX, by up to a point) are recognised by
    the value itself: it repeats the last ordinate and the abscissa is within a point of it.
    """
    at_check = abs(expected - (index - 1))
    if at_check <= abs(expected - index):
        return True
    return at_check < _DRIFT_WINDOW and abs(first - last) <= 1e-9 * max(1.0, abs(first))


def _check_first_y(path: str, block: _Block, y: np.ndarray, yfactor: float) -> None:
    """FIRSTY against the first ordinate.

    Silent within rounding (0.1 % of the largest ordinate); a warning within
    :data:`FIRSTY_TOLERANCE` of the two values themselves; refused beyond.
    """
    first_y = _number(path, block, "FIRSTY")
    line = block.ldrs["FIRSTY"].line
    y0 = float(y[0])
    off = abs(first_y - y0)
    if off <= _FIRSTY_ROUNDING * float(np.max(np.abs(y))) + abs(yfactor):
        return
    if off <= FIRSTY_TOLERANCE * max(abs(first_y), abs(y0)):
        warn_file(
            path,
            f"FIRSTY={first_y:g} but the first ordinate is {y0:g} "
            f"({off / max(abs(first_y), abs(y0)):.2%} apart: YFACTOR slightly off?)",
            line,
        )
        return
    raise SpectrumFileError(
        path, f"FIRSTY={first_y:g} but the first ordinate is {y0:g} (wrong YFACTOR?)", line
    )


_XY_VALUE = re.compile(r"[^,;\s]+")


def _xypoints(path: str, source: TextFile, block: _Block) -> tuple[np.ndarray, np.ndarray]:
    """Abscissae and ordinates (scaled) of an (XY..XY) table."""
    ldr = block.ldrs["XYPOINTS"]
    if ldr.value.replace(" ", "").upper() != "(XY..XY)":
        raise SpectrumFileError(path, f"unsupported XYPOINTS form {ldr.value[:60]!r}", ldr.line)
    xfactor = _number(path, block, "XFACTOR", 1.0)
    yfactor = _number(path, block, "YFACTOR", 1.0)
    values: array[float] = array("d")
    for no, text in _table_lines(source, ldr):
        for match in _XY_VALUE.finditer(text):
            item = match.group()
            try:
                value = float(item)
            except ValueError:
                raise SpectrumFileError(path, f"bad XYPOINTS value {item[:40]!r}", no) from None
            if not math.isfinite(value):
                raise SpectrumFileError(path, f"NaN or infinite XYPOINTS value {item!r}", no)
            if len(values) >= 2 * MAX_POINTS:
                raise SpectrumFileError(path, f"more than {MAX_POINTS} points", no)
            values.append(value)
    if len(values) % 2:
        raise SpectrumFileError(path, "XYPOINTS holds an odd number of values", ldr.line)
    pairs = np.frombuffer(values, dtype=np.float64).reshape(-1, 2)
    if "NPOINTS" in block.ldrs and int(_number(path, block, "NPOINTS")) != len(pairs):
        raise SpectrumFileError(
            path, f"truncated XYPOINTS: NPOINTS says otherwise, {len(pairs)} found", ldr.line
        )
    return pairs[:, 0] * xfactor, pairs[:, 1] * yfactor


def read_jcamp(path: PathLike) -> SpectrumRecord:
    """Read the first full spectrum of a JCAMP-DX file (or LINK file) as a record.

    x is converted to cm^-1 (from 1/CM, MICROMETERS or NANOMETERS) and sorted increasing.
    PEAK TABLE blocks are not spectra: a file holding only those is refused with that reason.
    The file is read twice, line by line (structure and headers, then the one table), so
    memory is bounded by the spectrum, not by the file. Deviations within a tolerance (FIRSTY,
    a closing Y-check line) are read with a :class:`~spectra_io.errors.SpectrumFileWarning`.
    """
    p = str(path)
    source = TextFile(path)
    scan = _scan(p, source)
    if not scan.blocks:
        raise SpectrumFileError(p, "not JCAMP-DX: no ##TITLE= ... ##END= block")
    chosen = scan.chosen
    if chosen is None:
        if scan.peak_table:
            raise SpectrumFileError(
                p, "skipped: only a PEAK TABLE (peak positions), not a full spectrum"
            )
        if scan.ntuples:
            raise SpectrumFileError(p, "NTUPLES (multi-page data) is not supported")
        raise SpectrumFileError(p, "no XYDATA or XYPOINTS spectrum in the file")
    x_units = _units(p, chosen, "XUNITS", _X_UNITS)
    y_units = _units(p, chosen, "YUNITS", _Y_UNITS)
    if "XYDATA" in chosen.ldrs:
        x, y = _xydata(p, source, chosen)
        line = chosen.ldrs["XYDATA"].line
    else:
        x, y = _xypoints(p, source, chosen)
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

"""JSON spectrum records in the format of the ENFSI ATR set (``../shared/data/enfsi-atr``).

One object or a list of objects::

    {"name": "...", "aliases": [...], "formula": "...", "category": "...", "form": "HCl",
     "inchikey": "...", "spectrum": {"firstX": 401.1, "lastX": 3999.6, "y": [...]}}

``y`` is percent transmittance at evenly spaced wavenumbers from firstX to lastX (cm^-1).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from spectra_io.errors import SpectrumFileError
from spectra_io.record import MAX_POINTS, PathLike, SpectrumRecord, build_record, read_text

#: Top-level fields that are data, not metadata.
_NOT_METADATA = frozenset({"spectrum"})
#: JSON files larger than this are refused (a 1,000,000-point record is about 10 MB).
MAX_JSON_BYTES = 16 * 1024 * 1024
#: Keys (and, separately, lists and objects) in one file: a record has about twenty.
MAX_JSON_KEYS = 100_000
#: Values in one file (array items and members): the point limit and some metadata.
MAX_JSON_ITEMS = MAX_POINTS + 100_000
#: Nesting levels (a list of records holding a spectrum holding y is four).
MAX_JSON_DEPTH = 16
#: Characters of one number (a float needs at most about 25).
MAX_NUMBER_CHARS = 100
#: Characters of one metadata value kept.
MAX_META_CHARS = 4096

_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_LONG_NUMBER = re.compile(rf"[-+0-9.eE]{{{MAX_NUMBER_CHARS + 1},}}")


def _snake(key: str) -> str:
    """camelCase JSON field name -> snake_case metadata key (``firstX`` -> ``first_x``)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def _text(value: Any) -> str:
    if isinstance(value, list):
        text = "; ".join(str(v) for v in value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return text[:MAX_META_CHARS]


def _record(path: str, index: int, obj: Any) -> SpectrumRecord:
    where = f"record {index}"
    if not isinstance(obj, dict):
        raise SpectrumFileError(path, f"{where} is not a JSON object")
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SpectrumFileError(path, f"{where} has no 'name'")
    where = f"record {index} ({name})"
    spectrum = obj.get("spectrum")
    if not isinstance(spectrum, dict):
        raise SpectrumFileError(path, f"{where} has no 'spectrum' object")
    first, last, y = spectrum.get("firstX"), spectrum.get("lastX"), spectrum.get("y")
    numbers = (int, float)
    if not all(isinstance(v, numbers) and not isinstance(v, bool) for v in (first, last)):
        raise SpectrumFileError(path, f"{where}: firstX/lastX must be numbers")
    assert isinstance(first, numbers) and isinstance(last, numbers)
    if not math.isfinite(first) or not math.isfinite(last) or last <= first:
        raise SpectrumFileError(path, f"{where}: need finite firstX < lastX")
    if not isinstance(y, list) or not 2 <= len(y) <= MAX_POINTS:
        raise SpectrumFileError(path, f"{where}: 'y' must be a list of 2..{MAX_POINTS} values")
    if not all(isinstance(v, numbers) and not isinstance(v, bool) for v in y):
        raise SpectrumFileError(path, f"{where}: 'y' holds a non-numeric value")
    meta = {
        _snake(key): _text(value)
        for key, value in obj.items()
        if key not in _NOT_METADATA and value is not None and not isinstance(value, dict)
    }
    x = np.linspace(float(first), float(last), len(y))
    try:
        return build_record(path, x, y, "percent_transmittance", name, meta)
    except SpectrumFileError as err:
        raise SpectrumFileError(path, f"{where}: {err.reason}") from err


def _precheck(path: str, text: str) -> None:
    """Refuse, before parsing, JSON whose shape would cost far more memory than its size.

    Counts are taken on the raw text (a colon or comma inside a string counts too: an upper
    bound, at C speed, allocating nothing); nesting is measured outside strings.
    """
    keys, items = text.count(":"), text.count(",") + 1
    containers = text.count("[") + text.count("{")
    if keys > MAX_JSON_KEYS:
        raise SpectrumFileError(
            path, f"JSON with {keys} keys, more than the limit of {MAX_JSON_KEYS}"
        )
    if items > MAX_JSON_ITEMS:
        raise SpectrumFileError(
            path, f"JSON with {items} values, more than the limit of {MAX_JSON_ITEMS}"
        )
    if containers > MAX_JSON_KEYS:
        raise SpectrumFileError(
            path, f"JSON with {containers} lists and objects, more than {MAX_JSON_KEYS}"
        )
    long_number = _LONG_NUMBER.search(text)
    if long_number:
        raise SpectrumFileError(
            path,
            f"a number of {len(long_number.group())} characters (at most {MAX_NUMBER_CHARS}): "
            "not a spectrum value",
        )
    if containers <= MAX_JSON_DEPTH:
        return
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise SpectrumFileError(path, f"JSON nested more than {MAX_JSON_DEPTH} deep")
        elif bracket in "]}":
            depth -= 1


def read_json_records(path: PathLike) -> list[SpectrumRecord]:
    """All records of a JSON file (one object or a list); the first bad record raises.

    Pre-checked before parsing: at most :data:`MAX_JSON_BYTES`, :data:`MAX_JSON_KEYS` keys,
    :data:`MAX_JSON_ITEMS` values, :data:`MAX_JSON_DEPTH` levels, numbers of at most
    :data:`MAX_NUMBER_CHARS` characters.
    """
    p = str(path)
    text = read_text(path, MAX_JSON_BYTES)
    _precheck(p, text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpectrumFileError(p, f"invalid JSON: {err.msg}", err.lineno) from err
    except RecursionError as err:
        raise SpectrumFileError(p, "JSON nested too deeply") from err
    except ValueError as err:  # e.g. an integer beyond Python's digit limit
        raise SpectrumFileError(p, f"invalid JSON: {err}") from err
    del text
    items = data if isinstance(data, list) else [data]
    if not items:
        raise SpectrumFileError(p, "no records in the file")
    return [_record(p, i, obj) for i, obj in enumerate(items)]

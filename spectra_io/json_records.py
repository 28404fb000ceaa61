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


def _snake(key: str) -> str:
    """camelCase JSON field name -> snake_case metadata key (``firstX`` -> ``first_x``)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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


def read_json_records(path: PathLike) -> list[SpectrumRecord]:
    """All records of a JSON file (one object or a list); the first bad record raises."""
    p = str(path)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise SpectrumFileError(p, f"invalid JSON: {err.msg}", err.lineno) from err
    except RecursionError as err:
        raise SpectrumFileError(p, "JSON nested too deeply") from err
    items = data if isinstance(data, list) else [data]
    if not items:
        raise SpectrumFileError(p, "no records in the file")
    return [_record(p, i, obj) for i, obj in enumerate(items)]

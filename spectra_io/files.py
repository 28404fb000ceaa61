"""Read any supported spectrum file, write JCAMP-DX or CSV: the format chosen by extension."""

from __future__ import annotations

from pathlib import Path

from spectra_io.csv_io import read_csv, write_csv
from spectra_io.errors import SpectrumFileError
from spectra_io.jcamp_read import read_jcamp
from spectra_io.jcamp_write import write_jcamp
from spectra_io.json_records import read_json_records
from spectra_io.record import PathLike, SpectrumRecord
from spectra_io.textfile import TextFile

JCAMP_EXTENSIONS = frozenset({".jdx", ".dx", ".jcamp", ".jcm"})
CSV_EXTENSIONS = frozenset({".csv", ".tsv", ".txt"})


def _sniff(path: PathLike) -> str:
    """'jcamp', 'json' or 'csv' from the first non-blank characters of the file."""
    head = ""
    for _, line in TextFile(path).lines():  # checked, then only the first lines read
        head = line.lstrip("\ufeff \t\r\n")[:2]
        if head:
            break
    if head.startswith("##"):
        return "jcamp"
    if head[:1] in "{[":
        return "json"
    return "csv"


def read_spectrum(path: PathLike) -> SpectrumRecord:
    """Read one spectrum, choosing the reader by extension, else by content.

    A JSON file must hold exactly one record here; use :func:`read_json_records` for lists.
    """
    suffix = Path(path).suffix.lower()
    if suffix in JCAMP_EXTENSIONS:
        kind = "jcamp"
    elif suffix == ".json":
        kind = "json"
    elif suffix in CSV_EXTENSIONS:
        kind = "csv"
    else:
        kind = _sniff(path)
    if kind == "jcamp":
        return read_jcamp(path)
    if kind == "csv":
        return read_csv(path)
    records = read_json_records(path)
    if len(records) != 1:
        raise SpectrumFileError(
            str(path), f"holds {len(records)} records; read it with read_json_records"
        )
    return records[0]


def write_spectrum(path: PathLike, record: SpectrumRecord) -> None:
    """Write ``record`` as JCAMP-DX (.jdx/.dx/.jcamp) or CSV (.csv), by extension."""
    suffix = Path(path).suffix.lower()
    if suffix in JCAMP_EXTENSIONS:
        write_jcamp(path, record)
    elif suffix == ".csv":
        write_csv(path, record)
    else:
        raise SpectrumFileError(
            str(path), f"unknown extension {suffix!r}: use .jdx, .dx, .jcamp or .csv"
        )

"""Spectrum files: JCAMP-DX, CSV and JSON records in, JCAMP-DX and CSV out.

Every reader returns :class:`SpectrumRecord` (x in cm^-1, increasing) or raises
:class:`~spectra_io.errors.SpectrumFileError` with the file, the line when known, and the reason.

>>> rec = read_spectrum("tests/data/jcamp/affn_absorbance.jdx")  # doctest: +SKIP
>>> write_spectrum("copy.csv", rec)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spectra_io.errors import SpectrumFileError, SpectrumFileWarning
from spectra_io.lazy import lazy_exports

if TYPE_CHECKING:
    from spectra_io.csv_io import csv_text, read_csv, write_csv
    from spectra_io.files import JCAMP_EXTENSIONS, read_spectrum, write_spectrum
    from spectra_io.jcamp_read import read_jcamp
    from spectra_io.jcamp_write import jcamp_text, write_jcamp
    from spectra_io.json_records import read_json_records
    from spectra_io.record import (
        MAX_FILE_BYTES,
        MAX_POINTS,
        Y_UNITS,
        PathLike,
        SpectrumRecord,
        read_text,
    )

#: Exported name -> the module that defines it. They load on first use, so that reaching
#: the exception root (:mod:`spectra_io.errors`) from a command line does not load numpy.
_EXPORTS = {
    "JCAMP_EXTENSIONS": "spectra_io.files",
    "read_spectrum": "spectra_io.files",
    "write_spectrum": "spectra_io.files",
    "csv_text": "spectra_io.csv_io",
    "read_csv": "spectra_io.csv_io",
    "write_csv": "spectra_io.csv_io",
    "read_jcamp": "spectra_io.jcamp_read",
    "jcamp_text": "spectra_io.jcamp_write",
    "write_jcamp": "spectra_io.jcamp_write",
    "read_json_records": "spectra_io.json_records",
    "MAX_FILE_BYTES": "spectra_io.record",
    "MAX_POINTS": "spectra_io.record",
    "Y_UNITS": "spectra_io.record",
    "PathLike": "spectra_io.record",
    "SpectrumRecord": "spectra_io.record",
    "read_text": "spectra_io.record",
}

__all__ = [
    "JCAMP_EXTENSIONS",
    "MAX_FILE_BYTES",
    "MAX_POINTS",
    "Y_UNITS",
    "PathLike",
    "SpectrumFileError",
    "SpectrumFileWarning",
    "SpectrumRecord",
    "csv_text",
    "jcamp_text",
    "read_csv",
    "read_jcamp",
    "read_json_records",
    "read_spectrum",
    "read_text",
    "write_csv",
    "write_jcamp",
    "write_spectrum",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

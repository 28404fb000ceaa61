"""The reference library: on-disk format, categories and severities, import from files.

Most callers need only :func:`load_library` (``None`` loads the shipped starter library)::

    lib = load_library()
    grid, absorbance = lib.absorbance("cocaine HCl")
    lib.entries[lib.index("cocaine hydrochloride")].severity  # "alarm" (an alias works too)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.library.categories import (
    CATEGORY_SEVERITY,
    Category,
    NarcoticFamily,
    Severity,
    map_enfsi_category,
    max_severity,
    parse_category,
    severity_of,
)
from spectra_io.lazy import lazy_exports

if TYPE_CHECKING:
    from edge.library.format import (
        FORMAT_VERSION,
        MODELS_ENV,
        Library,
        LibraryEntry,
        default_library_path,
        load_library,
        save_library,
    )

__all__ = [
    "CATEGORY_SEVERITY",
    "FORMAT_VERSION",
    "MODELS_ENV",
    "Category",
    "Library",
    "LibraryEntry",
    "NarcoticFamily",
    "Severity",
    "default_library_path",
    "load_library",
    "map_enfsi_category",
    "max_severity",
    "parse_category",
    "save_library",
    "severity_of",
]

# the format (numpy) loads on first use: the categories alone are enough for a CLI's --help
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        name: "edge.library.format"
        for name in (
            "FORMAT_VERSION",
            "MODELS_ENV",
            "Library",
            "LibraryEntry",
            "default_library_path",
            "load_library",
            "save_library",
        )
    },
)

"""The reference library: on-disk format, categories and severities, import from files.

Most callers need only :func:`load_library` (``None`` loads the shipped starter library)::

    lib = load_library()
    grid, absorbance = lib.absorbance("cocaine HCl")
    lib.entries[lib.index("cocaine hydrochloride")].severity  # "alarm" (an alias works too)
"""

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

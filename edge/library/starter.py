"""Build the starter library from the band tables in ``models/library-src``.

``library.toml`` holds the library's name, version, created time and description; every
other ``*.toml`` holds ``[[substance]]`` band tables (see
:func:`edge.library.bands.parse_band_table`).
Files are read in name order and substances in file order, so the result is deterministic.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.errors import LibraryError
from edge.library.bands import parse_band_table
from edge.library.format import Library, LibraryEntry
from edge.preprocess.grid import STANDARD_GRID


@dataclass(frozen=True)
class StarterBuild:
    """The built starter library, ready for :func:`edge.library.save_library`."""

    grid: npt.NDArray[np.float64]
    spectra: npt.NDArray[np.float32]
    entries: list[LibraryEntry]
    name: str
    version: str
    created: str
    description: str

    @property
    def content_hash(self) -> str:
        """The content sha256 the written library will carry."""
        return Library(self.grid, self.spectra, self.entries).content_hash


def build_starter(src: Path) -> StarterBuild:
    """Synthesise every substance of the band tables in *src* on the standard grid.

    Raises :class:`LibraryError` naming the file and substance of any bad table.
    """
    try:
        header = tomllib.loads((src / "library.toml").read_text())["library"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as err:
        raise LibraryError(f"{src / 'library.toml'}: {err}") from err
    grid = STANDARD_GRID.copy()
    entries: list[LibraryEntry] = []
    rows: list[npt.NDArray[np.float64]] = []
    for path in sorted(src.glob("*.toml")):
        if path.name == "library.toml":
            continue
        try:
            substances = parse_band_table(tomllib.loads(path.read_text()), path.name)
        except (OSError, ValueError) as err:
            raise LibraryError(f"{path}: {err}") from err
        for s in substances:
            meta = dict(s.meta)
            name = meta.pop("name")
            category = meta.pop("category")
            family = meta.pop("family", None)
            entries.append(
                LibraryEntry.create(
                    name, category, family, valid_range=(float(grid[0]), float(grid[-1])), **meta
                )
            )
            rows.append(s.absorbance(grid))
    if not entries:
        raise LibraryError(f"{src}: no substances in the band tables")
    spectra = np.asarray(np.vstack(rows), dtype=np.float32)
    return StarterBuild(
        grid=grid,
        spectra=spectra,
        entries=entries,
        name=str(header.get("name", "starter")),
        version=str(header["version"]),
        created=str(header["created"]),
        description=str(header.get("description", "")),
    )

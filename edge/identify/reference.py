"""A library prepared for search: preprocessed once, cached in memory and optionally on disk.

The preprocessed matrix depends only on the library content and the preprocessing spec, so
the disk cache is keyed by ``library.content_hash`` and :func:`spec_hash`; a stale or corrupt
cache file is ignored and rebuilt.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.identify.search import SearchIndex
from edge.library import Library
from edge.preprocess.pipeline import Spec, preprocess_many, spec_grid, spec_hash, validate_spec

log = logging.getLogger(__name__)

_MEMORY: dict[tuple[str, str], tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]] = {}


def entry_masks(library: Library) -> npt.NDArray[np.bool_]:
    """Per-entry mask of library grid points that carry data (``valid_range``, else non-zero)."""
    grid = library.grid
    masks = np.ones((len(library), grid.size), dtype=bool)
    for i, e in enumerate(library.entries):
        if e.valid_range is not None:
            lo, hi = e.valid_range
            masks[i] = (grid >= lo) & (grid <= hi)
    return masks


def _cache_file(cache_dir: Path, library: Library, spec: Spec) -> Path:
    return cache_dir / f"prep-{library.content_hash[:24]}-{spec_hash(spec)}.npz"


def preprocess_library(
    library: Library, spec: Spec, cache_dir: Path | None = None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """The library's preprocessed matrix and masks (from memory, disk cache, or computed)."""
    key = (library.content_hash, spec_hash(spec))
    if key in _MEMORY:
        return _MEMORY[key]
    path = _cache_file(cache_dir, library, spec) if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                mat, masks = z["matrix"], z["masks"]
            if mat.shape == (len(library), spec_grid(spec).size):
                _MEMORY[key] = (mat, masks)
                return mat, masks
        except (OSError, ValueError, KeyError) as err:
            log.warning("ignoring unreadable preprocessing cache %s: %s", path, err)
    mat, masks = preprocess_many(library.grid, library.spectra, spec, entry_masks(library))
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, matrix=mat, masks=masks)
            os.replace(tmp, path)
        except OSError as err:
            log.warning("cannot write preprocessing cache %s: %s", path, err)
    _MEMORY[key] = (mat, masks)
    return mat, masks


class PreparedLibrary:
    """A library with its preprocessing spec, preprocessed matrix and search index."""

    def __init__(
        self,
        library: Library,
        spec: Spec | None = None,
        cache_dir: Path | None = None,
        **index_options: Any,
    ) -> None:
        self.library = library
        self.spec = validate_spec(spec or {})
        self.grid = spec_grid(self.spec)
        matrix, self.masks = preprocess_library(library, self.spec, cache_dir)
        self.index = SearchIndex(matrix, **index_options)

    def __len__(self) -> int:
        return len(self.library)

    @property
    def matrix(self) -> npt.NDArray[np.float32]:
        """Preprocessed library rows (float32, unit vectors)."""
        return self.index.matrix


def clear_memory_cache() -> None:
    """Forget preprocessed libraries held in memory (tests, library updates)."""
    _MEMORY.clear()

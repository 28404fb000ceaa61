"""A library prepared for search: preprocessed once, cached in memory and optionally on disk.

The preprocessed matrix depends only on the library content and the preprocessing spec, so
the disk cache is keyed by ``library.content_hash`` and :func:`spec_hash`; a stale or corrupt
cache file is ignored and rebuilt.
"""

from __future__ import annotations

import io
import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.identify.search import SearchIndex
from edge.library import Library
from edge.preprocess.chain import Spec, preprocess_many, spec_grid, spec_hash, validate_spec
from edge.preprocess.spectral import normalise
from spectra_io.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

#: Recently prepared libraries (LRU, a few entries: evaluation prepares many subsets).
_MEMORY: OrderedDict[tuple[str, str], npt.NDArray[np.float32]] = OrderedDict()
_MEMORY_ENTRIES = 4


def _remember(key: tuple[str, str], mat: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    _MEMORY[key] = mat
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > _MEMORY_ENTRIES:
        _MEMORY.popitem(last=False)
    return mat


def entry_masks(library: Library) -> npt.NDArray[np.bool_]:
    """Per-entry mask of library grid points that carry data (``valid_range``, else all)."""
    grid = library.grid
    masks = np.ones((len(library), grid.size), dtype=bool)
    for i, e in enumerate(library.entries):
        if e.valid_range is not None:
            lo, hi = e.valid_range
            masks[i] = (grid >= lo) & (grid <= hi)
    return masks


#: Every SEARCH_STRIDE-th point of the preprocessed vector is searched when the spec smooths
#: enough for it: a first derivative over 11 or more points leaves no detail finer than the
#: 2-point spacing, so halving the vectors halves memory and matrix-vector time without losing
#: information. Sharper specs (the default second derivative over 9 points) search every point.
SEARCH_STRIDE = 2


#: Library entries whose searched vectors correlate at least this much are spectral twins.
TWIN_R = 0.98


def search_stride(spec: Spec) -> int:
    """Points between searched points for *spec* (see :data:`SEARCH_STRIDE`)."""
    sm = validate_spec(spec)["smoothing"]
    if sm is not None and int(sm["window"]) >= 11 and int(sm["deriv"]) <= 1:
        return SEARCH_STRIDE
    return 1


def _cache_file(cache_dir: Path, library: Library, spec: Spec, stride: int) -> Path:
    return cache_dir / f"prep-{library.content_hash[:24]}-{spec_hash(spec)}-s{stride}.npy"


def reduce_vector(
    vector: npt.NDArray[np.floating[Any]], keep: npt.NDArray[np.bool_], stride: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """A preprocessed vector as the search sees it: every *stride*-th point, renormalised."""
    k = np.asarray(keep, dtype=bool)[::stride]
    return normalise(np.asarray(vector, dtype=np.float64)[::stride], "vector", k), k


def preprocess_library(
    library: Library, spec: Spec, cache_dir: Path | None = None, stride: int = 1
) -> npt.NDArray[np.float32]:
    """The library's preprocessed search matrix (from memory, the disk cache, or computed).

    Rows are the preprocessed vectors reduced by :func:`reduce_vector`. The disk cache is a
    plain ``.npy`` file opened memory-mapped, so a large library's matrix is paged in by the
    OS rather than copied into the heap.
    """
    key = (library.content_hash, f"{spec_hash(spec)}-s{stride}")
    if key in _MEMORY:
        return _remember(key, _MEMORY[key])
    n_points = spec_grid(spec)[::stride].size
    path = _cache_file(cache_dir, library, spec, stride) if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            mat = np.load(path, mmap_mode="r", allow_pickle=False)
            if mat.shape == (len(library), n_points) and mat.dtype == np.float32:
                return _remember(key, mat)
            log.warning("preprocessing cache %s has the wrong shape; rebuilding", path)
        except (OSError, ValueError) as err:
            log.warning("ignoring unreadable preprocessing cache %s: %s", path, err)
    full, masks = preprocess_many(library.grid, library.spectra, spec, entry_masks(library))
    mat = np.empty((full.shape[0], n_points), dtype=np.float32)
    for i in range(full.shape[0]):
        mat[i] = reduce_vector(full[i], masks[i], stride)[0]
    del full, masks
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            np.save(buf, mat, allow_pickle=False)
            atomic_write_bytes(path, buf.getvalue())
        except OSError as err:
            log.warning("cannot write preprocessing cache %s: %s", path, err)
    return _remember(key, mat)


class PreparedLibrary:
    """A library with its preprocessing spec, preprocessed matrix and search index."""

    def __init__(
        self,
        library: Library,
        spec: Spec | None = None,
        cache_dir: Path | None = None,
        stride: int | None = None,
        **index_options: Any,
    ) -> None:
        self.library = library
        self.spec = validate_spec(spec or {})
        self.grid = spec_grid(self.spec)
        self.stride = int(stride) if stride is not None else search_stride(self.spec)
        matrix = preprocess_library(library, self.spec, cache_dir, self.stride)
        self.index = SearchIndex(matrix, **index_options)

    def subset(self, rows: Sequence[int]) -> PreparedLibrary:
        """The same prepared library restricted to *rows* (no preprocessing again)."""
        idx = [int(r) for r in rows]
        out = object.__new__(PreparedLibrary)
        out.library = self.library.subset(idx)
        out.spec, out.grid, out.stride = self.spec, self.grid, self.stride
        out.index = SearchIndex(np.asarray(self.index.matrix[idx], dtype=np.float32))
        return out

    def reduce(
        self, vector: npt.NDArray[np.floating[Any]], keep: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """A query's preprocessed vector and mask as this library's search uses them."""
        return reduce_vector(vector, keep, self.stride)

    def twins(self, row: int, min_r: float = TWIN_R) -> frozenset[int]:
        """Rows whose library spectra correlate with *row*'s by at least *min_r* (itself
        excluded): entries no instrument can tell apart from it (a substance held twice, or
        spectral twins such as polyethylene and a polyethylene fibre)."""
        cache: dict[tuple[int, float], frozenset[int]] = self.__dict__.setdefault("_twins", {})
        hit = cache.get((row, min_r))
        if hit is None:
            v = np.asarray(self.index.matrix[row], dtype=np.float32)
            sims = self.index.matrix @ v
            hit = frozenset(int(i) for i in np.flatnonzero(sims >= min_r) if int(i) != row)
            if len(cache) >= 4096:
                cache.clear()
            cache[(row, min_r)] = hit
        return hit

    def __len__(self) -> int:
        return len(self.library)

    @property
    def matrix(self) -> npt.NDArray[np.float32]:
        """Library rows as searched (float32, unit vectors, every ``stride``-th point)."""
        return self.index.matrix


def clear_memory_cache() -> None:
    """Forget preprocessed libraries held in memory (tests, library updates)."""
    _MEMORY.clear()

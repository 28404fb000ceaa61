"""The preprocessed library: computed once, cached in memory and on disk (memory-mapped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from identify_helpers import synthetic_library

from edge.identify import reference
from edge.identify.reference import PreparedLibrary, clear_memory_cache, preprocess_library
from edge.preprocess.chain import DEFAULT_SPEC, preprocess_with_mask


def test_disk_cache_is_reused_and_keyed_by_spec(tmp_path: Path, monkeypatch) -> None:
    lib = synthetic_library(12, seed=3)
    clear_memory_cache()
    first = preprocess_library(lib, DEFAULT_SPEC, tmp_path, 2)
    files = list(tmp_path.glob("prep-*.npy"))
    assert len(files) == 1
    clear_memory_cache()
    calls = []
    monkeypatch.setattr(reference, "preprocess_many", lambda *a, **k: calls.append(1))
    again = preprocess_library(lib, DEFAULT_SPEC, tmp_path, 2)
    assert not calls and isinstance(again, np.memmap)
    assert np.array_equal(np.asarray(again), first)
    monkeypatch.undo()
    other = preprocess_library(lib, {"normalise": "snv"}, tmp_path, 2)
    assert len(list(tmp_path.glob("prep-*.npy"))) == 2 and not np.array_equal(other, first)


def test_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    lib = synthetic_library(6, seed=4)
    clear_memory_cache()
    preprocess_library(lib, DEFAULT_SPEC, tmp_path, 2)
    (path,) = tmp_path.glob("prep-*.npy")
    path.write_bytes(b"garbage")
    clear_memory_cache()
    mat = preprocess_library(lib, DEFAULT_SPEC, tmp_path, 2)
    assert mat.shape == (6, lib.grid[::2].size)


def test_prepared_rows_match_single_preprocessing() -> None:
    lib = synthetic_library(5, seed=6)
    prep = PreparedLibrary(lib)
    v, keep = preprocess_with_mask(lib.grid, np.asarray(lib.spectra[2], float), DEFAULT_SPEC)
    row, _ = prep.reduce(v, keep)
    assert prep.stride == 1 and np.allclose(prep.matrix[2], row, atol=1e-6)  # 2nd derivative
    assert np.isclose(np.linalg.norm(row), 1.0)

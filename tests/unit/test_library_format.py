"""Library format: round trip, memmap, hash verification, atomic write, lookups."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edge.errors import LibraryError
from edge.library import Library, LibraryEntry, load_library, save_library
from edge.library.format import ENTRIES, MANIFEST, SPECTRA
from edge.preprocess.grid import STANDARD_GRID


def _entries() -> list[LibraryEntry]:
    return [
        LibraryEntry.create(
            "Cocaine HCl", "narcotic", "stimulant", aliases=("coke",), cas="53-21-4"
        ),
        LibraryEntry.create("Caffeine", "cutting_agent", notes="xanthine"),
        LibraryEntry.create("TNT", "explosive", "nitroaromatic", valid_range=(700.0, 3900.0)),
    ]


def _spectra(n: int = 3) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.random((n, STANDARD_GRID.size)).astype(np.float32)


def _write(tmp_path: Path) -> tuple[Path, np.ndarray, str]:
    lib = tmp_path / "lib"
    spectra = _spectra()
    digest = save_library(lib, STANDARD_GRID, spectra, _entries(), name="t", version="3")
    return lib, spectra, digest


def test_round_trip_preserves_spectra_entries_and_metadata(tmp_path: Path) -> None:
    lib_dir, spectra, digest = _write(tmp_path)
    lib = load_library(lib_dir)
    assert isinstance(lib.spectra, np.memmap)
    assert lib.spectra.dtype == np.float32
    np.testing.assert_array_equal(lib.spectra, spectra)
    np.testing.assert_allclose(lib.grid, STANDARD_GRID)
    assert lib.entries == _entries()
    assert lib.content_hash == digest
    assert (lib.name, lib.version) == ("t", "3")
    manifest = json.loads((lib_dir / MANIFEST).read_text())
    assert manifest["entries"] == 3
    assert manifest["grid"] == {
        "start": 650.0,
        "stop": 3998.0,
        "step": 4.0,
        "points": 838,
        "unit": "1/cm",
    }
    assert manifest["content_sha256"] == digest


def test_severity_derived_from_category(tmp_path: Path) -> None:
    lib = load_library(_write(tmp_path)[0])
    assert [e.severity for e in lib.entries] == ["alarm", "info", "alarm"]
    assert lib.substance(0).severity == "alarm" and lib.substance(0).cas == "53-21-4"


def test_lookup_by_name_and_alias_case_insensitive(tmp_path: Path) -> None:
    lib = load_library(_write(tmp_path)[0])
    assert lib.index("cocaine hcl") == 0
    assert lib.index("COKE") == 0
    assert lib.index(" tnt ") == 2
    assert "caffeine" in lib and "heroin" not in lib
    with pytest.raises(LibraryError, match="heroin"):
        lib.index("heroin")
    grid, a = lib.absorbance("tnt")
    assert grid.size == a.size == 838
    a[:] = 0  # a copy: the library is untouched
    assert lib.spectra[2].max() > 0


def test_subset_with_entry_without(tmp_path: Path) -> None:
    lib = load_library(_write(tmp_path)[0])
    sub = lib.subset([2, 0])
    assert sub.names() == ["TNT", "Cocaine HCl"]
    np.testing.assert_array_equal(sub.spectra[1], lib.spectra[0])
    assert sub.content_hash != lib.content_hash
    added = lib.with_entry(LibraryEntry.create("Sucrose", "cutting_agent"), np.ones(838))
    assert len(added) == 4 and added.index("sucrose") == 3
    with pytest.raises(LibraryError, match="already"):
        added.with_entry(LibraryEntry.create("sucrose", "benign"), np.ones(838))
    assert lib.without("coke").names() == ["Caffeine", "TNT"]


def test_content_hash_is_stable_and_ignores_created_time(tmp_path: Path) -> None:
    a = save_library(tmp_path / "a", STANDARD_GRID, _spectra(), _entries(), created="2020-01-01")
    b = save_library(tmp_path / "b", STANDARD_GRID, _spectra(), _entries())
    assert a == b
    c = save_library(tmp_path / "c", STANDARD_GRID, _spectra() * 2, _entries())
    assert c != a


def test_tampered_spectra_byte_raises(tmp_path: Path) -> None:
    lib_dir = _write(tmp_path)[0]
    path = lib_dir / SPECTRA
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(LibraryError, match="hash mismatch"):
        load_library(lib_dir)
    assert len(load_library(lib_dir, verify=False)) == 3  # explicit opt-out still loads


def test_tampered_entries_raise(tmp_path: Path) -> None:
    lib_dir = _write(tmp_path)[0]
    path = lib_dir / ENTRIES
    path.write_text(path.read_text().replace('"explosive"', '"benign"'))
    with pytest.raises(LibraryError, match="hash mismatch"):
        load_library(lib_dir)


@pytest.mark.parametrize("missing", [MANIFEST, SPECTRA, ENTRIES])
def test_missing_file_raises(tmp_path: Path, missing: str) -> None:
    lib_dir = _write(tmp_path)[0]
    (lib_dir / missing).unlink()
    with pytest.raises(LibraryError, match="missing"):
        load_library(lib_dir)


def test_truncated_spectra_and_bad_json_raise(tmp_path: Path) -> None:
    lib_dir = _write(tmp_path)[0]
    data = (lib_dir / SPECTRA).read_bytes()
    (lib_dir / SPECTRA).write_bytes(data[: len(data) // 2])
    with pytest.raises(LibraryError):
        load_library(lib_dir)
    lib_dir = save_library(tmp_path / "x", STANDARD_GRID, _spectra(), _entries()) and tmp_path / "x"
    (lib_dir / ENTRIES).write_text("[{")
    with pytest.raises(LibraryError, match="not valid JSON"):
        load_library(lib_dir)
    with pytest.raises(LibraryError, match="no library"):
        load_library(tmp_path / "nope")


def test_save_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="shape"):
        save_library(tmp_path / "l", STANDARD_GRID, _spectra(2), _entries())
    bad = _spectra()
    bad[1, 5] = np.nan
    with pytest.raises(LibraryError, match="NaN"):
        save_library(tmp_path / "l", STANDARD_GRID, bad, _entries())
    dup = [*_entries()[:2], LibraryEntry.create("caffeine", "benign")]
    with pytest.raises(LibraryError, match="duplicate"):
        save_library(tmp_path / "l", STANDARD_GRID, _spectra(), dup)
    with pytest.raises(LibraryError, match="family"):
        LibraryEntry.create("X", "narcotic")
    with pytest.raises(LibraryError, match="category"):
        LibraryEntry.create("X", "snacks")
    assert not (tmp_path / "l").exists()


def test_atomic_replace_leaves_no_temp_and_failed_write_keeps_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib_dir, _, first = _write(tmp_path)
    second = save_library(lib_dir, STANDARD_GRID, _spectra() + 1, _entries())
    assert load_library(lib_dir).content_hash == second != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib"]

    real_fsync = os.fsync
    calls = {"n": 0}

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(5, "simulated I/O error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(LibraryError, match="simulated"):
        save_library(lib_dir, STANDARD_GRID, _spectra() + 5, _entries())
    monkeypatch.undo()
    assert load_library(lib_dir).content_hash == second  # old library intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib"]  # temp dir removed


def test_large_library_loads_memory_mapped(tmp_path: Path) -> None:
    n = 5000
    spectra = np.zeros((n, STANDARD_GRID.size), dtype=np.float32)
    spectra[:, 100] = np.arange(n)
    entries = [LibraryEntry.create(f"s{i}", "benign") for i in range(n)]
    save_library(tmp_path / "big", STANDARD_GRID, spectra, entries)
    lib = load_library(tmp_path / "big")
    assert isinstance(lib.spectra, np.memmap) and not lib.spectra.flags.writeable
    assert lib.spectra[4321, 100] == 4321
    assert lib.index("S4999") == 4999


def test_library_constructor_checks_shape() -> None:
    with pytest.raises(LibraryError):
        Library(STANDARD_GRID, _spectra(2), _entries())


def test_save_never_replaces_a_non_library(tmp_path: Path) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(LibraryError, match="not replacing"):
        save_library(precious, STANDARD_GRID, _spectra(), _entries())
    assert (precious / "thesis.txt").read_text() == "years of work"
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(LibraryError, match="not a library"):
        save_library(afile, STANDARD_GRID, _spectra(), _entries())
    empty = tmp_path / "empty"
    empty.mkdir()
    save_library(empty, STANDARD_GRID, _spectra(), _entries())
    assert len(load_library(empty)) == 3


def test_loading_hashes_the_spectra_file_as_the_values_and_refuses_a_flip(
    tmp_path: Path,
) -> None:
    """Verification reads spectra.npy with plain reads (not through the memory map, which
    would make the whole matrix resident); the hash is the same as over the values, and a
    flipped data byte is still refused."""
    from edge.library.format import _content_hash, _entries_bytes

    lib_dir, spectra, digest = _write(tmp_path)
    lib = load_library(lib_dir)
    assert lib.content_hash == digest == _content_hash(spectra, _entries_bytes(_entries()))
    raw = bytearray((lib_dir / SPECTRA).read_bytes())
    raw[-5] ^= 0x10  # inside the data, past the header
    (lib_dir / SPECTRA).write_bytes(bytes(raw))
    with pytest.raises(LibraryError, match="content hash mismatch"):
        load_library(lib_dir)

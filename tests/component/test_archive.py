"""The local scan archive: real SQLite in a temp dir, bounds, corruption, round trips."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from edge.preprocess.grid import STANDARD_GRID
from edge.scan.data import ScanData
from edge.store.archive import Archive, ArchiveError, ScanNotFoundError, ScanRecord


def make_record(scan_id: str, created: float, seed: int = 0, pixels: int = 1024) -> ScanRecord:
    rng = np.random.default_rng(seed)
    raw_x = np.linspace(600.0, 4100.0, pixels)
    return ScanRecord(
        scan_id=scan_id,
        created=created,
        result={"status": "identified", "confidence": 0.9, "substance": {"name": "lactose"}},
        data=ScanData(
            reference=f"CONT-{seed}",
            wavenumbers=STANDARD_GRID.copy(),
            spectrum=rng.random(STANDARD_GRID.size),
            raw_wavenumbers=raw_x,
            # noise makes the blob incompressible enough for the size bound to matter
            sample=rng.normal(20000, 500, pixels),
            background=rng.normal(30000, 500, pixels),
            dark=rng.normal(200, 5, pixels),
        ),
    )


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_round_trip_keeps_every_array_and_the_result(tmp_path: Path) -> None:
    rec = make_record("s-1", 1_800_000_000.0, seed=3)
    with Archive(tmp_path / "a.sqlite", clock=Clock()) as ar:
        ar.put(rec)
    with Archive(tmp_path / "a.sqlite", clock=Clock()) as ar:  # survives reopening
        got = ar.get("s-1")
    assert got.result == rec.result
    assert got.reference == "CONT-3"
    assert got.status == "identified"
    np.testing.assert_array_equal(got.data.spectrum, rec.data.spectrum)
    np.testing.assert_array_equal(got.data.wavenumbers, rec.data.wavenumbers)
    for name in ("raw_wavenumbers", "sample", "background", "dark"):
        np.testing.assert_array_equal(getattr(got.data, name), getattr(rec.data, name))
    assert got.data.identification is None  # the published result is the record's


def test_record_without_raw_counts(tmp_path: Path) -> None:
    rec = ScanRecord("s-2", 1.0e9, {"status": "no_match"}, ScanData(STANDARD_GRID, np.zeros(838)))
    with Archive(tmp_path / "a.sqlite", clock=Clock(1.0e9)) as ar:
        ar.put(rec)
        got = ar.get("s-2")
    assert got.data.sample is None and got.data.raw_wavenumbers is None
    assert got.data.spectrum.shape == (838,) and got.reference is None


def test_missing_scan_is_a_typed_error(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.sqlite") as ar, pytest.raises(ScanNotFoundError) as info:
        ar.get("nope")
    assert isinstance(info.value, KeyError)
    assert "nope" in str(info.value)


def test_list_is_newest_first(tmp_path: Path) -> None:
    clock = Clock()
    with Archive(tmp_path / "a.sqlite", clock=clock) as ar:
        for i in range(5):
            ar.put(make_record(f"s-{i}", clock.t + i, seed=i))
        ids = [s.scan_id for s in ar.list()]
        assert ids == ["s-4", "s-3", "s-2", "s-1", "s-0"]
        assert [s.scan_id for s in ar.list(limit=2)] == ["s-4", "s-3"]
        assert len(ar) == 5


def test_size_bound_prunes_oldest_first(tmp_path: Path) -> None:
    clock = Clock()
    with Archive(tmp_path / "a.sqlite", max_bytes=1024 * 1024, clock=clock) as ar:
        ar.put(make_record("first", clock.t, seed=0))
        one = ar.total_bytes()
        assert one > 10_000  # noisy raw counts do not compress away
        n = (1024 * 1024) // one + 10
        for i in range(1, n):
            ar.put(make_record(f"s-{i}", clock.t + i, seed=i))
        assert ar.total_bytes() <= 1024 * 1024
        kept = {s.scan_id for s in ar.list()}
        assert "first" not in kept
        assert f"s-{n - 1}" in kept  # the newest always stays
        oldest_kept = min(int(k.split("-")[1]) for k in kept)
        # everything newer than the oldest kept scan is still there: pruning was oldest first
        assert kept == {f"s-{i}" for i in range(oldest_kept, n)}
        assert len(kept) < n


def test_age_bound(tmp_path: Path) -> None:
    clock = Clock()
    synced = Archive(
        tmp_path / "a.sqlite", max_age_days=1.0, clock=clock, synchronised=lambda: True
    )
    with synced as ar:
        ar.put(make_record("old", clock.t, seed=1))
        clock.t += 0.5 * 86_400
        ar.put(make_record("mid", clock.t, seed=2))
        clock.t += 0.75 * 86_400  # "old" is now 1.25 days old, "mid" 0.75
        assert ar.prune() == 1
        assert [s.scan_id for s in ar.list()] == ["mid"]
        with pytest.raises(ScanNotFoundError):
            ar.get("old")


def test_corrupt_database_is_moved_aside_and_a_fresh_one_started(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    path.write_bytes(b"this is not an sqlite database" * 200)
    with Archive(path, clock=Clock(1.0)) as ar:
        assert ar.moved_aside is not None and ar.moved_aside.exists()
        assert ar.moved_aside.read_bytes().startswith(b"this is not")
        assert len(ar) == 0
        ar.put(make_record("fresh", 1.0, seed=1))
        assert ar.get("fresh").scan_id == "fresh"


def test_damaged_pages_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    with Archive(path, clock=Clock()) as ar:
        for i in range(20):
            ar.put(make_record(f"s-{i}", 1_800_000_000.0 + i, seed=i))
    # checkpoint so the data is in the main file, then scribble over its middle
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 8192] = b"\xff" * 8192
    data[4096 : 4096 + 4096] = b"\x00" * 4096  # and an index/table page near the start
    path.write_bytes(bytes(data))
    with Archive(path, clock=Clock()) as ar:
        assert ar.moved_aside is not None
        assert len(ar) == 0


def test_unserialisable_result_is_an_archive_error(tmp_path: Path) -> None:
    rec = ScanRecord("bad", 1.0, {"x": float("nan")}, ScanData(STANDARD_GRID, np.zeros(838)))
    with Archive(tmp_path / "a.sqlite") as ar, pytest.raises(ArchiveError):
        ar.put(rec)


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with Archive(tmp_path / "a.sqlite", clock=Clock()) as ar:

        def writer(k: int) -> None:
            try:
                for i in range(10):
                    ar.put(make_record(f"w{k}-{i}", 1_800_000_000.0 + i, seed=i, pixels=64))
                    ar.list(limit=3)
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors
        assert len(ar) == 40


def test_close_is_idempotent_and_use_after_close_fails(tmp_path: Path) -> None:
    ar = Archive(tmp_path / "a.sqlite")
    ar.close()
    ar.close()
    with pytest.raises(ArchiveError):
        ar.list()


def test_export_jcamp_reads_back_with_an_independent_reader(tmp_path: Path) -> None:
    import jcamp

    rec = make_record("exp-1", 1_800_000_000.0, seed=5)
    with Archive(tmp_path / "a.sqlite", clock=Clock()) as ar:
        ar.put(rec)
        out = ar.export("exp-1", tmp_path / "exp-1.jdx")
        raw = ar.export("exp-1", tmp_path / "exp-1-sample.jdx", what="sample")
    data = jcamp.readfile(str(out))
    np.testing.assert_allclose(data["x"], rec.data.wavenumbers, atol=1e-3)
    np.testing.assert_allclose(data["y"], rec.data.spectrum, atol=1e-4)
    assert "exp-1" in data["title"]
    sample = jcamp.readfile(str(raw))
    np.testing.assert_allclose(sample["y"], rec.data.sample, rtol=1e-4)


def test_export_csv_and_errors(tmp_path: Path) -> None:
    from spectra_io import read_spectrum

    bare = ScanRecord("bare", 1.0e9, {"status": "rejected"}, ScanData(STANDARD_GRID, np.ones(838)))
    with Archive(tmp_path / "a.sqlite", clock=Clock(1.0e9)) as ar:
        ar.put(bare)
        ar.export("bare", tmp_path / "bare.csv")
        back = read_spectrum(tmp_path / "bare.csv")
        np.testing.assert_allclose(back.y, 1.0)
        with pytest.raises(ArchiveError, match="no raw"):
            ar.export("bare", tmp_path / "x.jdx", what="dark")
        with pytest.raises(ArchiveError, match="unknown spectrum kind"):
            ar.export("bare", tmp_path / "x.jdx", what="everything")
        with pytest.raises(ScanNotFoundError):
            ar.export("missing", tmp_path / "x.jdx")


def test_a_clock_jump_ahead_deletes_nothing(tmp_path: Path) -> None:
    """Finding 3 of issue 8: one scan with the clock 200 days ahead pruned the archive."""
    clock = Clock()
    synced = {"now": False}
    with Archive(
        tmp_path / "a.sqlite", max_age_days=90.0, clock=clock, synchronised=lambda: synced["now"]
    ) as ar:
        for i in range(5):
            ar.put(make_record(f"s-{i}", clock.t + i, seed=i))
        clock.t += 200 * 86_400  # unsynchronised clock jumps ahead
        ar.put(make_record("future", clock.t, seed=9))
        assert ar.prune() == 0 and len(ar) == 6


def test_scans_stamped_by_an_unsynchronised_clock_are_not_pruned_by_age(tmp_path: Path) -> None:
    """A Pi without RTC boots in 2001; once NTP corrects the clock, age must not delete them."""
    clock = Clock(978_307_200.0)  # 2001-01-01
    synced = {"now": False}
    with Archive(
        tmp_path / "a.sqlite", max_age_days=90.0, clock=clock, synchronised=lambda: synced["now"]
    ) as ar:
        ar.put(make_record("made-in-2001", clock.t, seed=1))
        clock.t = 1_796_000_000.0  # corrected to 2026, now synchronised
        synced["now"] = True
        ar.put(make_record("today", clock.t, seed=2))
        assert ar.prune() == 0
        assert {s.scan_id for s in ar.list()} == {"made-in-2001", "today"}
        clock.t += 91 * 86_400  # a synchronised scan does age out
        assert ar.prune() == 1
        assert {s.scan_id for s in ar.list()} == {"made-in-2001"}


def test_count_bound_goes_by_insertion_order_not_clock(tmp_path: Path) -> None:
    clock = Clock(2_000_000_000.0)
    with Archive(tmp_path / "a.sqlite", max_scans=3, clock=clock) as ar:
        for i, t in enumerate((2_000_000_000.0, 978_307_200.0, 978_307_300.0, 2_000_000_100.0)):
            ar.put(make_record(f"s-{i}", t, seed=i))  # s-1 and s-2 stamped by a 2001 clock
        assert {s.scan_id for s in ar.list()} == {"s-1", "s-2", "s-3"}

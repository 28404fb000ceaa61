"""A full disk is reported as such and never taken for corruption (finding 2 of issue 8).

Runs on a real 2 MB tmpfs (root, as CI is); skips where mounting is not allowed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from small_disk import fill, small_tmpfs

from edge.errors import OutboxError
from edge.publish.outbox import Outbox
from edge.scan.data import ScanData
from edge.store.archive import Archive, ArchiveError, ScanRecord
from edge.store.data_dir import ensure_reserve, prepare_data_dir
from edge.store.sqlite_files import RESERVE_FILE


def _record(i: int) -> ScanRecord:
    rng = np.random.default_rng(i)
    return ScanRecord(
        scan_id=f"s-{i}",
        created=1_796_000_000.0 + i,
        result={"status": "identified", "n": i},
        data=ScanData(wavenumbers=np.linspace(650, 4000, 838), spectrum=rng.random(838)),
    )


def test_stores_on_a_full_disk_are_opened_not_quarantined(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        prepare_data_dir(disk, reserve_bytes=512 * 1024)
        assert (disk / RESERVE_FILE).stat().st_size == 512 * 1024
        with Outbox(disk / "outbox.sqlite3") as ob:
            ids = [ob.submit("customs/p/d/scan/result", b'{"n":%d}' % i) for i in range(20)]
        with Archive(disk / "archive.sqlite") as ar:
            for i in range(3):
                ar.put(_record(i))
        filler = fill(disk)
        # restart on the full disk: both open (the reserve is released for that), nothing is
        # moved aside, what waits is readable
        with Outbox(disk / "outbox.sqlite3") as ob, Archive(disk / "archive.sqlite") as ar:
            assert ob.recovered_from is None and ar.moved_aside is None
            assert [r.id for r in ob.pending(limit=100)] == ids
            assert len(ar) == 3
            with pytest.raises(OutboxError, match="full"):
                for _ in range(400):  # the reserve's pages run out
                    ob.submit("customs/p/d/scan/result", b"x" * 4096)
            with pytest.raises(ArchiveError, match="full"):
                for i in range(3, 200):
                    ar.put(_record(i))
            assert [r.id for r in ob.pending(limit=20)] == ids  # what waited is intact
        assert not list(disk.glob("*.corrupt-*"))
        # space returns: both write again without a restart of anything
        assert not (disk / RESERVE_FILE).exists()
        assert not ensure_reserve(disk, 512 * 1024)  # no room for it yet
        filler.unlink()
        with Outbox(disk / "outbox.sqlite3") as ob:
            ob.submit("customs/p/d/scan/result", b'{"after":1}')
            assert ob.stats().waiting >= 21
        assert ensure_reserve(disk, 512 * 1024)  # and the reserve is back

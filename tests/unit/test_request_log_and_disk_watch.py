"""The request log (scan request ids, kept on disk) and the disk watch, on tmp_path files."""

from __future__ import annotations

import errno
from pathlib import Path

from edge.errors import OutboxError
from edge.service.disk import DiskWatch
from edge.store.requests import RequestLog
from edge.store.sqlite_files import RESERVE_FILE


def test_a_request_id_is_recorded_once_and_kept_across_a_reopen(tmp_path: Path) -> None:
    log = RequestLog.for_data_dir(tmp_path)
    assert log.begin("r-1", "scan-a") is None
    seen = log.begin("r-1", "scan-b")  # the same id again: nothing recorded, the first kept
    assert seen is not None and seen.scan_id == "scan-a" and seen.response is None
    assert [s.request_id for s in log.unfinished()] == ["r-1"]
    log.finish("r-1", {"ok": True, "result": {"scan_id": "scan-a", "status": "identified"}})
    log.close()
    log = RequestLog.for_data_dir(tmp_path)
    seen = log.get("r-1")
    assert seen is not None and seen.response == {
        "ok": True,
        "result": {"scan_id": "scan-a", "status": "identified"},
    }
    assert log.unfinished() == [] and log.get("r-2") is None
    log.close()


def test_the_log_is_bounded_oldest_forgotten_first(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "r.sqlite3", max_entries=5)
    for i in range(12):
        log.begin(f"r-{i}", f"s-{i}")
    assert len(log) == 5
    assert log.get("r-6") is None and log.get("r-7") is not None and log.get("r-11") is not None
    log.close()


def test_a_corrupt_log_is_moved_aside_and_a_fresh_one_started(tmp_path: Path) -> None:
    path = tmp_path / "requests.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    log = RequestLog(path)
    assert log.recovered_from is not None and log.recovered_from.exists()
    assert log.begin("r-1", "s-1") is None
    log.close()


def test_disk_watch_remakes_the_reserve_and_reports_changes(tmp_path: Path) -> None:
    watch = DiskWatch(tmp_path, reserve_bytes=64 * 1024)
    changes: list[bool] = []
    watch.on_change.append(changes.append)
    assert watch.check() is False and (tmp_path / RESERVE_FILE).exists()
    assert changes == []  # not full, as it started
    # a commit failed for want of space: the reserve is released, the disk counts as full
    full = OutboxError("outbox: cannot commit")
    full.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert watch.make_room(full) is True
    assert not (tmp_path / RESERVE_FILE).exists() and watch.full and changes == [True]
    # another kind of failure is not a reason to release anything
    assert watch.make_room(OutboxError("locked")) is False
    # room again: the next look re-makes the reserve and says so
    assert watch.check() is False and (tmp_path / RESERVE_FILE).exists()
    assert changes == [True, False]

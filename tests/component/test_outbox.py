"""The SQLite outbox: order, bound (alarms never dropped), sequence numbers, corruption."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from edge.errors import OutboxError
from edge.publish.outbox import Outbox


def test_fifo_and_delivery_marks(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        ids = [ob.submit("t/a", f"m{i}".encode()) for i in range(10)]
        assert ids == sorted(ids)
        assert [r.payload for r in ob.pending(limit=3)] == [b"m0", b"m1", b"m2"]
        assert [r.id for r in ob.pending(limit=2, after_id=ids[4])] == ids[5:7]
        assert ob.mark_delivered([ids[0], ids[2], 999_999]) == 2
        assert len(ob) == 8
        assert ob.count_of(ids) == 8
        assert ob.count_of([ids[0], ids[1]]) == 1
        st = ob.stats()
        assert (st.waiting, st.delivered, st.dropped) == (8, 2, 0)
        assert st.oldest_created is not None
        health = st.for_health(now=st.oldest_created + 2.5)
        assert health == {
            "waiting": 8,
            "alarms_waiting": 0,
            "dropped": 0,
            "oldest_age_s": 2.5,
            "dead_letters": 0,
            "quarantined": None,
        }
        from edge.publish.messages import health_payload, validate

        validate("health", health_payload("d", "p", uptime_s=1.0, outbox=health))


def test_survives_reopen_with_sequence(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as ob:
        seqs = [ob.submit_sequenced("t", lambda s: str(s).encode())[1] for _ in range(3)]
    with Outbox(path) as ob:
        _row, seq = ob.submit_sequenced("t", lambda s: str(s).encode())
        assert [r.payload for r in ob.pending()] == [b"1", b"2", b"3", b"4"]
    assert seqs == [1, 2, 3] and seq == 4


def test_failed_build_commits_nothing(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:

        def boom(seq: int) -> bytes:
            raise ValueError("bad payload")

        with pytest.raises(ValueError):
            ob.submit_sequenced("t", boom)
        assert len(ob) == 0
        assert ob.submit_sequenced("t", lambda s: b"x")[1] == 1  # seq not consumed


def test_bound_drops_oldest_non_alarms_never_alarms(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_messages=10) as ob:
        alarm_ids = [ob.submit("t", f"A{i}".encode(), alarm=True) for i in range(3)]
        for i in range(20):
            ob.submit("t", f"n{i}".encode())
        rows = ob.pending(limit=100)
        assert len(rows) == 10
        payloads = [r.payload for r in rows]
        assert payloads[:3] == [b"A0", b"A1", b"A2"]  # alarms kept, still first
        assert payloads[3:] == [f"n{i}".encode() for i in range(13, 20)]  # newest kept
        assert ob.stats().dropped == 13
        assert ob.stats().alarms_waiting == 3
        # more alarms than the bound: every alarm kept, the bound exceeded rather than dropping
        for i in range(12):
            ob.submit("t", f"B{i}".encode(), alarm=True)
        rows = ob.pending(limit=100)
        assert sum(r.alarm for r in rows) == 15
        assert not any(not r.alarm for r in rows)
        assert ob.stats().dropped == 20
        assert all(ob.count_of([i]) == 1 for i in alarm_ids)


def test_corrupt_file_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is not a database, just garbage " * 200)
    with caplog.at_level(logging.ERROR), Outbox(path) as ob:
        assert ob.recovered_from is not None
        assert ob.recovered_from.exists()
        assert ob.recovered_from.read_bytes().startswith(b"this is not a database")
        ob.submit("t", b"fresh")
        assert len(ob) == 1
    assert "OUTBOX CORRUPT" in caplog.text
    # and the fresh file opens cleanly the next time: no crash loop, no second move
    with Outbox(path) as ob:
        assert ob.recovered_from is None
        assert len(ob) == 1


def test_damaged_pages_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as ob:
        for i in range(300):
            ob.submit("t", bytes(500) + str(i).encode())
    # overwrite the middle of the file (b-tree pages) with noise
    data = bytearray(path.read_bytes())
    assert len(data) > 40_000
    data[8192:32768] = b"\xa5" * (32768 - 8192)
    path.write_bytes(bytes(data))
    with Outbox(path) as ob:
        assert ob.recovered_from is not None
        assert len(ob) == 0


def test_unwritable_location_is_an_outbox_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutboxError):
        Outbox(blocker / "sub" / "o.db")


def test_closed_outbox_raises_and_close_is_idempotent(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.close()
    ob.close()
    with pytest.raises(OutboxError):
        ob.submit("t", b"x")


def test_concurrent_submitters_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    ob = Outbox(path)
    other = Outbox(path)  # a second connection, as a second process would have

    def work(box: Outbox, tag: str) -> None:
        for i in range(200):
            box.submit_sequenced("t", lambda s, i=i: f"{tag}{i}:{s}".encode())

    threads = [threading.Thread(target=work, args=(b, t)) for b, t in ((ob, "a"), (other, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    rows = ob.pending(limit=1000)
    seqs = sorted(int(r.payload.split(b":")[1]) for r in rows)
    assert seqs == list(range(1, 401))  # unique and gap-free across connections
    assert ob.stats().waiting == 400
    ob.close()
    other.close()
    # the database is a valid WAL SQLite file
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_bound_holds_for_a_batch(tmp_path: Path) -> None:
    from edge.publish.outbox import SubmitItem

    with Outbox(tmp_path / "o.db", max_messages=10) as ob:
        ob.submit("t", b"A", alarm=True)
        rows = ob.submit_batch([SubmitItem("t", lambda s: f"n{s}".encode()) for _ in range(25)])
        assert [seq for _, seq in rows] == list(range(2, 27))
        kept = [r.payload for r in ob.pending(limit=100)]
        assert kept == [b"A"] + [f"n{s}".encode() for s in range(18, 27)]
        assert ob.stats().dropped == 16


def test_wal_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    import time

    path = tmp_path / "o.db"
    with Outbox(path, checkpoint_interval_s=3600) as ob:
        for i in range(300):
            ob.submit("t", bytes(2000) + str(i).encode())
        # the commits themselves never checkpoint: the rows are in the WAL only
        assert path.with_name(path.name + "-wal").stat().st_size > 300 * 2000
        assert path.stat().st_size < 100_000
    # closing checkpoints; a running outbox does it in the background
    with Outbox(path, checkpoint_interval_s=0.1) as ob:
        for i in range(300):
            ob.submit("t", bytes(2000) + str(i).encode())
        deadline = time.monotonic() + 10
        while path.stat().st_size < 600 * 2000:
            assert time.monotonic() < deadline, "no checkpoint within 10 s"
            time.sleep(0.05)
        assert len(ob) == 600


def test_batch_ids_are_the_stored_rows_across_connections(tmp_path: Path) -> None:
    from edge.publish.outbox import SubmitItem

    path = tmp_path / "o.db"
    ob, other = Outbox(path), Outbox(path)
    returned: dict[int, bytes] = {}

    def work(box: Outbox, tag: str) -> None:
        for b in range(20):
            items = [
                SubmitItem("t", lambda s, b=b, i=i: f"{tag}{b}.{i}:{s}".encode()) for i in range(7)
            ]
            for (row_id, seq), item in zip(box.submit_batch(items), items, strict=True):
                returned[row_id] = item.build(seq)

    threads = [threading.Thread(target=work, args=(b, t)) for b, t in ((ob, "a"), (other, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stored = {r.id: r.payload for r in ob.pending(limit=1000)}
    assert len(stored) == 280
    assert returned == stored  # every returned id names exactly the row it committed
    ob.close()
    other.close()

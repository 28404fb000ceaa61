"""Damage to the outbox file never stops delivery (finding 1 of issue 8), with real SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge.publish.outbox import Outbox


def _fill(path: Path, n: int, alarms: tuple[int, ...] = ()) -> list[int]:
    with Outbox(path) as ob:
        return [
            ob.submit("customs/p/d/scan/result", f'{{"n":{i}}}'.encode(), alarm=i in alarms)
            for i in range(n)
        ]


def _flip_in_column(path: Path, row_id: int, column: str, offset: int = 2) -> None:
    """Flip one byte inside one stored value, as a failing flash cell would."""
    db = sqlite3.connect(path)
    value = db.execute(f"SELECT CAST({column} AS BLOB) FROM messages WHERE id=?", (row_id,))
    raw = bytearray(value.fetchone()[0])
    raw[offset] ^= 0x80  # the high bit: no longer valid UTF-8 in a text column
    if column == "topic":
        db.execute("UPDATE messages SET topic=CAST(? AS TEXT) WHERE id=?", (bytes(raw), row_id))
    else:
        db.execute(f"UPDATE messages SET {column}=? WHERE id=?", (bytes(raw), row_id))
    db.commit()
    db.close()


def test_a_flipped_topic_byte_is_dead_lettered_and_the_rest_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    ids = _fill(path, 5)
    _flip_in_column(path, ids[1], "topic")
    with Outbox(path) as ob:
        rows = ob.pending(limit=10)
        assert [r.id for r in rows] == [ids[0], *ids[2:]]
        st = ob.stats()
        assert st.dead_letters == 1 and st.waiting == 4
        assert ob.last_dead_letter is not None and str(ids[1]) in ob.last_dead_letter
        assert ob.stats().for_health()["dead_letters"] == 1
        # the next read does not stumble on it again
        assert [r.id for r in ob.pending(limit=10)] == [ids[0], *ids[2:]]
    db = sqlite3.connect(path)
    assert db.execute("SELECT id FROM dead_letters").fetchall() == [(ids[1],)]


def test_a_flipped_payload_byte_is_never_sent(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    ids = _fill(path, 3)
    _flip_in_column(path, ids[2], "payload", offset=3)
    with Outbox(path) as ob:
        rows = ob.pending(limit=10)
        assert [r.id for r in rows] == ids[:2]
        assert all(r.payload.startswith(b'{"n":') for r in rows)
        assert ob.stats().dead_letters == 1


def test_a_flipped_header_is_quarantined_reported_and_its_rows_recovered(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    ids = _fill(path, 6, alarms=(1, 4))
    with path.open("r+b") as f:  # one bit of the magic string: SQLite refuses the file
        f.seek(3)
        byte = f.read(1)
        f.seek(3)
        f.write(bytes([byte[0] ^ 0x04]))
    with Outbox(path) as ob:
        assert ob.recovered_from is not None and ob.recovered_from.exists()
        assert ob.recovered_rows == len(ids)
        st = ob.stats()
        assert st.waiting == 6 and st.alarms_waiting == 2
        assert st.next_seq == 7  # seq goes on where the damaged file left it
        assert st.quarantined == str(ob.recovered_from)
        assert st.for_health()["quarantined"] == str(ob.recovered_from)
        payloads = [r.payload for r in ob.pending(limit=10)]
        assert payloads == [f'{{"n":{i}}}'.encode() for i in range(6)]

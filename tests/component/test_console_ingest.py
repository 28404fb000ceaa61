"""The control room's ingester against a real mosquitto and real SQLite / PostgreSQL.

Simulated devices (tests/support/sim_devices.py) publish signed results; the ingester must
archive each exactly once, flag what is forged or signed by an unapproved key, notice a seq
gap and fill it through ``replay``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from mosquitto_broker import Broker
from sim_devices import SimDevice
from sqlalchemy import func, select, text

from controlroom.commands import CommandLink
from controlroom.db import Database, open_database
from controlroom.db.schema import Alarm, Device, RejectedMessage, Result, SeqGap
from controlroom.db.schema import DeviceKey as KeyRow
from controlroom.gaps import GapPolicy, GapWatcher, missing_runs
from controlroom.ingest import Ingester, IngestSettings
from controlroom.keys import register_key
from edge.publish.signing import DeviceKey


def wait_until(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def count(db: Database, stmt: object) -> int:
    with db.session() as s:
        return int(s.execute(stmt).scalar_one())  # type: ignore[call-overload]


@pytest.fixture
def db(console_db_url: str) -> Iterator[Database]:
    database = open_database(console_db_url)
    yield database
    database.close()


def approve_all(db: Database, *devices: SimDevice) -> None:
    with db.session() as s:
        for d in devices:
            register_key(s, d.prefix, d.key.public_b64, state="approved", by="test-admin")


def test_results_of_several_devices_archived_exactly_once(mosquitto: Broker, db: Database) -> None:
    devices = [SimDevice(mosquitto.port, f"post-{i % 2}", f"dev-{i}") for i in range(3)]
    approve_all(db, *devices)
    ing = Ingester(IngestSettings(port=mosquitto.port, client_id="ing-a"), db)
    ing.start()
    try:
        sent: list[dict] = []
        for round_ in range(20):
            for d in devices:
                r = d.make_result(alarm=(round_ == 5))
                d.send(r).wait_for_publish(5)
                sent.append(r)
        # redelivered duplicates: the same results again, live and historical
        for r, d in [(sent[i], devices[i % 3]) for i in range(0, 60, 4)]:
            d.send(r).wait_for_publish(5)
            d.send(r, historical=True).wait_for_publish(5)
        # a late historical one: made long ago (kept back), delivered now
        late = devices[0].make_result()
        more = [devices[0].result() for _ in range(3)]
        devices[0].send(late, historical=True).wait_for_publish(5)
        expected = {r["scan_id"] for r in [*sent, late, *more]}
        wait_until(lambda: count(db, select(func.count(Result.id))) >= len(expected), what="rows")
        time.sleep(0.5)  # anything else in flight would show as an extra row
        with db.session() as s:
            rows = s.execute(select(Result.scan_id, Result.signature_state, Result.historical))
            rows = rows.all()
            assert len(rows) == len(expected)
            assert {r.scan_id for r in rows} == expected
            assert {r.signature_state for r in rows} == {"valid"}
            late_row = s.execute(
                select(Result).where(Result.scan_id == late["scan_id"])
            ).scalar_one()
            assert late_row.historical and late_row.seq < max(m["seq"] for m in more)
            alarms = s.execute(select(Alarm.scan_id, Alarm.state)).all()
            assert len(alarms) == 3 and {a.state for a in alarms} == {"open"}
            devs = {d.prefix: d for d in s.execute(select(Device)).scalars()}
            assert set(devs) == {d.prefix for d in devices}
            assert all(v.status == "online" and v.info for v in devs.values())
        assert ing.stats.results_duplicate >= 30
        assert ing.stats.rejected == 0
    finally:
        ing.stop()
        for d in devices:
            d.close()


def test_forged_result_and_unapproved_key_are_flagged(mosquitto: Broker, db: Database) -> None:
    trusted = SimDevice(mosquitto.port, "post-1", "dev-ok")
    newcomer = SimDevice(mosquitto.port, "post-1", "dev-new")
    approve_all(db, trusted)
    ing = Ingester(IngestSettings(port=mosquitto.port), db)
    ing.start()
    try:
        good = trusted.result()
        # forged: right key id, wrong key (someone on the broker speaking for the device)
        forger = DeviceKey.generate()
        forged = trusted.make_result(alarm=True)
        forged = forger.sign(forged)
        forged["signature"]["key_id"] = trusted.key.key_id
        trusted.send(forged).wait_for_publish(5)
        # a forged info announcing the forger's key for the trusted device: stays pending
        trusted.publish_info(forger)
        time.sleep(0.3)
        forged2 = forger.sign(trusted.make_result())
        trusted.send(forged2).wait_for_publish(5)
        unapproved = newcomer.result()
        # garbage and a schema violation are kept aside, never stored as results
        trusted.client.publish(f"{trusted.prefix}/scan/result", b"{not json", qos=1)
        bad = dict(trusted.make_result(), confidence=7)
        trusted.client.publish(f"{trusted.prefix}/scan/result", json.dumps(bad), qos=1)
        wait_until(lambda: count(db, select(func.count(Result.id))) >= 4, what="results")
        wait_until(lambda: count(db, select(func.count(RejectedMessage.id))) >= 2, what="rejects")
        with db.session() as s:
            state = dict(s.execute(select(Result.scan_id, Result.signature_state)).all())
            keys = {(k.prefix, k.key_id): k.state for k in s.execute(select(KeyRow)).scalars()}
            reasons = [r for (r,) in s.execute(select(RejectedMessage.reason))]
        assert state[good["scan_id"]] == "valid"
        assert state[forged["scan_id"]] == "invalid"
        assert state[forged2["scan_id"]] == "pending_key"
        assert state[unapproved["scan_id"]] == "pending_key"
        assert keys[(newcomer.prefix, newcomer.key.key_id)] == "pending"
        assert keys[(trusted.prefix, forger.key_id)] == "pending"
        assert keys[(trusted.prefix, trusted.key.key_id)] == "approved"
        assert any("not JSON" in r for r in reasons)
        assert any("confidence" in r for r in reasons)
    finally:
        ing.stop()
        trusted.close()
        newcomer.close()


def test_missing_runs() -> None:
    assert missing_runs(0, [1, 2, 5, 6, 9]) == [(3, 4), (7, 8)]
    assert missing_runs(4, [3, 5, 6]) == []
    assert missing_runs(10, []) == []


def test_seq_gap_noticed_and_filled_by_replay(mosquitto: Broker, db: Database) -> None:
    dev = SimDevice(mosquitto.port, "post-1", "dev-gap")
    approve_all(db, dev)
    ing = Ingester(IngestSettings(port=mosquitto.port), db)
    ing.start()
    link = CommandLink("127.0.0.1", mosquitto.port)
    link.start()
    watcher = GapWatcher(db, link, GapPolicy(interval_s=0.2, grace_s=0.3, retry_s=5))
    try:
        for n in range(1, 11):
            r = dev.make_result()
            if n not in (4, 5, 8):  # lost on the way (e.g. dropped by a full outbox)
                dev.send(r).wait_for_publish(5)
        wait_until(lambda: count(db, select(func.count(Result.id))) == 7, what="7 results")
        watcher.tick()
        with db.session() as s:
            gaps = {(g.from_seq, g.to_seq): g.state for g in s.execute(select(SeqGap)).scalars()}
        assert gaps == {(4, 5): "open", (8, 8): "open"}
        watcher.start()
        wait_until(lambda: count(db, select(func.count(Result.id))) == 10, what="replayed rows")
        wait_until(
            lambda: count(db, select(func.count(SeqGap.id)).where(SeqGap.state == "filled")) == 2,
            what="gaps filled",
        )
        replays = [b for name, b in dev.commands if name == "replay"]
        assert {(b["from_seq"], b["to_seq"]) for b in replays} == {(4, 5), (8, 8)}
        with db.session() as s:
            rows = s.execute(select(Result.seq, Result.historical).order_by(Result.seq)).all()
            assert [r.seq for r in rows] == list(range(1, 11))
            assert all(r.historical for r in rows if r.seq in (4, 5, 8))
            assert s.execute(select(Device.seq_contiguous)).scalar_one() == 10
    finally:
        watcher.stop()
        link.stop()
        ing.stop()
        dev.close()


def test_gap_written_off_when_the_device_no_longer_has_it(mosquitto: Broker, db: Database) -> None:
    dev = SimDevice(mosquitto.port, "post-1", "dev-lost")
    approve_all(db, dev)
    ing = Ingester(IngestSettings(port=mosquitto.port), db)
    ing.start()
    link = CommandLink("127.0.0.1", mosquitto.port)
    link.start()
    watcher = GapWatcher(db, link, GapPolicy(interval_s=0.2, grace_s=0.2, retry_s=5))
    try:
        for n in range(1, 6):
            r = dev.make_result()
            if n == 3:
                del dev.archive[r["seq"]]  # pruned from the device archive too
            else:
                dev.send(r).wait_for_publish(5)
        wait_until(lambda: count(db, select(func.count(Result.id))) == 4, what="4 results")
        watcher.start()
        wait_until(
            lambda: count(db, select(func.count(SeqGap.id)).where(SeqGap.state == "lost")) == 1,
            what="gap written off",
        )
        watcher.tick()
        with db.session() as s:
            assert s.execute(select(Device.seq_contiguous)).scalar_one() == 5
    finally:
        watcher.stop()
        link.stop()
        ing.stop()
        dev.close()


def test_database_down_loses_nothing_and_acks_after_commit(
    mosquitto: Broker, tmp_path: object
) -> None:
    """With the database refusing writes, nothing is acknowledged; after it is back, all land."""
    from pathlib import Path

    url = f"sqlite:///{Path(str(tmp_path)) / 'c.sqlite'}"
    db = open_database(url)
    dev = SimDevice(mosquitto.port, "post-1", "dev-db")
    approve_all(db, dev)
    ing = Ingester(IngestSettings(port=mosquitto.port, client_id="ing-down"), db)
    ing.start()
    blocker = db.engine.raw_connection()
    try:
        cur = blocker.cursor()
        cur.execute("BEGIN EXCLUSIVE")  # every writer waits, then fails: database locked
        sent = [dev.result() for _ in range(5)]
        time.sleep(1.0)
        assert ing.stats.acked == 0 or ing.stats.results_new == 0
        blocker.rollback()
        wait_until(lambda: count(db, select(func.count(Result.id))) == 5, timeout=40, what="rows")
        with db.session() as s:
            assert {r for (r,) in s.execute(select(Result.scan_id))} == {r["scan_id"] for r in sent}
            assert s.execute(text("select 1")).scalar_one() == 1
    finally:
        blocker.close()
        ing.stop()
        dev.close()
        db.close()


def test_a_command_nobody_subscribes_to_is_reported_not_sent(mosquitto: Broker) -> None:
    """The broker's PUBACK 0x10 (no matching subscribers: the device has no session there, or
    its post's bridge is down) means the command was dropped: the sender hears so."""
    import pytest

    from controlroom.errors import ControlRoomError

    dev = SimDevice(mosquitto.port, "post-1", "dev-here")
    link = CommandLink("127.0.0.1", mosquitto.port)
    link.start()
    try:
        link.send(dev.prefix, "ping", {}, correlation="c-1")  # a subscriber: delivered
        with pytest.raises(ControlRoomError, match="dropped by the broker"):
            link.send("customs/post-9/nobody", "ping", {}, correlation="c-2")
    finally:
        link.stop()
        dev.close()

"""The device's ``replay`` with the control room's gap watcher (issue 9), both real: results
dropped by the device's full outbox leave a ``seq`` gap at the console; the console asks the
device to ``replay`` it, the device resends them from its archive as signed, and the gap is
filled. Real mosquitto, real SQLite on the device, the console database of the fixture."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers_mqtt import make_config
from mosquitto_broker import Broker, BrokerFactory
from service_fakes import FakeEngine
from sqlalchemy import select

from controlroom.commands import CommandLink
from controlroom.db import Database, open_database
from controlroom.db.schema import Result, SeqGap
from controlroom.gaps import GapPolicy, GapWatcher
from controlroom.ingest import Ingester, IngestSettings
from controlroom.keys import register_key
from edge.service import Service

PREFIX = "customs/post-1/dev-1"


def wait_until(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def db(console_db_url: str) -> Iterator[Database]:
    database = open_database(console_db_url)
    yield database
    database.close()


def seqs(db: Database) -> list[int]:
    with db.session() as s:
        return [int(v) for v in s.execute(select(Result.seq).order_by(Result.seq)).scalars()]


def gaps(db: Database) -> dict[tuple[int, int], str]:
    with db.session() as s:
        return {(g.from_seq, g.to_seq): g.state for g in s.execute(select(SeqGap)).scalars()}


def test_a_gap_from_a_full_outbox_is_filled_by_the_device_replay(
    tmp_path: Path, mosquitto_factory: BrokerFactory, db: Database
) -> None:
    # persistent, as at a post: the console's session keeps what arrives while it reconnects
    mosquitto: Broker = mosquitto_factory(persistence=True)
    engine = FakeEngine()
    cfg = make_config(
        tmp_path / "data",
        mosquitto.port,
        mqtt={"health_interval_s": 60.0},
        outbox={"max_messages": 10},
    )
    svc = Service(cfg, lambda: engine)
    svc.start()
    with db.session() as s:
        register_key(s, PREFIX, svc.key.public_b64, state="approved", by="test-admin")
    ing = Ingester(IngestSettings(port=mosquitto.port), db)
    ing.start()
    link: CommandLink | None = None
    watcher: GapWatcher | None = None
    try:
        assert svc.link.wait_connected(10) and svc.link.wait_commands_ready(10)
        for _ in range(2):
            svc.worker.submit("scan", source="test").result(10)
        wait_until(lambda: seqs(db) == [1, 2], what="seq 1-2 at the console")
        # the broker is away for 12 scans; the outbox keeps 10 and drops the 2 oldest
        mosquitto.stop()
        for _ in range(12):
            svc.worker.submit("scan", source="test").result(10)
        assert svc.outbox.stats().dropped == 2
        # the device restarts once the broker and the console are back; what it kept goes
        # out late (a result published before the console's session is back on its shared
        # subscription does not reach it: that is the console's matter, not this test's)
        svc.stop()
        ing.subscribed.clear()
        mosquitto.start()
        assert ing.subscribed.wait(20)  # set again by the SUBACK after its reconnect
        svc = Service(cfg, lambda: engine)
        svc.start()
        wait_until(lambda: seqs(db) == [1, 2, *range(5, 15)], what="seq 5-14 delivered late")
        link = CommandLink("127.0.0.1", mosquitto.port)
        link.start()
        watcher = GapWatcher(db, link, GapPolicy(interval_s=0.2, grace_s=0.3, retry_s=5))
        watcher.start()
        wait_until(lambda: seqs(db) == list(range(1, 15)), what="seq 3-4 replayed")
        wait_until(lambda: gaps(db) == {(3, 4): "filled"}, what="the gap marked filled")
        with db.session() as s:
            rows = s.execute(select(Result.seq, Result.historical).order_by(Result.seq)).all()
        assert all(r.historical for r in rows if r.seq in (3, 4))
        assert svc.handlers.replayed == 2
    finally:
        if watcher is not None:
            watcher.stop()
        if link is not None:
            link.stop()
        ing.stop()
        svc.stop()

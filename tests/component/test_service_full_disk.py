"""The service on a full disk (finding 2 of issue 8, at service level): it starts, scans and
says so (``health.disk_full``, ``status`` maintenance with reason ``disk_full``), and recovers
by itself when space returns. A real small tmpfs, a real mosquitto, real SQLite; skips where
mounting is not allowed.

The time from the disk freeing up to delivery resuming is measured and printed (``-s``).
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from helpers_mqtt import Subscriber, make_config, validate_message
from mosquitto_broker import Broker, BrokerFactory
from service_fakes import FakeEngine
from small_disk import fill, small_tmpfs

from edge.service import Service
from edge.service.commands import ScanArgs
from edge.store.sqlite_files import RESERVE_FILE

PREFIX = "customs/post-1/dev-1"


def last(
    sub: Subscriber, kind: str, predicate: Any, timeout: float = 10.0, after: int = 0
) -> dict[str, Any]:
    """The last message on <prefix>/<kind> matching *predicate* among messages[after:]."""
    topic = f"{PREFIX}/{kind}"
    msgs = sub.wait_for(
        lambda ms: any(m.topic == topic and predicate(m.json()) for m in ms[after:]), timeout
    )
    return [m.json() for m in msgs[after:] if m.topic == topic and predicate(m.json())][-1]


def scan_ids(sub: Subscriber) -> set[str]:
    return {m.json()["scan_id"] for m in sub.on(f"{PREFIX}/scan/result")}


def test_service_starts_scans_reports_a_full_disk_and_recovers_by_itself(
    tmp_path: Path, mosquitto_factory: BrokerFactory
) -> None:
    broker: Broker = mosquitto_factory(max_inflight=10)
    sub = Subscriber(broker.port, [f"{PREFIX}/#"])
    sub.wait_subscribed()
    engine = FakeEngine()
    with small_tmpfs(tmp_path / "disk", size_kib=12 * 1024) as disk:
        data = disk / "data"
        cfg = make_config(data, broker.port, mqtt={"health_interval_s": 60.0})
        # a device that has run: key, stores and space reserve are there
        svc = Service(cfg, lambda: engine)
        svc.start()
        try:
            first = svc.worker.submit("scan", source="test").result(10).scan_id
            sub.wait_for(lambda ms: first in scan_ids(sub), 10)
            assert last(sub, "health", lambda b: b.get("disk_full") is False)
        finally:
            svc.stop()
        assert (data / RESERVE_FILE).exists()
        # the disk fills up while it is off; it restarts on the full disk
        filler = fill(disk)
        svc = Service(cfg, lambda: engine)
        svc.start()
        try:
            assert svc.link.wait_connected(10)
            status = last(sub, "status", lambda b: b["state"] == "maintenance")
            validate_message(f"{PREFIX}/status", status)
            assert status["reason"] == "disk_full"
            health = last(sub, "health", lambda b: b.get("disk_full") is True)
            validate_message(f"{PREFIX}/health", health)
            # it scans on the full disk: the commits go into what the stores could open
            done = [svc.worker.submit("scan", source="test").result(10) for _ in range(3)]
            sub.wait_for(lambda ms: {j.scan_id for j in done} <= scan_ids(sub), 10)
            # a remote scan with a request id too (its id is recorded on the full disk)
            remote = svc.handlers.scan(ScanArgs(consignment="FULL-1", request_id="full-1"))
            assert isinstance(remote, Future) and remote.result(10)["consignment"] == "FULL-1"
            assert not list(data.glob("*.corrupt-*"))

            # results waiting while the broker is away, then no byte left at all: the
            # delivery marks cannot be written, so delivery stalls after the first window
            broker.stop()
            deadline = time.monotonic() + 10
            while svc.link.connected and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not svc.link.connected
            waiting = []
            for _ in range(60):
                try:
                    waiting.append(svc.worker.submit("scan", source="test").result(10).scan_id)
                except Exception:
                    break
            filler2 = fill(disk, "filler2")
            assert waiting, "no result could be committed on the full disk"
            broker.start()
            # what can go out goes out; then the disk is freed and the rest follows
            time.sleep(3.0)
            before = len(set(waiting) & scan_ids(sub))
            mark = len(sub.messages)
            freed_at = time.monotonic()
            filler.unlink()
            filler2.unlink()
            sub.wait_for(lambda ms: set(waiting) <= scan_ids(sub), 30)
            resumed_s = time.monotonic() - freed_at
            print(
                f"\nfull disk: {len(waiting)} results committed, {before} delivered before the"
                f" disk was freed, all delivered {resumed_s:.2f} s after it was freed"
            )
            # housekeeping re-makes the reserve and says so: online, disk_full false
            back = last(sub, "status", lambda b: b["state"] == "online", after=mark)
            assert "reason" not in back
            assert last(sub, "health", lambda b: b.get("disk_full") is False, after=mark)
            print(f"recovery announced {time.monotonic() - freed_at:.2f} s after it was freed")
            assert (data / RESERVE_FILE).exists() and not svc.publisher.disk_full
            # and it goes on as before
            after = svc.worker.submit("scan", source="test").result(10).scan_id
            sub.wait_for(lambda ms: after in scan_ids(sub), 10)
        finally:
            svc.stop()
            sub.close()

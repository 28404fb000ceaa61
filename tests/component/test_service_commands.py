"""Remote commands of the service against a real mosquitto and real SQLite: scan request ids
that never run twice (also across a restart and an interrupted scan), ``replay`` from the
archive, deeply nested JSON, and a flood that cannot starve another requester."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from helpers_mqtt import Requester, Subscriber, make_config, validate_message
from mosquitto_broker import Broker
from service_fakes import FakeEngine

from edge.publish.signing import load_public_key, verify
from edge.service import Service
from edge.service.commands import ScanArgs
from edge.store.requests import RequestLog

PREFIX = "customs/post-1/dev-1"


def start(data: Path, port: int, engine: FakeEngine) -> Service:
    svc = Service(make_config(data, port, mqtt={"health_interval_s": 60.0}), lambda: engine)
    svc.start()
    assert svc.link.wait_connected(10)
    assert svc.link.wait_commands_ready(10)
    return svc


@pytest.fixture
def watcher(mosquitto: Broker) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto.port, [f"{PREFIX}/#"])
    sub.wait_subscribed()
    yield sub
    sub.close()


@pytest.fixture
def requester(mosquitto: Broker) -> Iterator[Requester]:
    r = Requester(mosquitto.port)
    yield r
    r.close()


def results(sub: Subscriber) -> list[dict[str, Any]]:
    return [m.json() for m in sub.on(f"{PREFIX}/scan/result")]


def test_a_repeated_scan_request_id_never_scans_twice_even_after_a_restart(
    tmp_path: Path, mosquitto: Broker, watcher: Subscriber, requester: Requester
) -> None:
    engine = FakeEngine()
    svc = start(tmp_path / "data", mosquitto.port, engine)
    try:
        requester.send("scan", {"consignment": "C-1", "request_id": "req-1"}, b"a")
        first = requester.response(b"a")
        assert first["ok"] and first["result"]["consignment"] == "C-1"
        # the same id again, even with another body: the first answer, no scan
        requester.send("scan", {"consignment": "C-other", "request_id": "req-1"}, b"b")
        assert requester.response(b"b")["result"] == first["result"]
        # a different id is a new scan
        requester.send("scan", {"consignment": "C-2", "request_id": "req-2"}, b"c")
        second = requester.response(b"c")["result"]
        assert second["scan_id"] != first["result"]["scan_id"]
        assert len(engine.scans) == 2
        assert svc.dispatcher.snapshot()["repeated_request"] == 1
    finally:
        svc.stop()
    svc = start(tmp_path / "data", mosquitto.port, engine)  # the map is on disk
    try:
        requester.send("scan", {"consignment": "C-1", "request_id": "req-1"}, b"d")
        assert requester.response(b"d")["result"] == first["result"]
        assert len(engine.scans) == 2
    finally:
        svc.stop()
    got = results(watcher)
    assert [r["extra"]["request_id"] for r in got] == ["req-1", "req-2"]
    assert got[0]["scan_id"] == first["result"]["scan_id"]


def test_a_scan_interrupted_by_a_kill_is_answered_from_what_was_committed(
    tmp_path: Path, mosquitto: Broker, requester: Requester
) -> None:
    data = tmp_path / "data"
    engine = FakeEngine()
    svc = start(data, mosquitto.port, engine)
    try:
        requester.send("scan", {"consignment": "C-1", "request_id": "done-1"}, b"a")
        done = requester.response(b"a")["result"]
    finally:
        svc.stop()
    # as a SIGKILL leaves them: one started whose result was committed, one that never ran
    log = RequestLog.for_data_dir(data)
    with log._lock:  # forget the recorded response of done-1, as if killed before it
        log._db.execute("UPDATE requests SET response = NULL WHERE request_id = 'done-1'")
    assert log.begin("never-ran", "0f0e0d0c-0000-4000-8000-000000000000") is None
    log.close()
    svc = start(data, mosquitto.port, engine)
    try:
        requester.send("scan", {"consignment": "C-1", "request_id": "done-1"}, b"b")
        assert requester.response(b"b")["result"] == done
        requester.send("scan", {"consignment": "C-9", "request_id": "never-ran"}, b"c")
        answer = requester.response(b"c")
        assert answer["ok"] is False and answer["error"]["code"] == "failed"
        assert "not run again" in answer["error"]["message"]
        assert len(engine.scans) == 1  # neither ran a second time
    finally:
        svc.stop()


def test_an_interrupted_scan_whose_result_waits_in_the_outbox_is_settled_at_start(
    tmp_path: Path, mosquitto: Broker
) -> None:
    data = tmp_path / "data"
    engine = FakeEngine()
    mosquitto.stop()  # the result stays in the outbox
    cfg = make_config(data, mosquitto.port, mqtt={"health_interval_s": 60.0})
    svc = Service(cfg, lambda: engine)
    svc.start()
    try:
        out = svc.handlers.scan(ScanArgs(consignment="C-1", request_id="waiting-1"))
        assert isinstance(out, Future)
        scan_id = out.result(10)["scan_id"]
        assert svc.outbox.payload_by_key(scan_id) is not None
        svc.archive._db.execute("DELETE FROM scans WHERE scan_id = ?", (scan_id,))
    finally:
        svc.stop()
    log = RequestLog.for_data_dir(data)
    with log._lock:  # as if killed after the commit, before the archive and the response
        log._db.execute("UPDATE requests SET response = NULL")
    log.close()
    svc = Service(cfg, lambda: engine)
    svc.start()  # settles it before the courier may deliver (and delete) the row
    try:
        seen = svc.requests.get("waiting-1")
        assert seen is not None and seen.response == {
            "ok": True,
            "result": {"scan_id": scan_id, "status": "identified", "consignment": "C-1"},
        }
        assert len(engine.scans) == 1
    finally:
        svc.stop()


def test_replay_resends_archived_results_as_signed_flagged_historical(
    tmp_path: Path, mosquitto: Broker, watcher: Subscriber, requester: Requester
) -> None:
    engine = FakeEngine()
    svc = start(tmp_path / "data", mosquitto.port, engine)
    try:
        for _ in range(4):
            svc.worker.submit("scan", source="test").result(10)
        watcher.wait_count(f"{PREFIX}/scan/result", 4)
        svc.archive._db.execute(  # the archive no longer holds seq 3 (pruned)
            "DELETE FROM scans WHERE json_extract(result, '$.seq') = 3"
        )
        first = {r["seq"]: r for r in results(watcher)}
        next_seq = svc.outbox._next_seq()
        requester.send("replay", {"from_seq": 2, "to_seq": 6}, b"r")
        body = requester.response(b"r")
        assert body["result"] == {"from_seq": 2, "to_seq": 6, "sent": 2, "missing": 3}
        msgs = watcher.wait_count(f"{PREFIX}/scan/result", 6)
        info = next(m.json() for m in watcher.on(f"{PREFIX}/info"))
        key = load_public_key(info["public_key"]["value"])
        again = [m.json() for m in msgs[4:]]
        assert [r["seq"] for r in again] == [2, 4]
        for r in again:
            validate_message(f"{PREFIX}/scan/result", r)
            assert r["historical"] is True and verify(r, key)
            assert {k: v for k, v in r.items() if k != "historical"} == {
                k: v for k, v in first[r["seq"]].items() if k != "historical"
            }
        assert svc.outbox._next_seq() == next_seq  # a resend allocates no seq: no gap
        requester.send("replay", {"from_seq": 5, "to_seq": 1}, b"bad")
        assert requester.response(b"bad")["error"]["code"] == "bad_request"
        svc.outbox.max_messages = 2  # no room for three: refused, nothing waiting pushed out
        requester.send("replay", {"from_seq": 1, "to_seq": 4}, b"full")
        assert requester.response(b"full")["error"]["code"] == "busy"
    finally:
        svc.stop()


def test_json_nested_2000_deep_is_answered_bad_json(
    tmp_path: Path, mosquitto: Broker, requester: Requester
) -> None:
    svc = start(tmp_path / "data", mosquitto.port, FakeEngine())
    try:
        requester.send("ping", b"[" * 2000 + b"]" * 2000, b"deep-1")
        assert requester.response(b"deep-1")["error"]["code"] == "bad_json"
        requester.send("ping", b'{"nonce": ' + b"[" * 1000 + b"]" * 1000 + b"}", b"deep-2")
        assert requester.response(b"deep-2")["error"]["code"] == "bad_json"
        assert svc.dispatcher.snapshot().get("internal_error", 0) == 0
    finally:
        svc.stop()


def test_a_flood_from_one_requester_does_not_starve_another(
    tmp_path: Path, mosquitto: Broker, requester: Requester
) -> None:
    svc = start(tmp_path / "data", mosquitto.port, FakeEngine())
    flooder = Requester(mosquitto.port)
    try:
        answered = 0
        t0 = time.monotonic()
        for second in range(4):  # 50 msg/s from the flooder; 1 request/s from the other
            for i in range(50):
                flooder.send("ping", {}, f"f-{second}-{i}".encode())
                time.sleep(0.02)
            corr = f"legit-{second}".encode()
            requester.send("ping", {"nonce": "x"}, corr)
            answered += requester.response(corr, timeout=5)["ok"]
        assert answered == 4, f"{answered} of 4 in {time.monotonic() - t0:.1f} s"
        assert svc.dispatcher.snapshot()["rate_limited"] >= 100
    finally:
        flooder.close()
        svc.stop()

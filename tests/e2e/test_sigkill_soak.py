"""SIGKILL soak (issue 8): ``spectra-edge run`` with the simulated instrument, killed at random
moments, against a persistent mosquitto that is restarted several times, while a control
room sends remote ``scan`` requests with request ids (retrying unanswered ones with the same
id, and repeating answered ones).

Counted at a persistent subscriber: every result the device committed (every ``seq`` its
outbox allocated: allocation and commit are one transaction) arrives, and no request id ever
made two scans. Bounded to about two minutes; the counts are printed (``-s``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from helpers_mqtt import Subscriber
from mosquitto_broker import Broker, BrokerFactory
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hal.protocol import LIMITS

PREFIX = "customs/post-1/dev-1"
CLI = [sys.executable, "-m", "edge.cli"]
#: SIGKILLs of the service, broker restarts, and the longest a run lives before its kill.
KILLS = 52
BROKER_RESTART_EVERY = 10
LIFE_S = (0.3, 3.2)
#: Bound of the final run that delivers what is left, s.
SETTLE_S = 60.0


def write_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[device]
id = "dev-1"
post = "post-1"
data_dir = "{tmp_path / "data"}"

[instrument]
integration_ms = {LIMITS.integration_ms[0]}
coadds = 1

[mqtt]
host = "127.0.0.1"
port = {port}
reconnect_min_s = 0.1
reconnect_max_s = 0.3
keepalive_s = 5

[logging]
level = "INFO"
"""
    )
    return path


class ControlRoom:
    """Sends ``scan`` requests (correlation data = request id) and keeps track of answers."""

    def __init__(self, port: int, sub: Subscriber) -> None:
        self.sub = sub
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="soak-control", protocol=mqtt.MQTTv5
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect_async("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        self.sent: dict[str, int] = defaultdict(int)
        self.n = 0

    def send(self, rid: str) -> None:
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = rid.encode()
        body = json.dumps({"consignment": f"SOAK {rid}", "request_id": rid})
        self.client.publish(f"{PREFIX}/cmd/scan", body, qos=1, properties=props)
        self.sent[rid] += 1

    def new(self) -> str:
        self.n += 1
        rid = f"soak-{self.n:04d}"
        self.send(rid)
        return rid

    def answers(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for m in self.sub.on(f"{PREFIX}/cmd/scan/response"):
            corr = getattr(m.properties, "CorrelationData", None)
            if corr:
                out[corr.decode()].append(m.json())
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def start_service(config: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    try:
        return subprocess.Popen(
            [*CLI, "--config", str(config), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        out.close()


def committed_seqs(data: Path) -> tuple[int, int]:
    """(last seq the outbox allocated, results it dropped): read from the outbox file."""
    db = sqlite3.connect(f"file:{data / 'outbox.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
    finally:
        db.close()
    return int(meta["next_seq"]) - 1, int(meta["dropped"])


def archived_seqs(data: Path) -> set[int]:
    db = sqlite3.connect(f"file:{data / 'archive.sqlite'}?mode=ro", uri=True, timeout=10)
    try:
        return {int(r[0]) for r in db.execute("SELECT json_extract(result, '$.seq') FROM scans")}
    finally:
        db.close()


def test_sigkill_soak_loses_no_committed_result_and_runs_no_request_twice(
    tmp_path: Path, mosquitto_factory: BrokerFactory
) -> None:
    broker: Broker = mosquitto_factory(persistence=True)
    config = write_config(tmp_path, broker.port)
    data = tmp_path / "data"
    log = tmp_path / "service.log"
    sub = Subscriber(
        broker.port,
        [f"{PREFIX}/scan/result", f"{PREFIX}/cmd/scan/response"],
        persistent=True,
        client_id="soak-subscriber",
    )
    sub.wait_subscribed()
    room = ControlRoom(broker.port, sub)
    rng = random.Random(8)
    kills = restarts = 0
    proc: subprocess.Popen[bytes] | None = None
    t0 = time.monotonic()
    try:
        for cycle in range(KILLS):
            proc = start_service(config, log)
            life_end = time.monotonic() + rng.uniform(*LIFE_S)
            while time.monotonic() < life_end:
                answered = room.answers()
                unanswered = [r for r in room.sent if r not in answered]
                if len(unanswered) < 3:
                    room.new()
                elif rng.random() < 0.5:  # a retry with the same id
                    room.send(rng.choice(unanswered))
                if answered and rng.random() < 0.2:  # a repeat of an answered one
                    room.send(rng.choice(sorted(answered)))
                time.sleep(0.25)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            kills += 1
            if cycle % BROKER_RESTART_EVERY == BROKER_RESTART_EVERY - 1:
                broker.restart()
                restarts += 1
        soak_s = time.monotonic() - t0

        # the last run: everything waiting goes out, every request is answered
        proc = start_service(config, log)
        deadline = time.monotonic() + SETTLE_S
        while True:
            answered = room.answers()
            unanswered = [r for r in room.sent if r not in answered]
            last_seq, dropped = (
                committed_seqs(data) if (data / "outbox.sqlite3").exists() else (0, 0)
            )
            got = {m.json()["seq"] for m in sub.on(f"{PREFIX}/scan/result")}
            if not unanswered and set(range(1, last_seq + 1)) <= got:
                break
            assert time.monotonic() < deadline, (
                f"after {SETTLE_S} s: {len(unanswered)} unanswered, "
                f"{len(set(range(1, last_seq + 1)) - got)} of {last_seq} results missing"
            )
            for rid in unanswered:  # a control room retries what was not answered
                room.send(rid)
            time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        room.close()

    # -- the counts ------------------------------------------------------------------------
    last_seq, dropped = committed_seqs(data)
    results = [m.json() for m in sub.on(f"{PREFIX}/scan/result")]
    received = {r["seq"] for r in results}
    lost = set(range(1, last_seq + 1)) - received
    scans_of: dict[str, set[str]] = defaultdict(set)
    for r in results:
        scans_of[r["extra"]["request_id"]].add(r["scan_id"])
    twice = {rid: ids for rid, ids in scans_of.items() if len(ids) > 1}
    answers = room.answers()
    answered_ids: dict[str, set[str]] = defaultdict(set)
    for rid, bodies in answers.items():
        for b in bodies:
            if b["ok"]:
                answered_ids[rid].add(b["result"]["scan_id"])
    inconsistent = {rid: ids for rid, ids in answered_ids.items() if len(ids) > 1}
    not_run_again = sum(1 for bodies in answers.values() if any(not b["ok"] for b in bodies))
    duplicates = len(results) - len({r["scan_id"] for r in results})
    archived = archived_seqs(data)
    print(
        f"\nSIGKILL soak: {kills} kills, {restarts} broker restarts, {soak_s:.0f} s;"
        f" {len(room.sent)} request ids sent {sum(room.sent.values())} times,"
        f" {len(answers)} answered ({not_run_again} answered 'not run again'),"
        f" {len(scans_of)} scanned; committed seqs 1..{last_seq} (dropped {dropped}),"
        f" received {len(received)} distinct ({duplicates} duplicate deliveries),"
        f" lost {len(lost)}; archived {len(archived)}; request ids scanned twice {len(twice)}"
    )
    assert kills >= 50 and restarts >= 4
    assert last_seq > 0 and dropped == 0
    assert not lost, sorted(lost)
    assert archived <= set(range(1, last_seq + 1))
    assert not twice, twice
    assert not inconsistent, inconsistent
    for rid, ids in answered_ids.items():  # an answer names the scan that carried the id
        assert ids == scans_of[rid], (rid, ids, scans_of.get(rid))
    assert set(scans_of) <= set(room.sent)

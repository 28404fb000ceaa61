"""Two ingesters on one MQTT 5 shared subscription writing one database; one is killed
(SIGKILL) midway and restarted with its client id, as systemd would. Every result is stored
exactly once and none is lost. Real mosquitto, real PostgreSQL and SQLite, real processes
(``spectra-edge console --no-web``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mosquitto_broker import Broker
from sim_devices import SimDevice
from sqlalchemy import func, select

from controlroom.db import open_database
from controlroom.db.schema import Result
from controlroom.keys import register_key

N_PER_DEVICE = 600


def start_ingester(url: str, port: int, client_id: str, log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("spectra-edge")
    return subprocess.Popen(
        [
            str(exe),
            "console",
            "--no-web",
            "--db",
            url,
            "--mqtt-port",
            str(port),
            "--client-id",
            client_id,
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_ready(log: Path, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count("ingesting into") >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"ingester not ready: {log.read_text(errors='replace')[-2000:]}")


def test_two_ingesters_one_killed_midway(
    console_db_url: str, mosquitto: Broker, tmp_path: Path
) -> None:
    db = open_database(console_db_url)
    devices = [SimDevice(mosquitto.port, f"post-{i}", f"dev-{i}") for i in range(3)]
    with db.session() as s:
        for d in devices:
            register_key(s, d.prefix, d.key.public_b64, state="approved", by="test")
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = start_ingester(console_db_url, mosquitto.port, "ingest-a", log_a)
    b = start_ingester(console_db_url, mosquitto.port, "ingest-b", log_b)
    procs = [a, b]
    try:
        wait_ready(log_a, 1)
        wait_ready(log_b, 1)
        time.sleep(1.0)  # both subscriptions in place
        sent: list[str] = []
        killed_at = None
        stored_at_kill = stored_at_restart = 0
        for i in range(N_PER_DEVICE):
            for d in devices:
                r = d.make_result()
                d.send(r)
                sent.append(r["scan_id"])
            if i == N_PER_DEVICE // 3:
                a.send_signal(signal.SIGKILL)  # mid-batch, no clean disconnect
                a.wait(10)
                killed_at = len(sent)
                with db.session() as s:
                    stored_at_kill = s.execute(select(func.count(Result.id))).scalar_one()
            if i == 2 * N_PER_DEVICE // 3:
                with db.session() as s:
                    stored_at_restart = s.execute(select(func.count(Result.id))).scalar_one()
                a = start_ingester(console_db_url, mosquitto.port, "ingest-a", log_a)
                procs.append(a)
            time.sleep(0.001)
        assert killed_at is not None and 0 < stored_at_kill < killed_at

        def stored() -> int:
            with db.session() as s:
                return int(s.execute(select(func.count(Result.id))).scalar_one())

        deadline = time.monotonic() + 90
        while stored() < len(sent) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        with db.session() as s:
            ids = [x for (x,) in s.execute(select(Result.scan_id))]
        assert len(ids) == len(set(ids)) == len(sent), (len(ids), len(sent))
        assert set(ids) == set(sent)
        # B kept ingesting its share while A was dead (A's share waited in A's session)
        assert stored_at_restart > stored_at_kill
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
        for d in devices:
            d.close()
        db.close()

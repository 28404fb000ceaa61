"""``spectra-edge run`` as systemd runs it (``Type=notify``, ``WatchdogSec=``, ``ExecReload=kill
-HUP``), against a fake notify socket: READY=1 with the shipped library and model open,
WATCHDOG=1 pings, SIGHUP -> RELOADING=1 then READY=1 with a fresh ready.json, SIGTERM ->
STOPPING=1 and exit 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mosquitto_broker import Broker
from notify_socket import NotifySocket
from test_service_e2e import write_config

from edge.shipped import shipped_models_dir


def test_run_speaks_the_notify_protocol_and_reloads_on_sighup(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = write_config(tmp_path, mosquitto.port)
    sock = NotifySocket(tmp_path / "notify.sock")
    env = dict(os.environ, NOTIFY_SOCKET=str(sock.path), WATCHDOG_USEC="1000000")
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "--config", str(cfg), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd="/",
    )
    try:
        ready = sock.wait_for(lambda m: m.get("READY") == "1", 120)
        assert ready["STATUS"].startswith("ready;")
        doc = json.loads((tmp_path / "data" / "ready.json").read_text())
        assert doc["pid"] == proc.pid and doc["outbox_writable"] is True
        assert doc["data_release"] == str(shipped_models_dir().resolve())
        sock.wait_for(lambda m: m.get("WATCHDOG") == "1", 5)
        t = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        sock.wait_for(lambda m: m.get("RELOADING") == "1", 30, after=t)
        sock.wait_for(lambda m: m.get("READY") == "1", 120, after=t)
        reloaded = json.loads((tmp_path / "data" / "ready.json").read_text())
        assert reloaded["time_epoch"] > doc["time_epoch"]
        assert proc.poll() is None  # SIGHUP did not kill it
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out.decode()[-2000:]
        assert any(m.get("STOPPING") == "1" for m in sock.since(t))
        assert b"reloading the identifier" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        sock.close()

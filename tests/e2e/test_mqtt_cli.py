"""The CLI side of delivery: `spectra-edge scan` delivers, `outbox status` / `outbox flush`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers_mqtt import Subscriber, make_config, make_identification, validate_message
from mosquitto_broker import Broker
from paths import PROJECT

from edge.cli import main
from edge.publish import deliver_result

PREFIX = "customs/post-1/dev-1"
RESULT = f"{PREFIX}/scan/result"


def _config_file(tmp_path: Path, port: int, timeout: float = 10.0) -> Path:
    f = tmp_path / "cfg.toml"
    f.write_text(
        f'[device]\nid = "dev-1"\npost = "post-1"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nreconnect_min_s = 0.1\n'
        f"reconnect_max_s = 0.5\n[outbox]\nflush_timeout_s = {timeout}\n"
    )
    return f


def test_outbox_status_and_flush(
    tmp_path: Path, mosquitto: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = _config_file(tmp_path, mosquitto.port)
    cfg = make_config(tmp_path / "data", mosquitto.port)
    mosquitto.stop()
    reports = [deliver_result(cfg, make_identification(i), timeout=0.3) for i in range(3)]
    assert not any(r.delivered for r in reports)

    assert main(["outbox", "status", "--config", str(cfg_file)]) == 0
    out = capsys.readouterr().out
    assert "waiting" in out
    lines = {
        ln.split("│")[1].strip(): ln.split("│")[2].strip()
        for ln in out.splitlines()
        if ln.count("│") == 3
    }
    assert lines["waiting"] == "3"
    assert lines["dropped (outbox full)"] == "0"
    assert lines["next seq"] == "4"

    assert main(["outbox", "flush", "--config", str(cfg_file), "--timeout", "0.5"]) == 1
    assert "not reached" in capsys.readouterr().err

    mosquitto.start()
    sub = Subscriber(mosquitto.port, [RESULT])
    try:
        sub.wait_subscribed()
        assert main(["outbox", "flush", "--config", str(cfg_file)]) == 0
        assert "delivered 3, 0 still waiting" in capsys.readouterr().err
        got = sub.wait_count(RESULT, 3)
    finally:
        sub.close()
    payloads = [m.json() for m in got]
    assert [p["scan_id"] for p in payloads] == [r.scan_id for r in reports]
    assert all(p["historical"] is True for p in payloads)
    for p in payloads:
        validate_message(RESULT, p)
    assert main(["outbox", "status", "--config", str(cfg_file)]) == 0
    assert "delivered (total)" in capsys.readouterr().out


@pytest.mark.skipif(not (PROJECT / "models" / "model").exists(), reason="no shipped model")
def test_scan_command_delivers_to_broker(tmp_path: Path, mosquitto: Broker) -> None:
    cfg_file = _config_file(tmp_path, mosquitto.port)
    sub = Subscriber(mosquitto.port, [RESULT])
    sub.wait_subscribed()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge.cli",
                "scan",
                "--config",
                str(cfg_file),
                "--reference",
                "MSKU7654321",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert "delivered to the broker" in proc.stderr
        got = sub.wait_count(RESULT, 1, timeout=10)[0].json()
    finally:
        sub.close()
    validate_message(RESULT, got)
    assert got["consignment"] == "MSKU7654321"
    assert got["historical"] is False


def test_scan_command_without_broker_says_queued(tmp_path: Path) -> None:
    from mosquitto_broker import free_port

    cfg_file = _config_file(tmp_path, free_port(), timeout=1.0)
    if not (PROJECT / "models" / "model").exists():
        pytest.skip("no shipped model")
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "scan", "--config", str(cfg_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "queued in the outbox" in proc.stderr

"""End to end with the real stack: simulated instrument, shipped library, real broker, CLI.

* MockFactory button presses on the real pipeline (long: background; short: scan of what the
  test, as the officer, placed through the simulator's sample handler) -> a signed result;
* ``spectra-edge run`` as a process: online, a remote scan, SIGTERM -> ``stopped``, exit 0;
* ``spectra-edge export`` of an archived scan, read back by the independent ``jcamp`` reader;
* ``spectra-edge monitor --once`` shows the device, its result and its valid signature.

The demo has its own file, tests/test_demo.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from helpers_mqtt import Requester, Subscriber, make_config, validate_message
from mosquitto_broker import Broker

from edge.publish.signing import load_public_key, verify
from edge.scan.pipeline import ScanPipeline
from edge.service import Service
from edge.service.run import engine_factory, open_panel
from edge.store.archive import Archive

PREFIX = "customs/post-1/dev-1"
CLI = [sys.executable, "-m", "edge.cli"]


def write_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[device]
id = "dev-1"
post = "post-1"
data_dir = "{tmp_path / "data"}"

[panel]
pin_factory = "mock"

[mqtt]
host = "127.0.0.1"
port = {port}
reconnect_min_s = 0.1
reconnect_max_s = 0.5
keepalive_s = 5

[logging]
level = "INFO"
"""
    )
    return path


def test_button_press_on_the_real_pipeline_reaches_the_broker(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = make_config(
        tmp_path / "data", mosquitto.port, panel={"pin_factory": "mock", "long_press_s": 0.3}
    )
    watcher = Subscriber(mosquitto.port, [f"{PREFIX}/#"])
    watcher.wait_subscribed()
    panel = open_panel(cfg)
    assert panel is not None
    opened: list[ScanPipeline] = []

    def open_engine() -> ScanPipeline:
        opened.append(engine_factory(cfg))
        return opened[-1]

    service = Service(cfg, open_engine, panel=panel)
    try:
        service.start()
        (pipeline,) = opened
        samples = pipeline.samples
        assert samples is not None  # the simulator's hands
        pin = panel.factory.pin(cfg.panel.scan_button)
        pin.drive_low()  # long press on the clean crystal: a background
        time.sleep(0.6)
        pin.drive_high()
        deadline = time.monotonic() + 30
        while pipeline.background is None or not service.worker.idle:
            assert time.monotonic() < deadline, "no background taken"
            time.sleep(0.02)
        samples.place("TNT")  # the officer puts TNT on the crystal, short press
        pin.drive_low()
        time.sleep(0.05)
        pin.drive_high()
        (msg,) = watcher.wait_count(f"{PREFIX}/scan/result", 1, timeout=60)
        result = msg.json()
        validate_message(msg.topic, result)
        assert result["status"] == "identified", result
        assert result["substance"]["name"] == "TNT", result
        info = next(m.json() for m in watcher.on(f"{PREFIX}/info"))
        assert verify(result, load_public_key(info["public_key"]["value"]))
        assert info["instrument"]["pixels"] == 1024
        alarm = watcher.wait_for(
            lambda ms: any(m.topic == f"{PREFIX}/alarm" and m.json()["active"] for m in ms)
        )
        assert [m for m in alarm if m.topic == f"{PREFIX}/alarm"][-1].json()["scan_id"] == (
            result["scan_id"]
        )
        deadline = time.monotonic() + 5  # the LED follows right after the publish
        while not (panel.alarm_led.is_lit and panel.state == "alarm"):
            assert time.monotonic() < deadline, (panel.state, panel.alarm_led.is_lit)
            time.sleep(0.01)
        assert panel.alarm_led.is_lit and panel.state == "alarm"
        rec = service.archive.get(result["scan_id"]).data
        assert rec.sample is not None and rec.sample.size == 1024
        assert rec.spectrum.size == rec.wavenumbers.size
    finally:
        service.stop()
        panel.close()
        watcher.close()


def run_cli(*args: str, config: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_run_process_scans_remotely_and_stops_cleanly_on_sigterm(
    tmp_path: Path, mosquitto: Broker
) -> None:
    config = write_config(tmp_path, mosquitto.port)
    watcher = Subscriber(mosquitto.port, [f"{PREFIX}/#"])
    watcher.wait_subscribed()
    proc = subprocess.Popen(
        [*CLI, "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        watcher.wait_for(
            lambda ms: any(
                m.topic == f"{PREFIX}/status" and m.json()["state"] == "online" for m in ms
            ),
            timeout=30,
        )
        # the control-room monitor watches while the scan happens (collects, then prints)
        monitor = subprocess.Popen(
            [*CLI, "--config", str(config), "monitor", "--once", "--duration", "8"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "250"},
        )
        deadline = time.monotonic() + 30  # the broker logs the monitor's connection
        while "spectra-edge-monitor" not in mosquitto.log_file.read_text():
            assert time.monotonic() < deadline and monitor.poll() is None, "monitor not up"
            time.sleep(0.05)
        time.sleep(0.5)  # and its SUBSCRIBE right after
        # remote scan (the process is a separate client; retry until its subscription is live)
        req = Requester(mosquitto.port)
        try:
            deadline = time.monotonic() + 20
            body: dict[str, Any] | None = None
            while body is None and time.monotonic() < deadline:
                req.send("ping", {}, b"up")
                with contextlib.suppress(TimeoutError):
                    body = req.response(b"up", timeout=0.5)
            assert body is not None and body["ok"]
            req.send("scan", {"consignment": "TGHU 8812345"}, b"remote-scan")
            resp = req.response(b"remote-scan", timeout=60)
            assert resp["ok"], resp
        finally:
            req.close()
        (res,) = [m.json() for m in watcher.wait_count(f"{PREFIX}/scan/result", 1, timeout=30)]
        assert res["consignment"] == "TGHU 8812345"
        assert res["scan_id"] == resp["result"]["scan_id"]
        mon_out, mon_err = monitor.communicate(timeout=40)
        assert monitor.returncode == 0, mon_err
        assert PREFIX in mon_out and "online" in mon_out
        assert "TGHU 8812345" in mon_out and "valid" in mon_out and "INVALID" not in mon_out

        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert time.monotonic() - t0 < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    states = [m.json()["state"] for m in watcher.on(f"{PREFIX}/status")]
    assert states[-1] == "stopped", states
    assert "signal SIGTERM: stopping" in out and "spectra-edge stopped" in out  # journal lines
    watcher.close()

    # the archived scan exports to JCAMP-DX that an independent reader accepts
    import jcamp

    jdx = tmp_path / "scan.jdx"
    done = run_cli("export", res["scan_id"], "-o", str(jdx), config=config)
    assert done.returncode == 0, done.stderr
    data = jcamp.readfile(str(jdx))
    with Archive(tmp_path / "data" / "archive.sqlite") as ar:
        rec = ar.get(res["scan_id"])
    np.testing.assert_allclose(data["y"], rec.data.spectrum, rtol=1e-4, atol=1e-6)
    listed = run_cli("export", "--list", config=config)
    assert res["scan_id"] in listed.stdout and "TGHU 8812345" in listed.stdout
    missing = run_cli("export", "no-such-scan", config=config)
    assert missing.returncode == 1 and "not in the archive" in missing.stderr


def test_export_without_scan_id_is_a_usage_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, 1883)
    done = run_cli("export", config=config)
    assert done.returncode == 2 and "SCAN_ID" in done.stderr

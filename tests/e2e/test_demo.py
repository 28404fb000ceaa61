"""``spectra-edge demo`` (what ``make demo`` runs) against a test broker, and without one."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from mosquitto_broker import Broker, free_port

CLI = [sys.executable, "-m", "edge.cli"]


def test_demo_runs_to_completion_against_a_test_broker(mosquitto: Broker) -> None:
    done = subprocess.run(
        [*CLI, "demo", "--port", str(mosquitto.port), "--count", "3", "--timeout", "90"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3/3 results arrived on the broker" in done.stdout
    assert len(re.findall(r"signature\s+valid\b", done.stdout)) == 3
    assert "Lactose monohydrate" in done.stdout and "Cocaine HCl" in done.stdout
    # the cut cocaine raised the alarm; the demo's control room acknowledged it
    assert "ack cleared the alarm" in done.stdout


def test_demo_fails_cleanly_without_a_broker() -> None:
    done = subprocess.run(
        [*CLI, "demo", "--port", str(free_port()), "--count", "1", "--timeout", "20"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no MQTT broker" in done.stderr

"""The stop deadline fits systemd's: SIGTERM -> Service.stop joins everything within
STOP_TIMEOUT_S (plus what the MQTT link may overrun), well inside TimeoutStopSec, after which
systemd would SIGKILL the service mid-write."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from edge.service import STOP_TIMEOUT_S, stop_budget_s
from edge.service.app import Service

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "spectra-edge.service"
#: Time the process needs after Service.stop: closing the panel, interpreter exit.
EXIT_MARGIN_S = 2.0


def systemd_seconds(value: str) -> float:
    """A systemd time span ("20", "20s", "1min 30s", "500ms") in seconds."""
    units = {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "": 1.0}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value.strip()):
        total += float(number) * units[unit]
    return total


def read_unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes="#")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT, encoding="utf-8")
    return parser


def test_systemd_time_spans() -> None:
    assert systemd_seconds("20") == 20 and systemd_seconds("1min 30s") == 90
    assert systemd_seconds("500ms") == 0.5


def test_the_stop_budget_fits_inside_timeout_stop_sec() -> None:
    service = read_unit()["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert service["ExecStart"].endswith(("spectra-edge run", "-m edge.cli run"))
    timeout_stop = systemd_seconds(service["TimeoutStopSec"])
    assert stop_budget_s() == stop_budget_s(STOP_TIMEOUT_S) > STOP_TIMEOUT_S
    assert stop_budget_s() + EXIT_MARGIN_S <= timeout_stop, (
        f"Service.stop may take {stop_budget_s():.1f} s; TimeoutStopSec={timeout_stop:g} "
        "leaves too little for the process to exit"
    )


def test_the_service_stops_with_that_deadline_by_default() -> None:
    default = Service.stop.__defaults__
    assert default == (STOP_TIMEOUT_S,)


def test_a_network_thread_that_will_not_stop_cannot_hold_the_stop() -> None:
    """paho's loop_stop joins its thread without a bound; stop_loop gives up at its timeout."""
    import threading
    import time

    from edge.publish.client import stop_loop

    release = threading.Event()

    class Stuck:
        stopped = False

        def loop_stop(self) -> None:
            release.wait(10.0)  # a network thread stuck in a connect
            self.stopped = True

    stuck = Stuck()
    t0 = time.monotonic()
    assert stop_loop(stuck, timeout=0.2) is False
    assert time.monotonic() - t0 < 1.0 and not stuck.stopped
    release.set()

    class Prompt:
        def loop_stop(self) -> None:
            pass

    assert stop_loop(Prompt(), timeout=1.0) is True

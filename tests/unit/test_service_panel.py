"""The panel as the service drives it: typed calls, failures logged not raised, one rule for
what the lights show."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from service_fakes import RecordingPanel

from edge.service.panel import NullPanel, SafePanel, Severity


class BrokenPanel:
    """A panel whose every light raises (a dead GPIO chip)."""

    def __init__(self) -> None:
        self.on_scan: Callable[[], None] | None = None
        self.on_background: Callable[[], None] | None = None
        self.tried: list[str] = []

    def _fail(self, what: str) -> None:
        self.tried.append(what)
        raise OSError(f"{what}: GPIO chip gone")

    def show_ready(self) -> None:
        self._fail("ready")

    def show_busy(self) -> None:
        self._fail("busy")

    def show_result(self, severity: Severity) -> None:
        self._fail(f"result:{severity}")

    def show_error(self) -> None:
        self._fail("error")

    def clear_alarm(self) -> None:
        self._fail("clear_alarm")


def test_a_broken_panel_never_raises_and_every_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = BrokenPanel()
    panel = SafePanel(broken)
    panel.show_busy()
    panel.show_result("alarm")
    panel.show_error()
    panel.clear_alarm()
    panel.show_idle(faulted=False, alarm_active=False)
    assert broken.tried == ["busy", "result:alarm", "error", "clear_alarm", "ready"]
    failed = [r for r in caplog.records if r.getMessage().startswith("panel: ")]
    assert len(failed) == 5 and all(r.exc_info for r in failed)  # each logged with its cause


def test_bind_routes_the_button_and_unbinds() -> None:
    port = BrokenPanel()
    presses: list[str] = []
    SafePanel(port).bind(lambda: presses.append("scan"), lambda: presses.append("bg"))
    assert port.on_scan is not None and port.on_background is not None
    port.on_scan()
    port.on_background()
    assert presses == ["scan", "bg"]
    SafePanel(port).bind(None, None)
    assert port.on_scan is None and port.on_background is None


def test_null_panel_does_nothing() -> None:
    panel = NullPanel()
    panel.bind(lambda: None, None)
    panel.show_outcome("alarm", faulted=False, alarm_active=True)
    panel.show_instrument_back(alarm_active=True)
    assert repr(panel) == "<NullPanel>"


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"faulted": True, "alarm_active": True, "announce": True}, ["error"]),
        ({"faulted": False, "alarm_active": True, "announce": True}, ["result:alarm"]),
        ({"faulted": False, "alarm_active": True}, ["ready"]),  # red stays, green on
        ({"faulted": False, "alarm_active": False, "announce": True}, ["ready"]),
    ],
)
def test_idle_rule(kwargs: dict[str, Any], shown: list[str]) -> None:
    panel = RecordingPanel()
    panel.show_idle(**kwargs)
    assert panel.calls == shown


@pytest.mark.parametrize(
    ("severity", "alarm_active", "shown"),
    [
        (None, False, ["ready"]),  # a background
        ("info", False, ["result:info"]),
        ("warn", False, ["result:warn"]),
        ("info", True, ["ready"]),  # an unacknowledged alarm keeps its red light
        ("warn", True, ["ready"]),
        ("alarm", True, ["result:alarm"]),  # a new alarm is shown again
    ],
)
def test_outcome_rule(severity: Severity | None, alarm_active: bool, shown: list[str]) -> None:
    panel = RecordingPanel()
    panel.show_outcome(severity, faulted=False, alarm_active=alarm_active)
    assert panel.calls == shown


def test_instrument_back_ends_the_error_blink() -> None:
    panel = RecordingPanel()
    panel.show_instrument_back(alarm_active=False)
    assert panel.calls == ["clear_alarm", "ready"]
    panel.calls.clear()
    panel.show_instrument_back(alarm_active=True)
    assert panel.calls == ["clear_alarm", "result:alarm"]

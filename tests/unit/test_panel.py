"""The operator panel on gpiozero's MockFactory: presses, indicators, buzzer, lines, close."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from unittest import mock

import pytest

from hal.errors import PanelError
from hal.panel import Panel, PanelFallbackWarning, make_pin_factory

PINS = dict(scan_button=17, ready_led=5, busy_led=6, alarm_led=13, buzzer=19)
HOLD = 0.15  # long-press time used in the tests, s


class Calls:
    """Counts callbacks and lets a test wait for one, with a deadline."""

    def __init__(self) -> None:
        self.scan = 0
        self.background = 0
        self.event = threading.Event()

    def on_scan(self) -> None:
        self.scan += 1
        self.event.set()

    def on_background(self) -> None:
        self.background += 1
        self.event.set()


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def panel(calls: Calls) -> Iterator[Panel]:
    with Panel(
        **PINS,
        long_press_s=HOLD,
        pin_factory="mock",
        on_scan=calls.on_scan,
        on_background=calls.on_background,
    ) as p:
        yield p


def _press(panel: Panel, seconds: float) -> None:
    pin = panel.factory.pin(17)
    pin.drive_low()
    time.sleep(seconds)
    pin.drive_high()


def _wait(predicate: object, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_short_press_scans_once(panel: Panel, calls: Calls) -> None:
    _press(panel, 0.02)
    assert calls.event.wait(2.0)
    time.sleep(HOLD * 2)  # a late hold must not fire either
    assert (calls.scan, calls.background) == (1, 0)


def test_long_press_takes_background_and_does_not_scan(panel: Panel, calls: Calls) -> None:
    pin = panel.factory.pin(17)
    pin.drive_low()
    assert _wait(lambda: calls.background == 1), "hold never fired"
    assert calls.scan == 0  # fired while still held
    time.sleep(HOLD)
    pin.drive_high()
    time.sleep(0.05)
    assert (calls.scan, calls.background) == (0, 1)


def test_sequence_of_presses(panel: Panel, calls: Calls) -> None:
    for seconds in (0.02, HOLD * 3, 0.02, 0.02, HOLD * 3):
        _press(panel, seconds)
        time.sleep(0.03)
    assert _wait(lambda: (calls.scan, calls.background) == (3, 2))


def test_failing_callback_is_logged_and_the_panel_keeps_working(
    calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("scan failed")

    with Panel(**PINS, long_press_s=HOLD, pin_factory="mock", on_scan=boom) as p:
        _press(p, 0.02)
        assert _wait(lambda: "callback failed" in caplog.text)
        p.on_scan = calls.on_scan
        _press(p, 0.02)
        assert calls.event.wait(2.0) and calls.scan == 1


def test_ready_busy_and_results(panel: Panel) -> None:
    panel.show_ready()
    assert panel.ready_led.is_lit and not panel.busy_led.is_lit and panel.state == "ready"
    panel.show_busy()
    assert panel.busy_led.is_lit and not panel.ready_led.is_lit and panel.state == "busy"

    panel.show_result("info")
    assert panel.ready_led.is_lit and not panel.busy_led.is_lit and not panel.alarm_led.is_lit
    assert panel.buzzer.is_active  # one short beep ...
    assert _wait(lambda: not panel.buzzer.is_active, 1.0)  # ... that ends
    assert panel.state == "info"


def test_alarm_is_steady_red_with_repeated_beeps_until_cleared(panel: Panel) -> None:
    panel.show_busy()
    panel.show_result("alarm")
    assert panel.alarm_led.value == 1 and panel.state == "alarm"
    toggles = 0
    last = panel.buzzer.is_active
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        now = panel.buzzer.is_active
        toggles += now != last
        last = now
        time.sleep(0.01)
    assert toggles >= 3  # beeping, not a steady tone
    assert panel.alarm_led.value == 1  # LED stays steady
    panel.show_ready()
    assert panel.state == "alarm" and panel.alarm_led.is_lit  # needs an explicit clear
    panel.clear_alarm()
    assert not panel.alarm_led.is_lit and not panel.buzzer.is_active
    assert panel.state == "ready" and panel.ready_led.is_lit


def test_warn_blinks_red(panel: Panel) -> None:
    panel.show_result("warn")
    seen = set()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and len(seen) < 2:
        seen.add(bool(panel.alarm_led.is_lit))
        time.sleep(0.02)
    assert seen == {True, False}
    with pytest.raises(ValueError, match="severity"):
        panel.show_result("panic")  # type: ignore[arg-type]


def test_error_is_a_long_tone_and_fast_red_blink(panel: Panel) -> None:
    panel.show_ready()
    panel.show_error()
    assert panel.state == "error" and not panel.ready_led.is_lit
    time.sleep(0.5)
    assert panel.buzzer.is_active  # still sounding after 0.5 s: a long tone
    panel.clear_alarm()
    assert not panel.buzzer.is_active and not panel.alarm_led.is_lit


def test_close_is_idempotent_and_releases_pins(calls: Calls) -> None:
    p = Panel(**PINS, pin_factory="mock", on_scan=calls.on_scan)
    p.show_result("alarm")
    p.close()
    p.close()
    assert p.closed and p.state == "off"
    assert p.button.closed and p.buzzer.closed and p.alarm_led.closed
    with pytest.raises(PanelError, match="closed"):
        p.show_ready()


def test_bad_setup_raises_panel_error() -> None:
    with pytest.raises(PanelError, match="share a GPIO pin"):
        Panel(**{**PINS, "busy_led": 5}, pin_factory="mock")
    with pytest.raises(PanelError, match="unknown pin factory"):
        Panel(**PINS, pin_factory="wishful")
    with pytest.raises(PanelError, match="cannot set up"):
        Panel(**{**PINS, "scan_button": 999}, pin_factory="mock")
    with pytest.raises(ValueError):
        Panel(**PINS, long_press_s=0, pin_factory="mock")


@pytest.fixture
def no_default_factory() -> Iterator[None]:
    """gpiozero's shared ``Device.pin_factory`` unset before the test and restored after."""
    from gpiozero import Device

    old = Device.pin_factory
    Device.pin_factory = None
    try:
        yield
    finally:
        Device.pin_factory = old


def test_auto_falls_back_to_mock_with_a_warning_off_a_pi(no_default_factory: None) -> None:
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    with (
        mock.patch.object(Device, "ensure_pin_factory", side_effect=BadPinFactory("no Pi")),
        pytest.warns(PanelFallbackWarning, match="mock pins"),
    ):
        factory, is_mock = make_pin_factory("auto")
    assert is_mock and type(factory).__name__ == "MockFactory"
    assert Device.pin_factory is None  # the fallback is the panel's own, not gpiozero's
    factory.close()


def test_auto_uses_the_board_factory_when_there_is_one(no_default_factory: None) -> None:
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    board = MockFactory()  # stands in for a real board's factory, set the public way
    Device.pin_factory = board
    with warnings.catch_warnings():
        warnings.simplefilter("error", PanelFallbackWarning)
        factory, _ = make_pin_factory("auto")
    assert factory is board
    with mock.patch.object(board, "close", wraps=board.close) as closing:
        with Panel(**PINS, pin_factory="auto") as p:  # the panel shares it ...
            assert p.factory is board and p.button.pin is board.pin(17)
        assert p.button.closed and not closing.called  # ... and leaves it open
    board.close()


def test_a_factory_object_is_used_as_given_and_left_open() -> None:
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    with mock.patch.object(factory, "close", wraps=factory.close) as closing:
        with Panel(**PINS, pin_factory=factory) as p:
            assert p.factory is factory and p.is_mock
        assert not closing.called
        reused = Panel(**PINS, pin_factory=factory)  # the pins were released
        reused.close()
    factory.close()
    own = Panel(**PINS, pin_factory="mock")  # a factory the panel made is closed with it
    with mock.patch.object(own.factory, "close", wraps=own.factory.close) as closing:
        own.close()
    assert closing.called


def test_repr_names_the_pins_and_the_state() -> None:
    with Panel(**PINS, pin_factory="mock") as p:
        p.show_ready()
        text = repr(p)
        assert text.startswith("<hal.Panel scan_button=GPIO17 ready_led=GPIO5")
        assert "buzzer=GPIO19" in text and "MockFactory" in text and "'ready'" in text
    assert repr(p) == "<hal.Panel closed>"

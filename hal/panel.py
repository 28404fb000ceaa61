"""The operator panel on GPIO, through gpiozero: scan button, three LEDs, buzzer.

::

    scan button  (to ground, pull-up)   short press -> on_scan()
                                        held >= long_press_s -> on_background() (no scan)
    ready LED    green                  ready for a scan
    busy LED     amber                  acquiring / identifying
    alarm LED    red                    alarm: steady; warn: slow blink; error: fast blink
    buzzer                              done: one short beep; alarm: repeated beeps;
                                        error: one long tone

The pin factory is chosen by name, never by accident: ``"mock"`` uses gpiozero's
``MockFactory`` (tests, demos); ``"auto"`` uses gpiozero's ``Device.pin_factory`` for this
board and falls back to mock pins *with a warning* when no real GPIO is found. A gpiozero
factory object may be passed instead of a name. Pins are BCM numbers.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any, Literal

from hal.errors import PanelError

log = logging.getLogger(__name__)

Severity = Literal["alarm", "warn", "info"]
PanelState = Literal["off", "ready", "busy", "alarm", "warn", "info", "error"]

#: Buzzer patterns: (on_time s, off_time s, repeats).
BEEP_DONE = (0.1, 0.1, 1)
BEEP_WARN = (0.1, 0.1, 2)
BEEP_ALARM = (0.25, 0.25, 10)
TONE_ERROR = (1.5, 0.0, 1)


class PanelFallbackWarning(RuntimeWarning):
    """``pin_factory="auto"`` found no real GPIO and uses mock pins instead."""


def make_pin_factory(name: str) -> tuple[Any, bool]:
    """A gpiozero pin factory by name, and whether it is a mock one.

    ``"mock"``: a new ``MockFactory``. ``"auto"``: gpiozero's shared ``Device.pin_factory``
    for this board (``GPIOZERO_PIN_FACTORY`` honoured; set up with the public
    ``Device.ensure_pin_factory()``); when none loads, a new ``MockFactory`` and a
    :class:`PanelFallbackWarning`. Any other name raises :class:`~hal.errors.PanelError`.
    """
    try:
        from gpiozero import Device
        from gpiozero.pins.mock import MockFactory
    except ImportError as err:
        raise PanelError("the 'gpiozero' package is not installed") from err
    if name == "mock":
        return MockFactory(), True
    if name != "auto":
        raise PanelError(f"unknown pin factory {name!r}: use 'auto' or 'mock'")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gpiozero warns once per factory it tries
            Device.ensure_pin_factory()
        return Device.pin_factory, isinstance(Device.pin_factory, MockFactory)
    except Exception as err:  # BadPinFactory, ImportError, OSError ... from any backend
        message = f"no GPIO on this machine ({err}); the operator panel uses mock pins"
        warnings.warn(message, PanelFallbackWarning, stacklevel=2)
        log.warning("%s", message)
        return MockFactory(), True


class Panel:
    """The operator panel. A context manager; :meth:`close` is idempotent.

    Usage::

        from hal import Panel

        with Panel(scan_button=17, ready_led=5, busy_led=6, alarm_led=13, buzzer=19,
                   on_scan=start_scan, on_background=take_background) as panel:
            panel.show_ready()
            ...                         # callbacks arrive on gpiozero's threads
            panel.show_busy()
            panel.show_result("alarm")  # red steady + beeps until clear_alarm()

    Wiring (BCM numbers; the defaults of ``[panel]`` in the config)::

        GPIO17  pin 11  scan button to GND (internal pull-up; no resistor needed)
        GPIO5   pin 29  green LED, 330 ohm in series, to GND    (ready)
        GPIO6   pin 31  amber LED, 330 ohm in series, to GND    (busy)
        GPIO13  pin 33  red LED,   330 ohm in series, to GND    (alarm)
        GPIO19  pin 35  active buzzer (through a transistor if it draws more than ~10 mA)

    ``on_scan`` runs after a short press (on release), ``on_background`` once a press has
    lasted ``long_press_s`` (gpiozero's hold mechanism); a long press never also scans.
    Callbacks run in gpiozero's threads; an exception in one is logged, not raised.
    *pin_factory* is ``"auto"``, ``"mock"`` (see :func:`make_pin_factory`) or a gpiozero
    factory object; a factory the panel made itself is closed with it, a shared one is not.
    """

    def __init__(
        self,
        *,
        scan_button: int,
        ready_led: int,
        busy_led: int,
        alarm_led: int,
        buzzer: int,
        long_press_s: float = 2.0,
        pin_factory: str | Any = "auto",
        on_scan: Callable[[], None] | None = None,
        on_background: Callable[[], None] | None = None,
    ) -> None:
        if long_press_s <= 0:
            raise ValueError(f"long_press_s must be > 0, got {long_press_s}")
        #: Panel function -> BCM pin.
        self.pins = {
            "scan_button": scan_button,
            "ready_led": ready_led,
            "busy_led": busy_led,
            "alarm_led": alarm_led,
            "buzzer": buzzer,
        }
        used = list(self.pins.values())
        if len(set(used)) != len(used):
            raise PanelError(f"two panel functions share a GPIO pin: {used}")
        if isinstance(pin_factory, str):
            from gpiozero import Device

            self.factory, self.is_mock = make_pin_factory(pin_factory)
            self._owns_factory = self.factory is not Device.pin_factory  # a shared one stays
        else:
            self.factory, self._owns_factory = pin_factory, False
            self.is_mock = type(pin_factory).__name__ == "MockFactory"
        self.on_scan = on_scan
        self.on_background = on_background
        self._lock = threading.Lock()
        self._press = 0  # id of the current press
        self._decided = -1  # id of the last press already handled (held or released)
        self._state: PanelState = "off"
        self._closed = False
        self._devices: list[Any] = []
        try:
            from gpiozero import LED, Button, Buzzer

            f = self.factory
            self.button = self._add(
                Button(scan_button, pull_up=True, hold_time=long_press_s, pin_factory=f)
            )
            self.ready_led = self._add(LED(ready_led, pin_factory=f))
            self.busy_led = self._add(LED(busy_led, pin_factory=f))
            self.alarm_led = self._add(LED(alarm_led, pin_factory=f))
            self.buzzer = self._add(Buzzer(buzzer, pin_factory=f))
        except Exception as err:
            self.close()
            raise PanelError(f"cannot set up the operator panel: {err}") from err
        self.button.when_pressed = self._pressed
        self.button.when_held = self._held
        self.button.when_released = self._released

    def __repr__(self) -> str:
        if self._closed:
            return "<hal.Panel closed>"
        pins = " ".join(f"{k}=GPIO{v}" for k, v in self.pins.items())
        return f"<hal.Panel {pins} pin_factory={type(self.factory).__name__} state={self._state!r}>"

    def _add(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    # -- button --------------------------------------------------------------------------------

    def _pressed(self) -> None:
        with self._lock:
            self._press += 1

    def _held(self) -> None:
        with self._lock:
            if self._decided == self._press:
                return
            self._decided = self._press
        self._call(self.on_background, "long press (new background)")

    def _released(self) -> None:
        with self._lock:
            if self._decided == self._press:
                return  # the hold already handled this press
            self._decided = self._press
        self._call(self.on_scan, "short press (scan)")

    @staticmethod
    def _call(callback: Callable[[], None] | None, what: str) -> None:
        log.info("panel: %s", what)
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("panel: the %s callback failed", what)

    # -- indicators ----------------------------------------------------------------------------

    @property
    def state(self) -> PanelState:
        """What the panel shows now."""
        return self._state

    def show_ready(self) -> None:
        """Green on, amber off. An alarm stays shown until :meth:`clear_alarm`."""
        self._check_open()
        self.busy_led.off()
        self.ready_led.on()
        if self._state not in ("alarm", "warn", "error"):
            self._state = "ready"

    def show_busy(self) -> None:
        """Amber on, green off."""
        self._check_open()
        self.ready_led.off()
        self.busy_led.on()
        self._state = "busy"

    def show_result(self, severity: Severity) -> None:
        """The outcome of a scan: 'alarm' (red, repeated beeps), 'warn' (red blinking, two
        beeps) or 'info' (green, one beep)."""
        self._check_open()
        if severity not in ("alarm", "warn", "info"):
            raise ValueError(f"severity must be 'alarm', 'warn' or 'info', got {severity!r}")
        self.busy_led.off()
        self.ready_led.on()
        if severity == "alarm":
            self.alarm_led.on()
            self._beep(BEEP_ALARM)
        elif severity == "warn":
            self.alarm_led.blink(on_time=0.5, off_time=0.5, background=True)
            self._beep(BEEP_WARN)
        else:
            self.alarm_led.off()
            self._beep(BEEP_DONE)
        self._state = severity

    def show_error(self) -> None:
        """Something failed: red blinking fast, green and amber off, one long tone."""
        self._check_open()
        self.ready_led.off()
        self.busy_led.off()
        self.alarm_led.blink(on_time=0.1, off_time=0.1, background=True)
        self._beep(TONE_ERROR)
        self._state = "error"

    def clear_alarm(self) -> None:
        """Red off, buzzer silent; the panel shows ready again."""
        self._check_open()
        self.alarm_led.off()
        self.buzzer.off()
        self._state = "off"
        self.show_ready()

    def _beep(self, pattern: tuple[float, float, int]) -> None:
        on, off, n = pattern
        self.buzzer.beep(on_time=on, off_time=off, n=n, background=True)

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Switch everything off and release the pins; idempotent."""
        if self._closed:
            return
        self._closed = True
        for dev in reversed(self._devices):
            try:
                dev.close()
            except Exception:  # closing must not fail halfway
                log.exception("panel: closing %r failed", dev)
        self._devices.clear()
        if self._owns_factory:
            try:
                self.factory.close()
            except Exception:
                log.exception("panel: closing the pin factory failed")
        self._state = "off"

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Panel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise PanelError("the operator panel is closed")

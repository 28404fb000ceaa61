"""The operator panel as the service drives it: typed, and unable to stop a scan.

:class:`PanelPort` is what the service needs of a panel (:class:`hal.panel.Panel` has it).
The service never calls one directly: :class:`SafePanel` wraps it and logs whatever it
raises (a broken LED must not stop scanning), and :class:`NullPanel` stands in when there is
no panel. Both are a :class:`PanelView`, which also holds the service's one rule for what
the lights show when idle or after a job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, Protocol

log = logging.getLogger(__name__)

#: A scan's severity as the panel shows it (the same values as ``hal.panel.Severity``).
Severity = Literal["alarm", "warn", "info"]


class PanelPort(Protocol):
    """What the service drives on the operator panel (:class:`hal.panel.Panel` has it)."""

    on_scan: Callable[[], None] | None
    on_background: Callable[[], None] | None

    def show_ready(self) -> None: ...
    def show_busy(self) -> None: ...
    def show_result(self, severity: Severity) -> None: ...
    def show_error(self) -> None: ...
    def clear_alarm(self) -> None: ...


class PanelView:
    """The lights the service shows. Subclasses implement the five primitives; the two
    rules (:meth:`show_idle`, :meth:`show_outcome`) are the same for all."""

    def show_ready(self) -> None:
        """Green: ready to scan."""

    def show_busy(self) -> None:
        """Amber: a job is running."""

    def show_result(self, severity: Severity) -> None:
        """A scan's outcome: red and beeps (alarm), blinking red (warn), green (info)."""

    def show_error(self) -> None:
        """The error blink: the instrument is faulted."""

    def clear_alarm(self) -> None:
        """Red off, buzzer silent (an acknowledged alarm, or the end of an error blink)."""

    def bind(
        self, on_scan: Callable[[], None] | None, on_background: Callable[[], None] | None
    ) -> None:
        """Route the scan button's short and long presses (None: unbind)."""

    def show_idle(self, *, faulted: bool, alarm_active: bool, announce: bool = False) -> None:
        """Ready (green), or the error blink while faulted. An active alarm keeps its red
        light; *announce* (at start, after a recovery) shows it again."""
        if faulted:
            self.show_error()
        elif announce and alarm_active:
            self.show_result("alarm")
        else:
            self.show_ready()

    def show_instrument_back(self, *, alarm_active: bool) -> None:
        """The instrument works again: the error blink ends; ready, or the standing alarm."""
        self.clear_alarm()
        self.show_idle(faulted=False, alarm_active=alarm_active, announce=True)

    def show_outcome(self, severity: Severity | None, *, faulted: bool, alarm_active: bool) -> None:
        """After a job: *severity* of a scan, None after a background. A lesser result leaves
        an earlier, unacknowledged alarm's red light on."""
        if severity is None:
            self.show_idle(faulted=faulted, alarm_active=alarm_active)
        elif severity != "alarm" and alarm_active:
            self.show_ready()
        else:
            self.show_result(severity)


class NullPanel(PanelView):
    """No operator panel: every light is a no-op."""

    def __repr__(self) -> str:
        return "<NullPanel>"


class SafePanel(PanelView):
    """A real panel whose every failure is logged, never raised."""

    def __init__(self, panel: PanelPort) -> None:
        self.panel = panel

    def __repr__(self) -> str:
        return f"<SafePanel {self.panel!r}>"

    def _guard(self, what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:  # a broken LED must not stop scanning
            log.exception("panel: %s failed", what)

    def show_ready(self) -> None:
        """Green: ready to scan."""
        self._guard("show_ready", self.panel.show_ready)

    def show_busy(self) -> None:
        """Amber: a job is running."""
        self._guard("show_busy", self.panel.show_busy)

    def show_result(self, severity: Severity) -> None:
        """A scan's outcome."""
        self._guard(f"show_result({severity})", lambda: self.panel.show_result(severity))

    def show_error(self) -> None:
        """The error blink."""
        self._guard("show_error", self.panel.show_error)

    def clear_alarm(self) -> None:
        """Red off, buzzer silent."""
        self._guard("clear_alarm", self.panel.clear_alarm)

    def bind(
        self, on_scan: Callable[[], None] | None, on_background: Callable[[], None] | None
    ) -> None:
        """Route the scan button's short and long presses to the service (None: unbind)."""
        self.panel.on_scan = on_scan
        self.panel.on_background = on_background

"""``spectra-edge run``: the service process, as systemd starts it.

Logs go to stdout (the journal) at ``logging.level``; SIGTERM and SIGINT stop it cleanly
(``stopped`` published, threads joined within one deadline that starts at the signal, exit
0); SIGHUP (``systemctl reload``, after a data-only update) reloads the identifier. A
missing panel or instrument does not stop it: the first is logged, the second is an
instrument fault that is retried.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from edge.config.schema import Config
from edge.lifecycle import Deadline, SystemClock
from edge.service.app import STOP_TIMEOUT_S, Service
from hal.errors import PanelError
from hal.panel import Panel

if TYPE_CHECKING:
    from edge.scan.pipeline import ScanPipeline

log = logging.getLogger(__name__)


def setup_logging(cfg: Config) -> None:
    """One line per event on stdout, for the journal (which adds its own timestamps)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(cfg.logging.level)


def open_panel(cfg: Config) -> Panel | None:
    """The operator panel from ``[panel]``, or None (disabled, or it cannot be set up)."""
    p = cfg.panel
    if not p.enabled:
        return None
    try:
        return Panel(
            scan_button=p.scan_button,
            ready_led=p.ready_led,
            busy_led=p.busy_led,
            alarm_led=p.alarm_led,
            buzzer=p.buzzer,
            long_press_s=p.long_press_s,
            pin_factory=p.pin_factory,
        )
    except PanelError as err:
        log.error("operator panel unavailable, running without it: %s", err)
        return None


def engine_factory(cfg: Config) -> ScanPipeline:
    """The real engine: instrument + identification (:class:`edge.scan.pipeline.ScanPipeline`),
    with the instrument's sample handler for whoever simulates the officer."""
    from edge.scan.pipeline import ScanPipeline

    return ScanPipeline.open(cfg)


def run_until(
    service: Service,
    stop: threading.Event,
    deadline: list[Deadline],
    reload: threading.Event | None = None,
) -> None:
    """Start *service*, block until *stop* is set, then stop it within the deadline the
    signal started (``deadline[0]`` when the handler set one, else :data:`STOP_TIMEOUT_S`).
    Each time *reload* is set (SIGHUP), the service reloads its identifier."""
    service.start()
    try:
        while not stop.wait(0.2):
            if reload is not None and reload.is_set():
                reload.clear()
                service.reload(cancel=stop)
    finally:
        service.stop(deadline[0] if deadline else STOP_TIMEOUT_S)


def run_service(cfg: Config, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or *stop*); returns the exit status."""
    stop = stop or threading.Event()
    reload = threading.Event()
    deadline: list[Deadline] = []  # the stop deadline, started by the signal

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        if not deadline:
            deadline.append(Deadline(SystemClock(), STOP_TIMEOUT_S))
        stop.set()

    def on_hangup(signum: int, frame: FrameType | None) -> None:
        reload.set()  # the main loop reloads: a signal handler does no work

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, on_hangup)
    panel = open_panel(cfg)
    service = Service(cfg, lambda: engine_factory(cfg), panel=panel)
    try:
        run_until(service, stop, deadline, reload)
    finally:
        if panel is not None:
            panel.close()
    return 0

"""How the service tells systemd and the updater it is well: ``ready.json`` and the watchdog.

* :func:`write_ready` — ``<data_dir>/ready.json`` once the instrument and identifier are open
  (again after a reload): the releases in use and whether the outbox takes a write. The
  updater's trial (:class:`edge.ota.control.SystemdControl`) waits for it.
* :class:`Watchdog` — a thread that sends ``WATCHDOG=1`` every half ``WatchdogSec`` while
  every liveness check passes (the scan worker is not wedged, paho's network loop runs) and
  keeps ``STATUS=`` current. A failing check stops the pings: systemd restarts the service.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edge import __version__
from edge.lifecycle import Deadline, Worker
from edge.service.notify import Notifier

log = logging.getLogger(__name__)

#: The file the updater waits for (the same name as edge.ota.control.READY_FILE).
READY_FILE = "ready.json"
#: A release directory has this file (edge.ota.layout).
RELEASE_FILE = "release.json"

#: A liveness check: None when alive, else what is wrong.
Check = Callable[[], str | None]


def app_release_dir(prefix: str | None = None) -> Path | None:
    """The app release this interpreter runs from (``releases/<version>`` holding the venv),
    resolved once; None when not run from an installed release (a source tree, a bench)."""
    venv = Path(prefix or sys.prefix).resolve()
    for candidate in (venv.parent, venv):
        if (candidate / RELEASE_FILE).is_file():
            return candidate
    return None


def write_ready(
    data_dir: Path,
    *,
    app_release: Path | None,
    data_release: Path | None,
    outbox_problem: str | None,
) -> dict[str, Any]:
    """Replace ``<data_dir>/ready.json`` (temp file + rename); returns what was written."""
    doc: dict[str, Any] = {
        "pid": os.getpid(),
        "version": __version__,
        "time_epoch": time.time(),
        "app_release": str(app_release) if app_release else None,
        "data_release": str(data_release) if data_release else None,
        "outbox_writable": outbox_problem is None,
        "outbox_problem": outbox_problem,
    }
    path = data_dir / READY_FILE
    tmp = path.with_name(f".{READY_FILE}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return doc


class Watchdog:
    """Pings systemd's watchdog every *interval_s* while all *checks* pass; keeps STATUS= current.

    *status* gives the status line; it is sent when it changes. ``failing`` is the last set of
    problems (empty while pinging).
    """

    def __init__(
        self,
        notifier: Notifier,
        interval_s: float,
        checks: Sequence[Check],
        status: Callable[[], str],
    ) -> None:
        self.notifier = notifier
        self.interval_s = interval_s
        self.checks = list(checks)
        self.status = status
        self.failing: list[str] = []
        self.pings = 0
        self._last_status: str | None = None
        self._thread = Worker("watchdog", self._loop)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, deadline: float | Deadline) -> bool:
        """Stop pinging; join until *deadline*."""
        return self._thread.stop(deadline)

    def problems(self) -> list[str]:
        """What the checks report now (empty: alive)."""
        out: list[str] = []
        for check in self.checks:
            try:
                problem = check()
            except Exception as err:  # a broken check is a problem, not a crash
                problem = f"check failed: {type(err).__name__}: {err}"
            if problem:
                out.append(problem)
        return out

    def tick(self) -> bool:
        """One round: ping if alive, update the status line; True when pinged."""
        problems = self.problems()
        if problems and problems != self.failing:
            log.error("watchdog not pinged: %s", "; ".join(problems))
        self.failing = problems
        text = f"not well: {'; '.join(problems)}" if problems else self.status()
        if text != self._last_status:
            self.notifier.status(text)
            self._last_status = text
        if problems:
            return False
        self.notifier.watchdog()
        self.pings += 1
        return True

    def _loop(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            self.tick()
            stopping.wait(self.interval_s)

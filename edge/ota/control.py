"""How the updater restarts the service and sees it ready.

* :class:`SystemdControl`: ``systemctl restart`` (app) or ``reload-or-restart`` (data), and
  ready means the unit is ``active`` (with ``Type=notify``: the service sent ``READY=1``)
  since the restart, and the service's ``<data_dir>/ready.json`` names the release in use
  with a writable outbox.
* :class:`SignalControl`: no systemd; SIGHUP (data) or SIGTERM (app) to the pid in
  ``ready.json``, and ready means that file again, as above (the walk-through uses it).
* :class:`NoService`: nothing to restart (a bench or a lab machine); always ready.

Health never includes the broker: a post offline for days must not roll back a good release.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Protocol

from edge.ota import trial

#: Deadline of one systemctl call, s.
SYSTEMCTL_TIMEOUT_S = 30.0
#: The file the running service writes once it is ready (in its data_dir).
READY_FILE = "ready.json"


class ServiceControl(Protocol):
    """What the updater needs from the service manager."""

    def restart(self, data_only: bool) -> float:
        """Restart the service (*data_only*: a reload is enough); returns the time (epoch s)."""
        ...

    def ready_problem(
        self, since: float, app_dir: Path | None, data_dir: Path | None
    ) -> str | None:
        """None when the service runs these releases and is ready since *since*, else why not."""
        ...


class NoService:
    """No service to restart: the trial is the self-test and the outbox check alone."""

    def restart(self, data_only: bool) -> float:
        return time.time()

    def ready_problem(
        self, since: float, app_dir: Path | None, data_dir: Path | None
    ) -> str | None:
        return None


class SystemdControl:
    """The service as a systemd unit that writes ``ready.json`` when ready."""

    def __init__(self, unit: str, service_data_dir: Path) -> None:
        self.unit = unit
        self.ready_file = service_data_dir / READY_FILE

    def _systemctl(self, *args: str) -> str:
        done = subprocess.run(
            ["systemctl", *args], capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT_S
        )
        if done.returncode != 0:
            raise OSError(f"systemctl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def restart(self, data_only: bool) -> float:
        started = time.time()
        verb = "reload-or-restart" if data_only else "restart"
        self._systemctl("--no-block", verb, self.unit)
        return started

    def ready_problem(
        self, since: float, app_dir: Path | None, data_dir: Path | None
    ) -> str | None:
        try:
            state = self._systemctl("show", self.unit, "-p", "ActiveState", "--value").strip()
        except (OSError, subprocess.TimeoutExpired) as err:
            return str(err)
        if state != "active":
            return f"{self.unit} is {state}"
        return ready_file_problem(self.ready_file, since, app_dir, data_dir)


class SignalControl:
    """The service runs without systemd (a lab machine, the README's walk-through): the
    process named by ``ready.json`` gets SIGHUP for a data update (it reloads its identifier)
    and SIGTERM for an app update (whoever started it starts it again from ``current``)."""

    def __init__(self, service_data_dir: Path) -> None:
        self.ready_file = service_data_dir / READY_FILE

    def _pid(self) -> int | None:
        doc = trial.read_json(self.ready_file)
        try:
            pid = int(doc["pid"]) if isinstance(doc, dict) else 0
        except (KeyError, TypeError, ValueError):
            return None
        return pid if pid > 1 else None

    def restart(self, data_only: bool) -> float:
        started = time.time()
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP if data_only else signal.SIGTERM)
        return started

    def ready_problem(
        self, since: float, app_dir: Path | None, data_dir: Path | None
    ) -> str | None:
        pid = self._pid()
        if pid is None:
            return "no service has reported ready"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"the service (pid {pid}) is not running"
        except PermissionError:
            pass  # it runs, as another user
        return ready_file_problem(self.ready_file, since, app_dir, data_dir)


def ready_file_problem(
    ready_file: Path, since: float, app_dir: Path | None, data_dir: Path | None
) -> str | None:
    """None when *ready_file* was written since *since*, names these releases and a writable
    outbox; else what is wrong."""
    doc = trial.read_json(ready_file)
    if not isinstance(doc, dict) or float(doc.get("time_epoch", 0)) < since:
        return "the service has not reported ready since the switch"
    for key, expected in (("app_release", app_dir), ("data_release", data_dir)):
        running = doc.get(key)
        if expected is not None and (not running or Path(running).resolve() != expected.resolve()):
            return f"the service runs {key} {running}, not {expected}"
    if doc.get("outbox_writable") is not True:
        return "the service reports its outbox not writable"
    return None

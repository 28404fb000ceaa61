"""A remote update request (``cmd/update``) handed from the service to the root updater.

The service runs unprivileged and cannot write ``/opt/spectra-edge``. It writes
``<data_dir>/ota-request.json`` (:meth:`UpdateRequests.submit`); systemd's
``spectra-edge-ota-request.path`` sees the file and starts ``spectra-edge-ota-request.service``
(root), which runs ``spectra-edge ota run-request``: :func:`take_request` reads and removes the
file, checks it again (the service is not trusted more than the network), and the updater
applies it. Progress and outcome go to ``ota/state`` like any other update; the repository's
content is trusted only through TUF and the device's root metadata, whoever named it.

Standard library only (the request is checked by the same patterns the command model uses).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import UpdateError
from edge.ota import trial

#: The request file, in the service's data_dir.
REQUEST_FILE = "ota-request.json"
#: Largest request file read, bytes.
MAX_REQUEST_BYTES = 4096
#: A repository: an absolute directory (USB stick) or an http(s) URL; no spaces or controls.
REPOSITORY_PATTERN = r"^(/|https?://)[^\s\x00-\x1f\x7f]{1,500}$"
#: A TUF target name as the publisher tooling makes them: ``<kind>/<file>``.
TARGET_PATTERN = r"^(app|library|model)/[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"
#: States in which the updater is working (a new request would be refused as ``busy``).
ACTIVE_STATES = ("downloading", "verifying", "installing", "trial")


@dataclass(frozen=True)
class UpdateRequest:
    """One request: where from, optionally which target, who asked, when."""

    id: str
    repository: str
    target: str | None
    requested_by: str
    time: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "repository": self.repository,
            "target": self.target,
            "requested_by": self.requested_by,
            "time": self.time,
        }


def check_request(doc: Any) -> UpdateRequest:
    """*doc* as an :class:`UpdateRequest`; :class:`UpdateError` ``bad_request`` otherwise."""
    if not isinstance(doc, dict):
        raise UpdateError("bad_request", "the update request is not a JSON object")
    repository, target = doc.get("repository"), doc.get("target")
    if not isinstance(repository, str) or not re.fullmatch(REPOSITORY_PATTERN, repository):
        raise UpdateError("bad_request", f"repository {str(repository)[:80]!r} is not allowed")
    if target is not None and (
        not isinstance(target, str) or not re.fullmatch(TARGET_PATTERN, target)
    ):
        raise UpdateError("bad_request", f"target {str(target)[:80]!r} is not a target name")
    return UpdateRequest(
        str(doc.get("id") or uuid.uuid4()),
        repository,
        target,
        str(doc.get("requested_by") or "?")[:64],
        str(doc.get("time") or trial.now_rfc3339()),
    )


class UpdateRequests:
    """The service's side: writes a request unless one waits or an update is under way."""

    def __init__(self, data_dir: Path, ota_root: Path) -> None:
        self.path = data_dir / REQUEST_FILE
        self.state_file = trial.ota_dir(ota_root) / "state.json"

    def busy(self) -> str | None:
        """Why a new request would be refused now, or None."""
        if self.path.exists():
            return "an update request is already waiting for the updater"
        state = trial.read_json(self.state_file)
        if isinstance(state, dict) and state.get("state") in ACTIVE_STATES:
            return f"an update is under way ({state['state']} {state.get('version') or ''})".strip()
        return None

    def submit(self, repository: str, target: str | None, requested_by: str) -> UpdateRequest:
        """Write the request file (atomically, never over a waiting one).

        Raises :class:`UpdateError` ``busy`` when a request waits or an update runs, and
        ``bad_request`` for a repository or target the updater would refuse.
        """
        problem = self.busy()
        if problem:
            raise UpdateError("busy", problem)
        request = check_request(
            {"repository": repository, "target": target, "requested_by": requested_by}
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{REQUEST_FILE}.{request.id}.tmp")
        tmp.write_text(json.dumps(request.as_json(), sort_keys=True) + "\n", encoding="utf-8")
        try:
            os.link(tmp, self.path)  # fails if a request appeared meanwhile: never replaced
        except FileExistsError as err:
            raise UpdateError("busy", "an update request is already waiting") from err
        finally:
            tmp.unlink()
        trial.fsync_dir(self.path.parent)
        return request


def take_request(data_dir: Path) -> UpdateRequest | None:
    """The updater's side (root): read, remove and check the request; None when there is none.

    The file is removed before it is acted on, so a request that fails is not retried by the
    path unit in a loop. It is opened without following links and read up to
    :data:`MAX_REQUEST_BYTES` (the directory belongs to the unprivileged service).
    """
    path = data_dir / REQUEST_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:  # a symlink (ELOOP) or worse: remove it, refuse it
        with contextlib.suppress(OSError):
            path.unlink()
        raise UpdateError("bad_request", f"{path}: {err}") from err
    try:
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise UpdateError("bad_request", f"{path} is not a regular file")
            data = fh.read(MAX_REQUEST_BYTES + 1)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    if len(data) > MAX_REQUEST_BYTES:
        raise UpdateError("bad_request", f"{path} is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise UpdateError("bad_request", f"{path} is not JSON") from err
    return check_request(doc)

"""Trial, boot counter, rollback and the state file: standard library only.

A release *on trial* has ``<root>/ota/trial.json``. Each start of the service while it exists
is counted (``ExecStartPre=+... count-start``); the start after :data:`MAX_TRIAL_STARTS`
failed ones switches the link back to the previous release and records why in
``<root>/ota/state.json``, which the service publishes as ``<prefix>/ota/state``. Starts made
while no release is on trial are not counted, so power cuts on a healthy device never roll it
back. The updater uses the same functions, so there is one rollback.

Run as a script (no project imports, no venv needed)::

    python3 trial.py count-start --root /opt/spectra-edge
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Starts of a release on trial that may fail before it is rolled back.
MAX_TRIAL_STARTS = 3

#: Every state ``ota/state`` can carry.
STATES = (
    "idle",
    "downloading",
    "verifying",
    "installing",
    "trial",
    "committed",
    "rolled_back",
    "failed",
)


def ota_dir(root: Path) -> Path:
    """The updater's own files (state, trial, floor, transaction): outside every release."""
    return root / "ota"


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside *path* durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, doc: Any) -> None:
    """Replace *path* with *doc* as JSON (mode 0644): temp file, fsync, rename, fsync the
    directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # world-readable (mkstemp makes 0600): the unprivileged service reads state.json
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def read_json(path: Path) -> Any | None:
    """The JSON in *path*, or None when it is missing or unreadable (a torn write is ignored)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def remove_durably(path: Path) -> None:
    """Unlink *path* (if present) and fsync its directory."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        fsync_dir(path.parent)


def switch_link(link: Path, target: str) -> None:
    """Point the symlink *link* at *target* (relative) with one atomic ``os.replace``.

    ``ln -sfn`` unlinks first and leaves a moment with no link; this never does.
    """
    tmp = link.with_name(f".{link.name}.new")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def now_rfc3339() -> str:
    """The current UTC time, RFC 3339 with seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_state(root: Path, state: str, **fields: Any) -> dict[str, Any]:
    """Record the updater's state (``ota/state.json``), which the service publishes."""
    if state not in STATES:
        raise ValueError(f"unknown OTA state {state!r}")
    doc = {"state": state, "time": now_rfc3339(), **fields}
    doc.setdefault("reason", None)
    write_json(ota_dir(root) / "state.json", doc)
    return doc


def read_trial(root: Path) -> dict[str, Any] | None:
    """The release on trial, or None."""
    doc = read_json(ota_dir(root) / "trial.json")
    return doc if isinstance(doc, dict) else None


def rollback(root: Path, reason: str) -> dict[str, Any] | None:
    """Switch the link on trial back to its previous release; record *reason*. None if no trial.

    Idempotent: a power cut anywhere in here leaves either the trial (and the next call
    finishes it) or the previous release in place with the trial gone.
    """
    trial = read_trial(root)
    if trial is None:
        return None
    link = root / trial["link"]
    switch_link(link, trial["previous"])
    state = write_state(
        root,
        "rolled_back",
        kind=trial.get("kind"),
        version=trial.get("version"),
        target=trial.get("target"),
        reason=reason,
        running=trial.get("previous_version"),
    )
    remove_durably(ota_dir(root) / "trial.json")
    return state


def count_start(root: Path, max_starts: int = MAX_TRIAL_STARTS) -> str:
    """Count one start of the service; roll back once a trial release failed *max_starts*.

    Returns what happened: ``"no-trial"``, ``"counted N"`` or ``"rolled-back"``.
    """
    trial = read_trial(root)
    if trial is None:
        return "no-trial"
    starts = int(trial.get("starts", 0))
    if starts >= max_starts:
        rollback(root, f"the service failed to start {starts} times on trial")
        return "rolled-back"
    trial["starts"] = starts + 1
    write_json(ota_dir(root) / "trial.json", trial)
    return f"counted {starts + 1}"


def main(argv: list[str] | None = None) -> int:
    """``trial.py count-start --root DIR``: the boot counter of ``ExecStartPre``."""
    ap = argparse.ArgumentParser(prog="spectra-edge-bootcount", description=__doc__)
    ap.add_argument("action", choices=["count-start"])
    ap.add_argument("--root", type=Path, default=Path("/opt/spectra-edge"))
    ap.add_argument("--max-starts", type=int, default=MAX_TRIAL_STARTS)
    args = ap.parse_args(argv)
    try:
        outcome = count_start(args.root, args.max_starts)
    except OSError as err:  # never keep the service from starting over the counter
        print(f"spectra-edge boot counter: {err}", file=sys.stderr)
        return 0
    print(f"spectra-edge boot counter: {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

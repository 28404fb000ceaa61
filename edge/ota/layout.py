"""Where a device keeps its releases, and what is installed.

Under the install root (``ota.root``, ``/opt/spectra-edge``)::

    releases/<version>/     one app release: venv/ (built offline), wheels/, release.json
    current -> releases/<version>
    data/<id>/              one data release: library/, model/, selftest/, data.json
    data/current -> <id>    what $SPECTRA_EDGE_MODELS points at (the unit sets it)
    ota/                    the updater's own files, outside every release: state.json,
                            trial.json, floor.json, txn.json, history.json, tuf/, downloads/

Unpacking happens in ``<dir>.partial`` beside the final directory, renamed when complete.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from edge.ota import trial
from edge.ota.targets import Kind

PARTIAL = ".partial"


@dataclass(frozen=True)
class Layout:
    """The install root of one device (see the module doc)."""

    root: Path

    @property
    def releases(self) -> Path:
        """App releases."""
        return self.root / "releases"

    @property
    def app_link(self) -> Path:
        """The app release in use."""
        return self.root / "current"

    @property
    def data(self) -> Path:
        """Data releases."""
        return self.root / "data"

    @property
    def data_link(self) -> Path:
        """The data release in use."""
        return self.data / "current"

    @property
    def ota(self) -> Path:
        """The updater's own files."""
        return trial.ota_dir(self.root)

    @property
    def tuf_dir(self) -> Path:
        """Trusted TUF metadata (root.json shipped with the device, the rest as refreshed)."""
        return self.ota / "tuf"

    @property
    def downloads(self) -> Path:
        """Resumable downloads."""
        return self.ota / "downloads"

    def link_of(self, kind: Kind) -> Path:
        """The ``current`` link a kind of target switches."""
        return self.app_link if kind == "app" else self.data_link

    def current_dir(self, kind: Kind) -> Path | None:
        """The release directory in use for *kind*, or None."""
        link = self.link_of(kind)
        return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None

    # -- versions --------------------------------------------------------------------------
    def installed(self) -> dict[str, str | None]:
        """Versions in use: ``{"app": ..., "library": ..., "model": ...}`` (None: none)."""
        out: dict[str, str | None] = {"app": None, "library": None, "model": None}
        app = self.current_dir("app")
        if app is not None:
            doc = trial.read_json(app / "release.json") or {}
            out["app"] = doc.get("version")
        data = self.current_dir("library")
        if data is not None:
            doc = trial.read_json(data / "data.json") or {}
            out["library"] = doc.get("library")
            out["model"] = doc.get("model")
        return out

    def floor(self) -> dict[str, str]:
        """The anti-rollback floor: the lowest version of each kind that may be installed."""
        doc = trial.read_json(self.ota / "floor.json")
        return {k: str(v) for k, v in (doc or {}).items()}

    def raise_floor(self, kind: Kind, version: str) -> None:
        """Raise the floor of *kind* to *version* (never lowers it)."""
        floor = self.floor()
        old = floor.get(kind)
        if old is None or _version(version) > _version(old):
            floor[kind] = version
            trial.write_json(self.ota / "floor.json", floor)

    def history(self) -> dict[str, Any]:
        """``{"app": {"current": rel, "previous": rel}, "data": {...}}`` (relative targets)."""
        doc = trial.read_json(self.ota / "history.json")
        return doc if isinstance(doc, dict) else {}

    def record_history(self, group: str, current: str, previous: str | None) -> None:
        """Remember what *group* (``app``/``data``) runs now and what it ran before."""
        doc = self.history()
        doc[group] = {"current": current, "previous": previous}
        trial.write_json(self.ota / "history.json", doc)

    def purge(self, group: str, keep: set[Path]) -> list[Path]:
        """Delete releases of *group* other than *keep* (and leftovers ``*.partial``)."""
        parent = self.releases if group == "app" else self.data
        removed: list[Path] = []
        if not parent.is_dir():
            return removed
        keep_real = {p.resolve() for p in keep}
        for entry in parent.iterdir():
            if entry.is_symlink() or not entry.is_dir():
                continue
            if entry.resolve() not in keep_real:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        if removed:
            trial.fsync_dir(parent)
        return removed


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def data_release_id(library: str | None, model: str | None) -> str:
    """Directory name of a data release holding these versions."""
    return f"library-{library or 'none'}+model-{model or 'none'}"


def write_release_json(directory: Path, doc: dict[str, Any]) -> None:
    """Write a release's own description file."""
    (directory / "release.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

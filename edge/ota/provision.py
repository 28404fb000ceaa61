"""First data release of a fresh device: the library and model its app release ships.

``spectra-edge ota provision`` (run by scripts/install.sh) copies ``library/`` and ``model/``
from the installed wheel into ``data/<id>/``, draws its self-test from the library, and points
``data/current`` at it. Idempotent: a device that has a data release keeps it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edge.ota import trial
from edge.ota.layout import PARTIAL, Layout, data_release_id
from edge.ota.targets import data_version, selftest_from_library


def provision_data(layout: Layout, models: Path) -> Path:
    """Make *models* (holding library/ and model/) the first data release; its directory."""
    current = layout.current_dir("library")
    if current is not None:
        return current
    versions = {
        kind: data_version(kind, models / kind) if (models / kind).is_dir() else None
        for kind in ("library", "model")
    }
    final = layout.data / data_release_id(versions["library"], versions["model"])
    partial = final.with_name(final.name + PARTIAL)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for kind in ("library", "model"):
        if (models / kind).is_dir():
            shutil.copytree(models / kind, partial / kind)
    (partial / "selftest").mkdir()
    for name, data in selftest_from_library(models / "library").items():
        (partial / "selftest" / name).write_bytes(data)
    doc = {**versions, "installed": trial.now_rfc3339(), "source": "provisioned"}
    (partial / "data.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    trial.fsync_dir(layout.data)
    trial.switch_link(layout.data_link, final.name)
    layout.record_history("data", final.name, None)
    return final

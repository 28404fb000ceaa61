"""A publisher's repository and a device in scratch directories, for the OTA tests.

The device's install root is a temp dir (``ota.root``), its service data_dir another; the
first data release is the shipped library and model (``ota provision``); no app venv is
built unless a test asks for one (data updates are tried with the test's interpreter).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from paths import PROJECT

from edge.config.loader import parse_config
from edge.config.schema import Config
from edge.library import load_library, save_library
from edge.ota.layout import Layout
from edge.ota.provision import provision_data
from edge.ota.repo import Repository
from edge.ota.targets import pack_data
from spectra_io.sealed import seal

MODELS = PROJECT / "models"

#: What a scratch-root snapshot leaves out, and why: the state file records each refusal
#: (that is its job), TUF's trusted metadata may advance (newer signed metadata is kept, as
#: TUF intends), and downloads/ holds resumable parts.
SNAPSHOT_EXCLUDES = ("ota/state.json", "ota/tuf", "ota/downloads")


def device_config(tmp: Path, **ota: object) -> Config:
    """A config whose install root and data_dir are in *tmp*; the trial is short."""
    settings = {
        "root": str(tmp / "root"),
        "service": "none",
        "trial_timeout_s": 60.0,
        "switch_wait_s": 5.0,
        "min_free_mb": 1,
        **ota,
    }
    return parse_config({"device": {"data_dir": str(tmp / "state")}, "ota": settings}, "<test>")


def new_device(tmp: Path, repo: Repository, **ota: object) -> Config:
    """Provision a device trusting *repo* with the shipped data release."""
    cfg = device_config(tmp, **ota)
    layout = Layout(cfg.ota.root)
    provision_data(layout, MODELS)
    (layout.tuf_dir).mkdir(parents=True)
    shutil.copyfile(repo.metadata_dir / "1.root.json", layout.tuf_dir / "root.json")
    return cfg


def library_version(dst: Path, version: str, *, rename: dict[str, str] | None = None) -> Path:
    """The shipped library re-saved as *version* (optionally with entries renamed)."""
    lib = load_library(MODELS / "library")
    entries = list(lib.entries)
    if rename:
        from dataclasses import replace

        entries = [replace(e, name=rename.get(e.name, e.name)) for e in entries]
    save_library(dst, lib.grid, lib.spectra, entries, name=lib.name, version=version)
    return dst


def model_version(dst: Path, version: str) -> Path:
    """The shipped model with *version* in its manifest (same weights)."""
    shutil.copytree(MODELS / "model", dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["model_version"] = version
    (dst / "manifest.json").write_text(json.dumps(seal(manifest), indent=2))  # as the trainer does
    return dst


def publish_data(repo: Repository, tmp: Path, library: str, model: str | None = None) -> None:
    """Add a library (and a model) of these versions to *repo*."""
    lib_dir = library_version(tmp / f"lib-{library}", library)
    out = tmp / f"lib-{library}.tar"
    repo.add(out, pack_data("library", lib_dir, out))
    if model:
        model_dir = model_version(tmp / f"model-{model}", model)
        out = tmp / f"model-{model}.tar"
        repo.add(out, pack_data("model", model_dir, out, selftest_library=lib_dir))


def snapshot(root: Path) -> dict[str, str]:
    """Every path under *root* (links by target, files by sha256), minus SNAPSHOT_EXCLUDES."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(rel == ex or rel.startswith(ex + "/") for ex in SNAPSHOT_EXCLUDES):
            continue
        if path.is_symlink():
            out[rel] = "-> " + str(path.readlink())
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out

"""Build the release (wheel + sdist) and a wheelhouse of its dependencies, once per run.

The wheelhouse lives in ``$XDG_CACHE_HOME/spectra-edge-tests/wheelhouse`` (else
``~/.cache/...``) so later runs install offline; the first run fills it with ``pip download``
(which reuses pip's own cache). Tests that need it skip with the reason when neither works.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from paths import PROJECT

#: Longest a build or a dependency download may take, s.
BUILD_TIMEOUT_S = 300


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spectra-edge-tests"


def build_release(out: Path) -> tuple[Path, Path]:
    """``(wheel, sdist)`` of the working tree, built with ``python -m build`` into *out*."""
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(PROJECT)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise AssertionError(f"python -m build failed:\n{done.stdout[-3000:]}\n{done.stderr}")
    wheels = sorted(out.glob("spectra_edge-*.whl"))
    sdists = sorted(out.glob("spectra_edge-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return wheels[0], sdists[0]


def wheelhouse(wheel: Path) -> Path:
    """A directory of wheels holding every dependency of *wheel* (offline once filled)."""
    house = _cache_root() / "wheelhouse"
    house.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "pip", "download", "-q", "--dest", str(house), str(wheel)]
    offline = subprocess.run(
        [*base, "--no-index", "--find-links", str(house)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    if offline.returncode != 0:
        online = subprocess.run(base, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if online.returncode != 0:
            pytest.skip(f"no wheelhouse: pip download failed offline and online: {online.stderr}")
    for stale in house.glob("spectra_edge-*.whl"):
        stale.unlink()
    return house


def make_venv(path: Path, *wheels: Path, house: Path | None = None) -> Path:
    """A fresh venv at *path* with *wheels* installed offline from *house*; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=BUILD_TIMEOUT_S)
    python = path / "bin" / "python"
    links = ["--no-index", "--find-links", str(house)] if house else []
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *links, *map(str, wheels)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise AssertionError(f"pip install failed:\n{done.stdout}\n{done.stderr}")
    return python

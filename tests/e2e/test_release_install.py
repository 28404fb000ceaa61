"""The release as a user installs it: ``python -m build``, then the wheel in a fresh venv.

The venv lives in a temp dir outside the source tree, ``SPECTRA_EDGE_MODELS`` is unset and
the working directory is the temp dir, so the shipped library and model can only come from
the installed wheel. ``probe``, ``scan``, ``identify``, ``run`` and ``demo`` all work there.
Dependencies install offline from a wheelhouse (filled once per machine; see
``support/release_build.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from helpers_mqtt import Subscriber
from mosquitto_broker import Broker
from paths import PROJECT
from release_build import make_venv

from spectra_io import SpectrumRecord, write_jcamp

PREFIX = "customs/post-1/dev-1"


def test_wheel_and_sdist_carry_the_shipped_library_and_model(release_wheel: Path) -> None:
    names = set(zipfile.ZipFile(release_wheel).namelist())
    for part in ("library/manifest.json", "library/spectra.npy", "model/model_int8.tflite"):
        assert f"edge/_shipped/{part}" in names, part
    (sdist,) = release_wheel.parent.glob("spectra_edge-*.tar.gz")
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert {"models/library/manifest.json", "models/model/manifest.json", "setup.py"} <= members


def test_installed_wheel_runs_outside_the_source_tree(
    tmp_path: Path, release_wheel: Path, release_wheelhouse: Path, mosquitto: Broker
) -> None:
    python = make_venv(tmp_path / "venv", release_wheel, house=release_wheelhouse)
    cli = str(python.parent / "spectra-edge")
    site = subprocess.run(
        [str(python), "-c", "import edge, sys; print(edge.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert str(tmp_path / "venv") in site and str(PROJECT) not in site
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[device]
id = "dev-1"
post = "post-1"
data_dir = "{tmp_path / "data"}"
[panel]
pin_factory = "mock"
[mqtt]
host = "127.0.0.1"
port = {mosquitto.port}
reconnect_min_s = 0.1
reconnect_max_s = 0.5
[outbox]
flush_timeout_s = 10
"""
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SPECTRA_EDGE_MODELS", "PYTHONPATH")}
    env["SPECTRA_EDGE_CONFIG"] = str(config)

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [cli, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=timeout
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    assert "SE-ATR-MIR1" in run("probe").stdout
    scan = json.loads(run("scan", "--json", "--sample", "TNT").stdout)
    assert scan["status"] == "identified" and scan["substance"]["name"] == "TNT", scan
    versions = subprocess.run(
        [
            str(python),
            "-c",
            "from edge.identify.setup import build_identifier as b; "
            "import json; i = b(); print(json.dumps([str(i.library.path), i.versions]))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
    ).stdout
    lib_path, loaded = json.loads(versions)
    assert "/site-packages/edge/_shipped/library" in lib_path and "model" in loaded, versions

    shipped = tmp_path / "venv" / "lib"
    (lib_dir,) = shipped.glob("python3*/site-packages/edge/_shipped/library")
    row = [e["name"] for e in json.loads((lib_dir / "entries.json").read_text())].index("Caffeine")
    grid = json.loads((lib_dir / "manifest.json").read_text())["grid"]
    spectra = np.load(lib_dir / "spectra.npy")
    x = grid["start"] + grid["step"] * np.arange(spectra.shape[1])
    write_jcamp(
        tmp_path / "caffeine.jdx", SpectrumRecord(x, spectra[row].astype(float), "absorbance")
    )
    ident = json.loads(run("identify", "--json", str(tmp_path / "caffeine.jdx")).stdout)
    assert ident["substance"]["name"] == "Caffeine", ident

    demo = run("demo", "--port", str(mosquitto.port), "--count", "2", "--timeout", "90")
    assert "2/2 results arrived on the broker" in demo.stdout, demo.stdout

    watcher = Subscriber(mosquitto.port, [f"{PREFIX}/status"])
    watcher.wait_subscribed()
    proc = subprocess.Popen(
        [cli, "run"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        watcher.wait_for(lambda ms: any(m.json()["state"] == "online" for m in ms), timeout=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        watcher.close()

"""scripts/install.sh into a scratch root (twice, then --uninstall), the units through
``systemd-analyze verify``, and an app update from a TUF repository onto that install.

The release's venv is built offline from the wheelhouse (support/release_build.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from ota_helpers import snapshot
from paths import PROJECT

from edge.ota.layout import Layout
from edge.ota.repo import Repository
from edge.ota.request import REQUEST_FILE, UpdateRequests
from edge.ota.targets import pack_app

INSTALL = PROJECT / "scripts" / "install.sh"
#: Enabled units and the target that wants each; the request service is started by its .path.
ENABLED = {
    "spectra-edge.service": "multi-user.target",
    "spectra-edge-ota-recover.service": "multi-user.target",
    "spectra-edge-ota-request.path": "paths.target",
}
UNITS = (*ENABLED, "spectra-edge-ota-request.service")


def run_install(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", str(INSTALL), *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done


def wheels_dir(tmp: Path, wheel: Path, house: Path) -> Path:
    out = tmp / "wheels"
    out.mkdir()
    for w in [wheel, *house.glob("*.whl")]:
        os.link(w, out / w.name) if w.stat().st_dev == tmp.stat().st_dev else shutil.copy(w, out)
    return out


def bumped_wheel(wheel: Path, version: str, out_dir: Path) -> Path:
    """The same wheel as release *version* (dist-info renamed, METADATA and RECORD updated)."""
    old = wheel.name.split("-")[1]
    out = out_dir / wheel.name.replace(f"-{old}-", f"-{version}-")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            name = item.filename.replace(
                f"spectra_edge-{old}.dist-info", f"spectra_edge-{version}.dist-info"
            )
            if name.endswith(".dist-info/METADATA"):
                data = data.replace(
                    f"\nVersion: {old}\n".encode(), f"\nVersion: {version}\n".encode()
                )
            if name.endswith(".dist-info/RECORD"):
                data = b""  # pip does not check RECORD hashes on install
                lines = [
                    ln.replace(f"spectra_edge-{old}.dist-info", f"spectra_edge-{version}.dist-info")
                    for ln in src.read(item).decode().splitlines()
                ]
                data = ("\n".join(ln.split(",")[0] + ",," for ln in lines) + "\n").encode()
            dst.writestr(name, data)
    return out


@pytest.fixture(scope="module")
def installed_root(
    tmp_path_factory: pytest.TempPathFactory, release_wheel: Path, release_wheelhouse: Path
) -> tuple[Path, Path, Repository]:
    tmp = tmp_path_factory.mktemp("install")
    root = tmp / "root"
    (root / "boot" / "firmware").mkdir(parents=True)
    (root / "boot" / "firmware" / "config.txt").write_text("[all]\n#dtparam=spi=on\n")
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_text("altynkol-07\n")
    repo = Repository(tmp / "repo")
    repo.init()
    wheels = wheels_dir(tmp, release_wheel, release_wheelhouse)
    args = [
        "--root",
        str(root),
        "--wheels",
        str(wheels),
        "--trusted-root",
        str(repo.metadata_dir / "1.root.json"),
    ]
    first = run_install(*args)
    assert "installed release" in first.stdout
    before = snapshot(root)
    second = run_install(*args)  # idempotent: nothing new, nothing changed
    assert "installed release" not in second.stdout and "created" not in second.stdout
    assert snapshot(root) == before
    return root, wheels, repo


def test_install_sh_into_a_scratch_root(installed_root: tuple[Path, Path, Repository]) -> None:
    root, _, _ = installed_root
    opt = root / "opt" / "spectra-edge"
    passwd = (root / "etc" / "passwd").read_text()
    assert passwd.startswith("spectra-edge:x:") and "/usr/sbin/nologin" in passwd
    groups = (root / "etc" / "group").read_text()
    assert "gpio:x:" in groups and "spi:x:" in groups and "spectra-edge" in groups
    boot = (root / "boot" / "firmware" / "config.txt").read_text().splitlines()
    assert boot.count("dtparam=spi=on") == 1 and "#dtparam=spi=on" not in boot
    version = os.readlink(opt / "current").split("/")[1]
    assert (opt / "releases" / version / "release.json").is_file()
    python = opt / "current" / "venv" / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", "import edge, tuf; print(edge.__version__, edge.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd="/",
    ).stdout
    assert out.startswith(version) and str(opt / "current" / "venv") in out
    assert (opt / "data" / "current" / "library" / "manifest.json").is_file()
    assert (opt / "data" / "current" / "selftest" / "selftest.json").is_file()
    assert (opt / "bin" / "spectra-edge-bootcount").is_file()
    assert (opt / "ota" / "tuf" / "root.json").is_file()
    config = (root / "etc" / "spectra-edge" / "config.toml").read_text()
    assert 'id = "altynkol-07"' in config and 'driver = "spi"' in config
    for unit in UNITS:
        assert (root / "etc" / "systemd" / "system" / unit).is_file()
    for unit, target in ENABLED.items():
        assert (root / "etc" / "systemd" / "system" / f"{target}.wants" / unit).is_symlink()


def test_units_pass_systemd_analyze_verify(
    tmp_path: Path, installed_root: tuple[Path, Path, Repository]
) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    root, _, _ = installed_root
    # the units name /opt/spectra-edge: verify copies that name the scratch install instead,
    # so every ExecStart/ExecStartPre binary is checked for existence as well
    for unit in UNITS:
        text = (root / "etc" / "systemd" / "system" / unit).read_text()
        (tmp_path / unit).write_text(
            text.replace("/opt/spectra-edge", str(root / "opt" / "spectra-edge"))
        )
    done = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / u) for u in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    # the check can fail: a broken unit is reported
    (tmp_path / "broken.service").write_text("[Service]\nType=notify\nExecStart=/nonexistent/x\n")
    bad = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "broken.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "nonexistent" in bad.stderr


def test_app_update_installs_passes_trial_and_commits(
    tmp_path: Path,
    installed_root: tuple[Path, Path, Repository],
    release_wheel: Path,
    release_wheelhouse: Path,
) -> None:
    root, _, repo = installed_root
    opt = root / "opt" / "spectra-edge"
    old = os.readlink(opt / "current").split("/")[1]
    new_wheel = bumped_wheel(release_wheel, "0.1.1", tmp_path)
    out = tmp_path / "app.tar"
    repo.add(out, pack_app(new_wheel, out, release_wheelhouse))
    state_dir = root / "var" / "lib" / "spectra-edge"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[device]\ndata_dir = "{state_dir}"\n'
        f'[ota]\nroot = "{opt}"\nservice = "none"\nmin_free_mb = 1\n'
    )
    # the service's side of cmd/update: a request file in its state directory...
    request = UpdateRequests(state_dir, opt).submit(str(repo.path), None, "test")
    assert (state_dir / REQUEST_FILE).is_file()
    # ...and what the .path unit starts as root: the installed release's updater
    done = subprocess.run(
        [
            str(opt / "current" / "venv" / "bin" / "python"),
            "-m",
            "edge.cli",
            "--config",
            str(config),
            "ota",
            "run-request",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd="/",
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert f"update request {request.id}" in done.stdout and "committed" in done.stdout
    assert not (state_dir / REQUEST_FILE).exists()  # taken: the path unit does not loop
    assert Layout(opt).installed()["app"] == "0.1.1"
    assert os.readlink(opt / "current") == "releases/0.1.1"
    state = json.loads((opt / "ota" / "state.json").read_text())
    assert state["state"] == "committed" and state["version"] == "0.1.1"
    assert Layout(opt).floor()["app"] == "0.1.1"
    assert sorted(p.name for p in (opt / "releases").iterdir()) == sorted({old, "0.1.1"})
    version = subprocess.run(
        [
            str(opt / "current" / "venv" / "bin" / "python"),
            "-c",
            "import edge; print(edge.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd="/",
    ).stdout.strip()
    assert version == "0.1.1"


def test_uninstall_removes_the_release_and_keeps_config_and_data(
    installed_root: tuple[Path, Path, Repository],
) -> None:
    root, _, _ = installed_root
    run_install("--root", str(root), "--uninstall")
    assert not (root / "opt" / "spectra-edge").exists()
    assert not (root / "usr" / "local" / "bin" / "spectra-edge").exists()
    for unit in UNITS:
        assert not (root / "etc" / "systemd" / "system" / unit).exists()
    for unit, target in ENABLED.items():
        assert not (root / "etc" / "systemd" / "system" / f"{target}.wants" / unit).is_symlink()
    assert (root / "etc" / "spectra-edge" / "config.toml").is_file()
    run_install("--root", str(root), "--uninstall")  # idempotent

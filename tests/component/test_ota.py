"""Over-the-air updates of data (library + model) on a scratch device: real TUF metadata,
real files, the real self-test with LiteRT; every refusal leaves the installed system as it was.

(The app update, install.sh and the wheel are in tests/e2e/test_ota_app.py.)
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from ota_helpers import (
    library_version,
    new_device,
    publish_data,
    snapshot,
)

from edge.errors import UpdateError
from edge.ota import trial
from edge.ota.layout import Layout
from edge.ota.repo import Repository, serve_in_thread
from edge.ota.targets import TargetMeta, pack_data
from edge.ota.updater import KILL_AT_ENV, Updater


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    r = Repository(tmp_path / "repo")
    r.init()
    return r


def installed(cfg) -> dict:  # type: ignore[no-untyped-def]
    return Layout(cfg.ota.root).installed()


def state(cfg) -> dict:  # type: ignore[no-untyped-def]
    return json.loads((cfg.ota.root / "ota" / "state.json").read_text())


def refused(cfg, source: str, reason: str, names: list[str] | None = None) -> UpdateError:  # type: ignore[no-untyped-def]
    """Apply must fail with *reason*, record it, and change nothing installed."""
    before = snapshot(cfg.ota.root)
    with pytest.raises(UpdateError) as info:
        Updater(cfg).apply(source, names)
    assert info.value.reason == reason, str(info.value)
    assert snapshot(cfg.ota.root) == before
    doc = state(cfg)
    assert doc["state"] == "failed" and doc["code"] == reason and doc["reason"], doc
    return info.value


# -- good updates ---------------------------------------------------------------------------


def test_library_and_model_update_installs_passes_trial_and_commits(
    tmp_path: Path, repo: Repository
) -> None:
    cfg = new_device(tmp_path, repo)
    layout = Layout(cfg.ota.root)
    first = layout.current_dir("library")
    publish_data(repo, tmp_path, "2026.12.1", "20261201")
    outcome = Updater(cfg).apply(str(repo.path))
    assert outcome.installed == {"app": None, "library": "2026.12.1", "model": "20261201"}
    doc = state(cfg)
    assert doc["state"] == "committed" and doc["installed"]["library"] == "2026.12.1"
    assert layout.floor() == {"library": "2026.12.1", "model": "20261201"}
    now = layout.current_dir("library")
    assert now is not None and now != first and (now / "library" / "spectra.npy").is_file()
    assert not (cfg.ota.root / "ota" / "trial.json").exists()
    # applying again: nothing newer
    assert Updater(cfg).apply(str(repo.path)).done == []
    # a third release purges the first; current and previous stay
    publish_data(repo, tmp_path, "2026.12.2")
    Updater(cfg).apply(str(repo.path))
    names = sorted(p.name for p in layout.data.iterdir() if not p.is_symlink())
    assert names == [
        "library-2026.12.1+model-20261201",
        "library-2026.12.2+model-20261201",
    ]
    # the technician's rollback goes back to the previous one
    Updater(cfg).rollback("data")
    assert installed(cfg)["library"] == "2026.12.1"
    assert state(cfg)["state"] == "rolled_back"


def test_update_over_http_from_a_laptop(tmp_path: Path, repo: Repository) -> None:
    cfg = new_device(tmp_path, repo)
    publish_data(repo, tmp_path, "2026.12.1")
    server = serve_in_thread(repo)
    try:
        host, port = server.server_address[:2]
        Updater(cfg).apply(f"http://{host}:{port}")
    finally:
        server.shutdown()
        server.server_close()
    assert installed(cfg)["library"] == "2026.12.1" and state(cfg)["state"] == "committed"


def test_root_key_rotation_is_followed_by_a_device_holding_the_old_root(
    tmp_path: Path, repo: Repository
) -> None:
    cfg = new_device(tmp_path, repo)
    repo.rotate("root")
    repo.rotate("data")
    publish_data(repo, tmp_path, "2026.12.1")
    Updater(cfg).apply(str(repo.path))
    assert installed(cfg)["library"] == "2026.12.1"
    trusted = json.loads((cfg.ota.root / "ota" / "tuf" / "root.json").read_text())
    assert trusted["signed"]["version"] == 2  # the device now trusts the rotated root


# -- refusals: each with its reason, nothing installed changes ------------------------------


def test_refused_one_byte_changed(tmp_path: Path, repo: Repository) -> None:
    cfg = new_device(tmp_path, repo)
    publish_data(repo, tmp_path, "2026.12.1")
    (stored,) = (repo.targets_dir / "library").iterdir()
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    refused(cfg, str(repo.path), "hash_mismatch")


def test_refused_wrong_key(tmp_path: Path, repo: Repository) -> None:
    cfg = new_device(tmp_path, repo)
    # a laboratory key that the targets role never delegated to signs the data role
    (repo.keys_dir / "data-1.pem").unlink()
    from edge.ota.repo import _new_key

    _new_key(repo.keys_dir / "data-1.pem")
    lib = library_version(tmp_path / "lib", "2026.12.1")
    out = tmp_path / "lib.tar"
    meta = pack_data("library", lib, out)
    with pytest.raises(UpdateError):  # the publisher's tooling refuses a key not delegated
        repo.add(out, meta)
    data_md = repo._latest("data")
    from tuf.api.metadata import TargetFile

    name = meta.target_name()
    info = TargetFile.from_file(name, str(out), ["sha256"])
    info.unrecognized_fields["custom"] = meta.to_custom()
    data_md.signed.targets[name] = info
    data_md.signed.version += 1
    repo._sign(data_md, repo.signers("data"))  # signed, with the wrong key
    repo._write("data", data_md)
    stored = repo.targets_dir / "library" / f"{info.hashes['sha256']}.{name.split('/')[1]}"
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(out.read_bytes())
    repo._snapshot_and_timestamp()
    refused(cfg, str(repo.path), "bad_signature")


def test_refused_unsigned_target(tmp_path: Path, repo: Repository) -> None:
    cfg = new_device(tmp_path, repo)
    lib = library_version(tmp_path / "lib", "2026.12.1")
    out = repo.targets_dir / "library" / "library-2026.12.1.tar"
    out.parent.mkdir(parents=True, exist_ok=True)
    pack_data("library", lib, out)  # on the stick, but in no signed metadata
    refused(cfg, str(repo.path), "unknown_target", ["library/library-2026.12.1.tar"])
    # and an apply without naming it does not see it at all
    assert Updater(cfg).apply(str(repo.path)).done == []


def test_refused_expired_metadata(tmp_path: Path, repo: Repository) -> None:
    cfg = new_device(tmp_path, repo)
    publish_data(repo, tmp_path, "2026.12.1")
    repo.sign(days={"timestamp": -1})
    refused(cfg, str(repo.path), "expired")


def test_refused_downgrade_below_the_floor(tmp_path: Path, repo: Repository) -> None:
    cfg = new_device(tmp_path, repo)
    publish_data(repo, tmp_path, "2026.12.1")
    Updater(cfg).apply(str(repo.path))
    assert Layout(cfg.ota.root).floor()["library"] == "2026.12.1"
    publish_data(repo, tmp_path, "2026.11.5")  # correctly signed, but older than the floor
    refused(cfg, str(repo.path), "downgrade", ["library/library-2026.11.5.tar"])


def _hostile_tar(path: Path, lib: Path, bad: tarfile.TarInfo) -> None:
    with tarfile.open(path, "w") as tar:
        for f in sorted(lib.iterdir()):
            tar.add(f, arcname=f"library/{f.name}")
        if bad.isfile():
            tar.addfile(bad, io.BytesIO(b"x" * bad.size))
        else:
            tar.addfile(bad)


def _entry(kind: str) -> tarfile.TarInfo:
    if kind == "dotdot":
        info = tarfile.TarInfo("library/../../../etc/evil")
        info.size = 1
    elif kind == "absolute":
        info = tarfile.TarInfo("/etc/evil")
        info.size = 1
    elif kind == "symlink":
        info = tarfile.TarInfo("library/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
    elif kind == "hardlink":
        info = tarfile.TarInfo("library/hard")
        info.type = tarfile.LNKTYPE
        info.linkname = "library/manifest.json"
    else:
        info = tarfile.TarInfo("library/dev")
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
    return info


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "device"])
def test_refused_unsafe_archive_entries(tmp_path: Path, repo: Repository, kind: str) -> None:
    cfg = new_device(tmp_path, repo)
    lib = library_version(tmp_path / "lib", "2026.12.1")
    out = tmp_path / "evil.tar"
    _hostile_tar(out, lib, _entry(kind))
    repo.add(out, TargetMeta("library", "2026.12.1"))  # properly signed: a stolen lab key
    refused(cfg, str(repo.path), "unsafe_archive")
    assert not (tmp_path / "etc").exists()
    assert not list(cfg.ota.root.rglob("*.partial*"))


def test_refused_truncated_download_then_resumed(tmp_path: Path, repo: Repository) -> None:
    cfg = new_device(tmp_path, repo)
    publish_data(repo, tmp_path, "2026.12.1")
    (stored,) = (repo.targets_dir / "library").iterdir()
    whole = stored.read_bytes()
    stored.write_bytes(whole[: len(whole) // 3])  # a half-written USB stick
    refused(cfg, str(repo.path), "truncated")
    (part,) = (cfg.ota.root / "ota" / "downloads").glob("*.part")
    assert part.stat().st_size == len(whole) // 3  # kept: the next try resumes from here
    stored.write_bytes(whole)
    Updater(cfg).apply(str(repo.path))
    assert installed(cfg)["library"] == "2026.12.1"
    assert not list((cfg.ota.root / "ota" / "downloads").glob("*.part"))


def test_refused_full_disk(tmp_path: Path, repo: Repository) -> None:
    free_mb = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize // 2**20
    publish_data(repo, tmp_path, "2026.12.1")
    cfg = new_device(tmp_path, repo, min_free_mb=free_mb + 1)  # no room for the reserve
    error = refused(cfg, str(repo.path), "no_space")
    assert "MiB free" in str(error)
    assert not list((cfg.ota.root / "ota" / "downloads").iterdir())  # checked before download


def test_refused_library_that_fails_its_self_test(tmp_path: Path, repo: Repository) -> None:
    cfg = new_device(tmp_path, repo)
    # the laboratory renamed entries but forgot to retrain the model: it no longer fits
    lib = library_version(tmp_path / "lib", "2026.12.1", rename={"Caffeine": "Caffeine (anh.)"})
    out = tmp_path / "lib.tar"
    repo.add(out, pack_data("library", lib, out))
    error = refused(cfg, str(repo.path), "selftest_failed")
    assert "model was trained on library" in str(error)


def test_refused_data_that_needs_a_newer_app(tmp_path: Path, repo: Repository) -> None:
    cfg = new_device(tmp_path, repo)
    lib = library_version(tmp_path / "lib", "2026.12.1")
    out = tmp_path / "lib.tar"
    repo.add(out, pack_data("library", lib, out, requires_app=">=9"))
    refused(cfg, str(repo.path), "incompatible")


# -- trial: never healthy, crash loop, deferral ----------------------------------------------


class NeverReady:
    """A service that never reports ready."""

    restarts = 0

    def restart(self, data_only: bool) -> float:
        self.restarts += 1
        import time

        return time.time()

    def ready_problem(self, since, app_dir, data_dir):  # type: ignore[no-untyped-def]
        return "the service has not reported ready since the switch"


def test_release_never_healthy_rolls_back_by_itself(tmp_path: Path, repo: Repository) -> None:
    cfg = new_device(tmp_path, repo, trial_timeout_s=2.0)
    before = snapshot(cfg.ota.root)
    publish_data(repo, tmp_path, "2026.12.1")
    control = NeverReady()
    with pytest.raises(UpdateError) as info:
        Updater(cfg, control).apply(str(repo.path))
    assert info.value.reason == "unhealthy"
    doc = state(cfg)
    assert doc["state"] == "rolled_back" and "not healthy within 2 s" in doc["reason"], doc
    assert control.restarts == 2  # onto the new release, then back onto the old one
    assert snapshot(cfg.ota.root) == before | {"ota/history.json": before["ota/history.json"]}
    assert installed(cfg)["library"] == "2026.11.1"


class CrashLoop(NeverReady):
    """systemd restarting a service that dies at start: ExecStartPre's counter runs each time."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def restart(self, data_only: bool) -> float:
        import time

        script = Path(trial.__file__)
        for _ in range(4):  # the 4th start finds 3 failed ones and rolls back
            subprocess.run(
                ["python3", str(script), "count-start", "--root", str(self.root)], check=True
            )
        return time.time()


def test_release_crashing_at_start_three_times_rolls_back(tmp_path: Path, repo: Repository) -> None:
    cfg = new_device(tmp_path, repo, trial_timeout_s=30.0)
    publish_data(repo, tmp_path, "2026.12.1")
    with pytest.raises(UpdateError) as info:
        Updater(cfg, CrashLoop(cfg.ota.root)).apply(str(repo.path))
    assert info.value.reason == "unhealthy"
    doc = state(cfg)
    assert doc["state"] == "rolled_back", doc
    assert doc["reason"] == "the service failed to start 3 times on trial"
    assert installed(cfg)["library"] == "2026.11.1"


def test_boot_counter_counts_only_starts_on_trial(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert trial.count_start(root) == "no-trial"  # a power cut on a healthy device: nothing
    (root / "releases" / "a").mkdir(parents=True)
    (root / "releases" / "b").mkdir(parents=True)
    trial.switch_link(root / "current", "releases/b")
    trial.write_json(
        root / "ota" / "trial.json",
        {"link": "current", "previous": "releases/a", "kind": "app", "version": "2"},
    )
    assert [trial.count_start(root) for _ in range(4)] == [
        "counted 1",
        "counted 2",
        "counted 3",
        "rolled-back",
    ]
    assert os.readlink(root / "current") == "releases/a"
    assert trial.count_start(root) == "no-trial"


def test_switch_is_deferred_while_the_service_holds_the_lock(
    tmp_path: Path, repo: Repository
) -> None:
    import fcntl
    import threading

    cfg = new_device(tmp_path, repo, switch_wait_s=30.0)
    publish_data(repo, tmp_path, "2026.12.1")
    lock_path = cfg.device.data_dir / "switch.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a scan in progress
    seen: list[dict] = []

    def watch() -> None:
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                doc = state(cfg)
            except (OSError, ValueError):
                continue
            if doc.get("deferred"):
                seen.append(doc)
                assert installed(cfg)["library"] == "2026.11.1"  # not switched yet
                os.close(fd)  # the scan ends
                return
            time.sleep(0.05)

    t = threading.Thread(target=watch)
    t.start()
    Updater(cfg).apply(str(repo.path))
    t.join(timeout=60)
    assert seen and "switch deferred" in seen[0]["reason"] and seen[0]["state"] == "installing"
    assert installed(cfg)["library"] == "2026.12.1"


# -- power cut: SIGKILL at every step --------------------------------------------------------

STEPS = [
    "refreshed",
    "downloaded",
    "verified",
    "unpacked",
    "renamed",
    "selftested",
    "trial-recorded",
    "switched",
    "restarted",
    "healthy",
    "committing",
    "committed",
]


def _cli(
    cfg_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "--config", str(cfg_path), "ota", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
    )


def _complete(cfg) -> None:  # type: ignore[no-untyped-def]
    layout = Layout(cfg.ota.root)
    current = layout.current_dir("library")
    assert current is not None, "data/current does not point at a release"
    for part in (
        "library/manifest.json",
        "library/spectra.npy",
        "model/manifest.json",
        "model/model_int8.tflite",
        "selftest/selftest.json",
        "data.json",
    ):
        assert (current / part).is_file(), part
    assert not list(cfg.ota.root.rglob("*.partial*"))
    assert not (layout.ota / "txn.json").exists() and not (layout.ota / "trial.json").exists()
    from edge.ota.selftest import run_selftest

    before = os.environ.get("SPECTRA_EDGE_MODELS")
    assert run_selftest(current)["ok"]
    assert os.environ.get("SPECTRA_EDGE_MODELS") == before  # nothing leaks into the process


@pytest.mark.parametrize("step", STEPS)
def test_power_cut_at_every_step(tmp_path: Path, repo: Repository, step: str) -> None:
    from ota_helpers import device_config

    cfg = new_device(tmp_path, repo)
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(
        f'[device]\ndata_dir = "{cfg.device.data_dir}"\n'
        f'[ota]\nroot = "{cfg.ota.root}"\nservice = "none"\nmin_free_mb = 1\n'
    )
    assert device_config(tmp_path).ota.root == cfg.ota.root
    publish_data(repo, tmp_path, "2026.12.1", "20261201")
    killed = _cli(cfg_path, "apply", str(repo.path), env={KILL_AT_ENV: step})
    assert killed.returncode == -9, (killed.stdout, killed.stderr)
    recovered = _cli(cfg_path, "recover")  # what the boot-time unit runs
    assert recovered.returncode == 0, recovered.stderr
    _complete(cfg)
    again = _cli(cfg_path, "apply", str(repo.path))
    assert again.returncode == 0, (again.stdout, again.stderr)
    _complete(cfg)
    assert installed(cfg) == {"app": None, "library": "2026.12.1", "model": "20261201"}
    assert Layout(cfg.ota.root).floor() == {"library": "2026.12.1", "model": "20261201"}


def test_refused_full_disk_on_a_real_small_file_system(tmp_path: Path, repo: Repository) -> None:
    from small_disk import small_tmpfs

    publish_data(repo, tmp_path, "2026.12.1", "20261201")
    with small_tmpfs(tmp_path / "disk", 1536) as disk:  # the shipped data fills most of it
        cfg = new_device(disk, repo, min_free_mb=0)
        error = refused(cfg, str(repo.path), "no_space")
        assert "MiB free" in str(error)

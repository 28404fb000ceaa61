"""Over-the-air updates and the service's footprint.

1. **Data update** (library + model) from a local repository to a committed scratch device:
   TUF refresh, download, verify, unpack, self-test, switch, trial (self-test + outbox),
   commit. Baseline in the same run: copying the same library and model directories.
2. **App update** (the wheel of this tree as a new version, with its dependency wheels):
   the same steps plus the venv built offline. Baseline in the same run: a plain
   ``python -m venv`` + ``pip install --no-index`` of the same wheels.
3. **Start to ready** of ``spectra-edge run``: process start to ``READY=1`` on a fake
   systemd notify socket (instrument and identifier open), and to its retained ``online``
   status on a local mosquitto; its **peak RSS** (VmHWM) after one remote scan, with the
   shipped model and library. Baseline: a bare interpreter importing numpy, scipy and LiteRT.

    .venv/bin/python bench/bench_ota.py [data] [app] [service]   (default: all three)

Prints the figures and writes JSON to bench/results/.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "tests" / "component"))

RESULTS = Path(__file__).parent / "results"


def timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_data(tmp: Path) -> dict[str, float]:
    from ota_helpers import MODELS, new_device, publish_data

    from edge.ota.repo import Repository
    from edge.ota.updater import Updater

    repo = Repository(tmp / "repo")
    repo.init()
    cfg = new_device(tmp, repo)
    publish_data(repo, tmp, "2026.12.1", "20261201")
    apply_s = timed(lambda: Updater(cfg).apply(str(repo.path)))
    copy_s = timed(
        lambda: shutil.copytree(MODELS, tmp / "copy", ignore=shutil.ignore_patterns("library-src"))
    )
    return {"apply_commit_s": apply_s, "baseline_copy_s": copy_s, "ratio": apply_s / copy_s}


def bench_app(tmp: Path) -> dict[str, float]:
    from ota_helpers import MODELS
    from release_build import build_release, wheelhouse
    from test_install_and_app_update import bumped_wheel

    from edge.config.loader import parse_config
    from edge.ota.layout import Layout
    from edge.ota.provision import provision_data
    from edge.ota.repo import Repository
    from edge.ota.targets import pack_app
    from edge.ota.updater import Updater

    wheel, _ = build_release(tmp / "dist")
    house = wheelhouse(wheel)
    new = bumped_wheel(wheel, "0.1.1", tmp)
    repo = Repository(tmp / "repo")
    repo.init()
    out = tmp / "app.tar"
    repo.add(out, pack_app(new, out, house))
    opt = tmp / "opt"
    cfg = parse_config(
        {
            "device": {"data_dir": str(tmp / "state")},
            "ota": {"root": str(opt), "service": "none", "min_free_mb": 1},
        },
        "<b>",
    )
    provision_data(Layout(opt), MODELS)
    (opt / "ota" / "tuf").mkdir(parents=True)
    shutil.copy(repo.metadata_dir / "1.root.json", opt / "ota" / "tuf" / "root.json")
    apply_s = timed(lambda: Updater(cfg).apply(str(repo.path)))

    def plain() -> None:
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "v")], check=True
        )
        subprocess.run(
            [
                str(tmp / "v/bin/python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--ignore-installed",
                "--no-compile",
                "--find-links",
                str(house),
                str(new),
            ],
            check=True,
        )

    base_s = timed(plain)
    return {"apply_commit_s": apply_s, "baseline_venv_s": base_s, "ratio": apply_s / base_s}


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of *pid*, MB."""
    return _status_mb(pid, "VmHWM")


def vm_rss_mb(pid: int) -> float:
    """Resident set size of *pid* now, MB."""
    return _status_mb(pid, "VmRSS")


def bench_service(tmp: Path) -> dict[str, float]:
    from helpers_mqtt import Requester, Subscriber
    from mosquitto_broker import Broker
    from notify_socket import NotifySocket

    broker = Broker(tmp / "mq").start()
    prefix = "customs/post-1/dev-1"
    cfg = tmp / "config.toml"
    cfg.write_text(
        f'[device]\nid = "dev-1"\npost = "post-1"\ndata_dir = "{tmp / "data"}"\n'
        f'[panel]\npin_factory = "mock"\n[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
    )
    notify = NotifySocket(tmp / "notify.sock")
    watcher = Subscriber(broker.port, [f"{prefix}/status"])
    watcher.wait_subscribed()
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="30000000")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "--config", str(cfg), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
        env=env,
    )
    try:
        notify.wait_for(lambda m: m.get("READY") == "1", 120)
        ready_s = time.perf_counter() - t0
        watcher.wait_for(lambda ms: any(m.json()["state"] == "online" for m in ms), timeout=60)
        online_s = time.perf_counter() - t0
        rss_ready = vm_rss_mb(proc.pid)
        req = Requester(broker.port)
        req.send("scan", {"consignment": "BENCH"}, b"b1")
        req.response(b"b1", timeout=60)
        req.close()
        rss = vm_hwm_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        watcher.close()
        notify.close()
        broker.kill()
    base = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import numpy, scipy.signal, scipy.optimize, sys; "
            "from ai_edge_litert.interpreter import Interpreter; sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
    )
    time.sleep(3)
    base_rss = vm_hwm_mb(base.pid)
    base.communicate(b"")
    return {
        "start_to_ready_s": ready_s,
        "start_to_online_s": online_s,
        "rss_at_ready_mb": rss_ready,
        "peak_rss_mb": rss,
        "baseline_rss_mb": base_rss,
        "rss_ratio": rss / base_rss,
    }


def main() -> int:
    out: dict[str, Any] = {"machine": platform.machine(), "python": platform.python_version()}
    only = sys.argv[1:] or ["data", "app", "service"]
    if "data" in only:
        with tempfile.TemporaryDirectory() as d:
            out["data_update"] = bench_data(Path(d) / "data")
        print(json.dumps(out["data_update"]), flush=True)
    if "app" in only:
        with tempfile.TemporaryDirectory() as d:
            out["app_update"] = bench_app(Path(d))
        print(json.dumps(out["app_update"]), flush=True)
    if "service" in only:
        with tempfile.TemporaryDirectory() as d:
            out["service"] = bench_service(Path(d))
    print(json.dumps(out, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"ota-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

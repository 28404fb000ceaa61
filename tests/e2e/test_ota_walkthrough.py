"""The README's "Updating a device" runs as written: scripts/ota-walkthrough.sh takes an
update from a technician's signed repository (served over HTTP) to a running device, asked
over MQTT (cmd/update), applied by the root updater, reloaded by the service, committed,
and reported on the signed, retained ota/state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from paths import PROJECT


def test_the_walkthrough_updates_a_running_device(tmp_path: Path) -> None:
    work = tmp_path / "walk"
    env = dict(os.environ, SPECTRA_EDGE_BIN=str(Path(sys.executable).parent))
    env.pop("SPECTRA_EDGE_CONFIG", None)
    env.pop("SPECTRA_EDGE_MODELS", None)
    done = subprocess.run(
        ["bash", str(PROJECT / "scripts" / "ota-walkthrough.sh"), str(work)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
    out = done.stdout
    assert '"accepted":true' in out and "committed: library/library-2026.12.1.tar" in out
    assert '"state":"committed"' in out and '"signature"' in out
    assert "(library 2026.12.1)" in out
    assert "walk-through done" in out
    service_log = (work / "service.log").read_text()
    assert "reloading the identifier" in service_log

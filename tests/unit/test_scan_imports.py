"""The scan path stands on its own: the service depends on ``edge.scan``, never the reverse.

``import edge.scan`` (what ``spectra-edge scan`` and ``acquire`` load) must work on a box
without paho-mqtt, and must not load the service or the MQTT code. A fresh interpreter with
an import hook that refuses ``paho`` proves it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCAN_MODULES = (
    "edge.scan",
    "edge.scan.data",
    "edge.scan.opener",
    "edge.scan.acquisition",
    "edge.scan.pipeline",
    "edge.scan.engine",
)

PROBE = textwrap.dedent(
    """
    import importlib, importlib.abc, json, sys

    class NoPaho(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "paho" or name.startswith("paho."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, NoPaho())
    for name in sys.argv[1:]:
        importlib.import_module(name)
    loaded = sorted(
        m for m in sys.modules
        if m.split(".")[0] == "paho" or m.startswith(("edge.service", "edge.publish"))
    )
    print(json.dumps(loaded))
    """
)


def _probe(*modules: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, timeout=120
    )


def test_the_hook_really_blocks_paho() -> None:
    done = _probe("paho.mqtt.client")
    assert done.returncode != 0 and "blocked by the test" in done.stderr


def test_edge_scan_imports_without_paho_and_without_the_service() -> None:
    done = _probe(*SCAN_MODULES)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # neither paho, nor the service, nor MQTT code

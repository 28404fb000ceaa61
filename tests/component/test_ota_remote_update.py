"""A remote update end to end on a scratch device: ``cmd/update`` over a real mosquitto -> the
service writes the request file -> the root side (``spectra-edge ota run-request``, what the
.path unit starts) applies it from a TUF repository -> the retained, signed ``ota/state``
shows each step up to ``committed``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers_mqtt import Requester, Subscriber, make_config, validate_message
from mosquitto_broker import Broker
from ota_helpers import new_device, publish_data
from service_fakes import FakeEngine

from edge.ota.layout import Layout
from edge.ota.repo import Repository
from edge.ota.request import REQUEST_FILE
from edge.publish.signing import load_public_key, verify
from edge.service import Service

PREFIX = "customs/post-1/dev-1"
TOPIC = f"{PREFIX}/ota/state"


def test_cmd_update_reaches_the_updater_and_ota_state_follows(
    tmp_path: Path, mosquitto: Broker
) -> None:
    repo = Repository(tmp_path / "repo")
    repo.init()
    device = new_device(tmp_path, repo)  # install root tmp/root, data_dir tmp/state
    publish_data(repo, tmp_path, "2026.12.1", "20261201")
    cfg = make_config(device.device.data_dir, mosquitto.port, ota={"root": str(device.ota.root)})
    svc = Service(cfg, lambda: FakeEngine())
    svc.ota_state.poll_s = 0.1
    svc.start()
    sub = Subscriber(mosquitto.port, [TOPIC])
    req = Requester(mosquitto.port)
    try:
        assert svc.link.wait_connected(10)
        sub.wait_subscribed()
        req.send("update", {"repository": str(repo.path)}, b"u-1")
        answer = req.response(b"u-1", timeout=10)
        validate_message(f"{PREFIX}/cmd/update/response", answer)
        assert answer["ok"] is True and answer["result"]["accepted"] is True
        assert answer["result"]["state_topic"] == TOPIC
        assert (device.device.data_dir / REQUEST_FILE).is_file()
        req.send("update", {"repository": str(repo.path)}, b"u-2")
        second = req.response(b"u-2", timeout=10)
        assert second["ok"] is False and second["error"]["code"] == "busy"
        req.send("update", {"repository": "relative/path"}, b"u-3")
        bad = req.response(b"u-3", timeout=10)
        assert bad["ok"] is False and bad["error"]["code"] == "bad_request"

        config = tmp_path / "updater.toml"
        config.write_text(
            f'[device]\ndata_dir = "{device.device.data_dir}"\n'
            f'[ota]\nroot = "{device.ota.root}"\nservice = "none"\nmin_free_mb = 1\n'
        )
        done = subprocess.run(
            [sys.executable, "-m", "edge.cli", "--config", str(config), "ota", "run-request"],
            capture_output=True,
            text=True,
            timeout=600,
            cwd="/",
        )
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert not (device.device.data_dir / REQUEST_FILE).exists()
        assert Layout(device.ota.root).installed()["library"] == "2026.12.1"

        msgs = sub.wait_for(
            lambda ms: any(m.json()["state"] == "committed" for m in ms), timeout=20
        )
        seen = [m.json() for m in msgs]
        key = load_public_key(svc.key.public_b64)
        for payload in seen:
            assert validate_message(TOPIC, payload) == "ota-state"
            assert verify(payload, key)
        order = [p["state"] for p in seen]
        assert order[0] == "idle" and order[-1] == "committed"
        assert "downloading" in order or "trial" in order  # steps seen while polling
        assert seen[-1]["installed"]["library"] == "2026.12.1"
        # a new request is accepted once the update has ended
        req.send("update", {"repository": str(repo.path)}, b"u-4")
        assert req.response(b"u-4", timeout=10)["ok"] is True
    finally:
        req.close()
        sub.close()
        svc.stop(5)

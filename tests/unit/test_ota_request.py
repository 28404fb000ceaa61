"""cmd/update's hand-over: the service writes one request file, never over a waiting one and
never while an update runs; the root side takes it (removed first), refuses links, big files,
bad JSON and names the updater would not accept."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge.errors import UpdateError
from edge.ota import trial
from edge.ota.request import MAX_REQUEST_BYTES, REQUEST_FILE, UpdateRequests, take_request
from edge.service.commands.contract import CommandRejected, UpdateArgs
from edge.service.commands.handlers import CommandHandlers


def requests(tmp_path: Path) -> UpdateRequests:
    return UpdateRequests(tmp_path / "state", tmp_path / "opt")


def test_a_request_is_written_once_and_taken_once(tmp_path: Path) -> None:
    r = requests(tmp_path)
    req = r.submit("/media/usb/repo", "app/spectra_edge-0.2.0.tar", "remote")
    doc = json.loads((tmp_path / "state" / REQUEST_FILE).read_text())
    assert doc["repository"] == "/media/usb/repo" and doc["id"] == req.id
    with pytest.raises(UpdateError) as busy:
        r.submit("https://laptop.local:8080", None, "remote")
    assert busy.value.reason == "busy" and "already waiting" in str(busy.value)
    assert json.loads((tmp_path / "state" / REQUEST_FILE).read_text())["id"] == req.id
    taken = take_request(tmp_path / "state")
    assert taken == req
    assert not (tmp_path / "state" / REQUEST_FILE).exists()
    assert take_request(tmp_path / "state") is None
    assert not list((tmp_path / "state").iterdir())  # no temp file left behind


@pytest.mark.parametrize("state", ["downloading", "verifying", "installing", "trial"])
def test_busy_while_an_update_runs(tmp_path: Path, state: str) -> None:
    trial.write_state(tmp_path / "opt", state, version="0.2.0")
    with pytest.raises(UpdateError) as err:
        requests(tmp_path).submit("/media/usb/repo", None, "remote")
    assert err.value.reason == "busy" and state in str(err.value)
    assert not (tmp_path / "state" / REQUEST_FILE).exists()


@pytest.mark.parametrize("state", ["idle", "committed", "rolled_back", "failed"])
def test_accepted_after_an_update_ended(tmp_path: Path, state: str) -> None:
    trial.write_state(tmp_path / "opt", state)
    assert requests(tmp_path).submit("/media/usb/repo", None, "remote").repository


@pytest.mark.parametrize(
    ("repository", "target"),
    [
        ("relative/repo", None),
        ("file:///etc", None),
        ("/media/usb repo", None),
        ("/media/usb/repo", "../../etc/shadow"),
        ("/media/usb/repo", "app/"),
        ("/media/usb/repo\n", None),
    ],
)
def test_names_the_updater_would_refuse_are_refused(
    tmp_path: Path, repository: str, target: str | None
) -> None:
    with pytest.raises(UpdateError) as err:
        requests(tmp_path).submit(repository, target, "remote")
    assert err.value.reason == "bad_request"
    with pytest.raises(ValueError):  # the command model agrees
        UpdateArgs.model_validate(
            {"repository": repository, **({"target": target} if target else {})}
        )


def test_the_root_side_refuses_links_big_files_and_bad_json(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    secret = tmp_path / "secret"
    secret.write_text('{"repository": "/x"}')
    (state / REQUEST_FILE).symlink_to(secret)
    with pytest.raises(UpdateError, match="bad_request"):
        take_request(state)
    assert not (state / REQUEST_FILE).is_symlink() and secret.exists()
    (state / REQUEST_FILE).write_text(
        json.dumps({"repository": "/r", "pad": "x" * MAX_REQUEST_BYTES})
    )
    with pytest.raises(UpdateError, match="larger than"):
        take_request(state)
    (state / REQUEST_FILE).write_text("{nope")
    with pytest.raises(UpdateError, match="not JSON"):
        take_request(state)
    (state / REQUEST_FILE).write_text(json.dumps({"repository": "/r", "target": "app/../x"}))
    with pytest.raises(UpdateError, match="not a target name"):
        take_request(state)
    os.mkfifo(state / REQUEST_FILE)
    with pytest.raises(UpdateError, match="not a regular file"):
        take_request(state)
    assert not (state / REQUEST_FILE).exists()  # every refused request is gone: no loop


def handlers(tmp_path: Path, updates: UpdateRequests | None) -> CommandHandlers:
    return CommandHandlers(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        uptime=lambda: 1.0,
        updates=updates,
        state_topic="customs/p/d/ota/state",
    )


def test_the_update_handler_answers_accepted_or_busy(tmp_path: Path) -> None:
    h = handlers(tmp_path, requests(tmp_path))
    args = UpdateArgs(repository="https://laptop.local:8080/repo")
    out = h.update(args)
    assert out["accepted"] is True and out["state_topic"] == "customs/p/d/ota/state"
    assert "target" not in out
    with pytest.raises(CommandRejected) as err:
        h.update(args)
    assert err.value.code == "busy"
    with pytest.raises(CommandRejected) as off:
        handlers(tmp_path, None).update(args)
    assert off.value.code == "failed"

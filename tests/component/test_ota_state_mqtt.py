"""``<prefix>/ota/state`` on a real mosquitto: retained, signed with the device key, valid
against its schema; published at start (``idle`` before any update), whenever the updater's
``ota/state.json`` changes, and again after the broker comes back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_mqtt import Subscriber, make_config, validate_message
from mosquitto_broker import Broker
from service_fakes import FakeEngine

from edge.ota import trial
from edge.publish.signing import load_public_key, verify
from edge.service import Service

PREFIX = "customs/post-1/dev-1"
TOPIC = f"{PREFIX}/ota/state"


@pytest.fixture
def service(tmp_path: Path, mosquitto: Broker) -> Iterator[Service]:
    cfg = make_config(tmp_path / "data", mosquitto.port, ota={"root": str(tmp_path / "opt")})
    svc = Service(cfg, lambda: FakeEngine())
    svc.ota_state.poll_s = 0.1
    svc.start()
    assert svc.link.wait_connected(10)
    yield svc
    svc.stop(5)


def states(sub: Subscriber) -> list[dict[str, Any]]:
    return [m.json() for m in sub.on(TOPIC)]


def wait_state(sub: Subscriber, state: str, timeout: float = 10.0) -> dict[str, Any]:
    sub.wait_for(
        lambda ms: any(m.topic == TOPIC and m.json()["state"] == state for m in ms), timeout
    )
    return [s for s in states(sub) if s["state"] == state][-1]


def checked(svc: Service, payload: dict[str, Any]) -> dict[str, Any]:
    assert validate_message(TOPIC, payload) == "ota-state"
    assert verify(payload, load_public_key(svc.key.public_b64))
    forged = dict(payload, reason="forged")
    assert not verify(forged, load_public_key(svc.key.public_b64))
    return payload


def test_idle_then_each_state_the_updater_writes(
    tmp_path: Path, mosquitto: Broker, service: Service
) -> None:
    sub = Subscriber(mosquitto.port, [TOPIC])
    try:
        sub.wait_subscribed()
        idle = checked(service, wait_state(sub, "idle"))
        assert sub.on(TOPIC)[0].retain
        assert idle["version"] is None and idle["reason"] is None
        assert idle["installed"]["app"]
        root = tmp_path / "opt"
        trial.write_state(root, "downloading", source="/media/usb/repo", reason=None)
        checked(service, wait_state(sub, "downloading"))
        trial.write_state(
            root,
            "installing",
            kind="library+model",
            version="2026.12.1",
            deferred=True,
            reason="switch deferred: scan in progress or alarm active",
        )
        deferred = checked(service, wait_state(sub, "installing"))
        assert deferred["deferred"] is True and "deferred" in deferred["reason"]
        trial.write_state(
            root,
            "rolled_back",
            kind="app",
            version="0.2.0",
            reason="the service failed to start 3 times on trial",
            running="0.1.0",
        )
        rolled = checked(service, wait_state(sub, "rolled_back"))
        assert rolled["version"] == "0.2.0" and rolled["running"] == "0.1.0"
        assert "3 times" in rolled["reason"]
        trial.write_state(root, "failed", reason="hash_mismatch: ...", code="hash_mismatch")
        assert checked(service, wait_state(sub, "failed"))["code"] == "hash_mismatch"
    finally:
        sub.close()


def test_retained_for_a_late_subscriber_and_republished_after_a_broker_restart(
    tmp_path: Path, mosquitto: Broker, service: Service
) -> None:
    trial.write_state(tmp_path / "opt", "committed", kind="data", version="2026.12.1")
    first = Subscriber(mosquitto.port, [TOPIC])
    try:
        first.wait_subscribed()
        wait_state(first, "committed")
    finally:
        first.close()
    late = Subscriber(mosquitto.port, [TOPIC])
    try:
        late.wait_subscribed()
        got = checked(service, wait_state(late, "committed"))
        assert late.on(TOPIC)[-1].retain and got["kind"] == "data"
    finally:
        late.close()
    mosquitto.restart()  # no persistence: the broker forgot every retained message
    epoch = service.link.epoch
    after = Subscriber(mosquitto.port, [TOPIC])
    try:
        after.wait_subscribed()
        # the device reconnects and republishes the same signed state
        again = checked(service, wait_state(after, "committed", timeout=20))
        assert service.link.epoch > epoch
        assert again["signature"] == got["signature"]
    finally:
        after.close()

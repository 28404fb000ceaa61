"""The post's Mosquitto configuration (deploy/mosquitto): TLS identities and ACLs, tried on a
real broker. Finding 8 of issue 8: anyone on the broker could speak for a device."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from broker_tls import ACCEPTED, TlsClient, render_post_conf, render_shipped
from certs import make_ca, make_leaf
from mosquitto_broker import Broker

POST = "post-1"
CONTROL = f"control@{POST}"
NOT_AUTHORIZED = 0x87


def _render(tmp: Path, pki: dict[str, Path], port: int) -> str:
    """The shipped config with this test's port, certificates and rendered ACL."""
    acl = tmp / "spectra-edge.acl"
    acl.write_text(render_shipped("post.acl", {"@POST@": POST}))
    return render_post_conf(acl, port, pki["ca"], pki["broker.crt"], pki["broker.key"])


def _client(name: str, port: int, pki: dict[str, Path]) -> TlsClient:
    """A client holding the post CA's certificate for *name*."""
    return TlsClient(name, port, pki["ca"], pki[f"{name}.crt"], pki[f"{name}.key"])


@pytest.fixture
def post(tmp_path: Path) -> Iterator[dict[str, TlsClient]]:
    pki_dir = tmp_path / "pki"
    pki_dir.mkdir()
    ca_key, ca, ca_path = make_ca(pki_dir, "post-ca")
    rogue_key, rogue, _ = make_ca(pki_dir, "rogue-ca")
    pki = {"ca": ca_path}
    for cn, server in (("broker", True), ("dev-a", False), ("dev-b", False), (CONTROL, False)):
        pki[f"{cn}.crt"], pki[f"{cn}.key"] = make_leaf(pki_dir, cn, ca_key, ca, server=server)
    pki["rogue.crt"], pki["rogue.key"] = make_leaf(pki_dir, "dev-c", rogue_key, rogue, False)
    broker = Broker(tmp_path / "broker")
    broker.config_text = _render(tmp_path, pki, broker.port)
    broker.start()
    clients: dict[str, TlsClient] = {}
    try:
        for name in ("dev-a", "dev-b", CONTROL):
            clients[name] = _client(name, broker.port, pki)
        clients["control"] = clients[CONTROL]
        clients["pki"] = pki  # type: ignore[assignment]
        yield clients
    finally:
        for name, c in clients.items():
            if isinstance(c, TlsClient) and name != "control":
                c.close()
        broker.kill()


def _topic(device: str, rest: str) -> str:
    return f"customs/{POST}/{device}/{rest}"


def test_a_device_publishes_its_own_results_and_state(post: dict[str, TlsClient]) -> None:
    control, dev_a = post["control"], post["dev-a"]
    assert control.subscribe(f"customs/{POST}/#") == 1
    for rest in ("scan/result", "status", "alarm", "health", "info", "ota/state"):
        assert dev_a.publish(_topic("dev-a", rest)) == ACCEPTED, rest
    control.wait(lambda: control.got(_topic("dev-a", "ota/state")), "control saw nothing")


@pytest.mark.parametrize("rest", ["scan/result", "alarm", "status", "info"])
def test_a_device_cannot_speak_for_another(post: dict[str, TlsClient], rest: str) -> None:
    control, dev_a = post["control"], post["dev-a"]
    assert control.subscribe(f"customs/{POST}/#") == 1
    assert dev_a.publish(_topic("dev-b", rest)) == NOT_AUTHORIZED
    assert dev_a.publish(_topic("dev-a", "status")) == ACCEPTED  # a marker after the refused one
    control.wait(lambda: control.got(_topic("dev-a", "status")), "marker not seen")
    assert not control.got(_topic("dev-b", rest))


def test_only_the_control_room_sends_commands(post: dict[str, TlsClient]) -> None:
    control, dev_a, dev_b = post["control"], post["dev-a"], post["dev-b"]
    assert dev_a.subscribe(_topic("dev-a", "cmd/+")) == 1
    # a device can neither command another device nor itself
    assert dev_b.publish(_topic("dev-a", "cmd/ack")) == NOT_AUTHORIZED
    assert dev_a.publish(_topic("dev-a", "cmd/ack")) == NOT_AUTHORIZED
    assert control.publish(_topic("dev-a", "cmd/scan")) == ACCEPTED
    dev_a.wait(lambda: dev_a.got(_topic("dev-a", "cmd/scan")), "command not delivered")
    assert not dev_a.got(_topic("dev-a", "cmd/ack"))


def test_a_device_reads_only_its_own_commands(post: dict[str, TlsClient]) -> None:
    # Mosquitto may grant the subscription; the ACL is applied to every delivery
    control, dev_a, dev_b = post["control"], post["dev-a"], post["dev-b"]
    dev_a.subscribe(_topic("dev-b", "cmd/+"))
    dev_a.subscribe(f"customs/{POST}/#")
    assert dev_b.subscribe(_topic("dev-b", "cmd/+")) == 1
    assert control.publish(_topic("dev-b", "cmd/scan")) == ACCEPTED
    assert dev_b.publish(_topic("dev-b", "status")) == ACCEPTED
    dev_b.wait(lambda: dev_b.got(_topic("dev-b", "cmd/scan")), "dev-b got no command")
    time.sleep(0.3)  # dev-a had the same chance to receive it
    assert not dev_a.got(_topic("dev-b", "cmd/scan"))
    assert not dev_a.got(_topic("dev-b", "status"))


def test_responses_go_only_under_the_request_topic(post: dict[str, TlsClient]) -> None:
    dev_a = post["dev-a"]
    assert dev_a.publish(_topic("dev-a", "cmd/scan/response")) == ACCEPTED
    assert dev_a.publish(_topic("dev-b", "cmd/scan/response")) == NOT_AUTHORIZED
    assert dev_a.publish(f"customs/{POST}/control/inbox") == NOT_AUTHORIZED


def test_the_control_room_cannot_forge_device_state(post: dict[str, TlsClient]) -> None:
    control = post["control"]
    for rest in ("alarm", "status", "scan/result"):
        assert control.publish(_topic("dev-a", rest)) == NOT_AUTHORIZED, rest


def test_a_certificate_from_another_ca_is_refused(
    post: dict[str, TlsClient], tmp_path: Path
) -> None:
    pki = post["pki"]  # type: ignore[assignment]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev-c", protocol=mqtt.MQTTv5)
    c.tls_set(
        ca_certs=str(pki["ca"]), certfile=str(pki["rogue.crt"]), keyfile=str(pki["rogue.key"])
    )
    port = post["dev-a"].port
    with pytest.raises((ssl.SSLError, OSError, ConnectionError)):
        c.connect("127.0.0.1", port)
        c.loop_start()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not c.is_connected():
            time.sleep(0.05)
        c.loop_stop()
        if not c.is_connected():
            raise ConnectionError("refused")

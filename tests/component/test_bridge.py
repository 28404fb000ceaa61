"""The shipped bridge of a post's Mosquitto to the national broker (deploy/mosquitto:
post.conf + post.acl + post-bridge.conf, national.conf + national.acl), run on two real
brokers with certificates from two CAs: results, retained state and command responses go up,
commands for the post's own devices come down, and a national outage only delays results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from broker_tls import (
    ACCEPTED,
    DEPLOY,
    MESSAGE_DEADLINE_S,
    TlsClient,
    render_post_conf,
    render_shipped,
)
from certs import make_ca, make_leaf
from mosquitto_broker import Broker
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

POST = "post-1"
OTHER_POST = "post-2"
DEVICE = "dev-1"
OTHER_DEVICE = "dev-2"
NATIONAL_CONTROL = "control@national"
#: A test-only identity on the post broker that may read everything, to see whether anything
#: foreign arrives there at all (the shipped post.acl has no such identity).
AUDITOR = "auditor@test"
NOT_AUTHORIZED = 0x87
NO_MATCHING_SUBSCRIBERS = 0x10
DEADLINE = MESSAGE_DEADLINE_S  # seconds for a message to cross the bridge
#: Everything a device publishes and the bridge must carry up (docs/mqtt.md).
DEVICE_TOPICS = (
    "scan/result",
    "status",
    "info",
    "health",
    "alarm",
    "ota/state",
    "cmd/scan/response",
)


def _render_national(tmp: Path, pki: dict[str, Path], port: int) -> str:
    """national.conf with this test's port, certificates, ACL and persistence directory."""
    acl = tmp / "national.acl"
    acl.write_text((DEPLOY / "national.acl").read_text())
    store = tmp / "national-store"
    store.mkdir()
    return render_shipped(
        "national.conf",
        {
            "listener 8883": f"listener {port} 127.0.0.1",
            "/etc/mosquitto/national.acl": str(acl),
            "/etc/mosquitto/certs/national-ca.crt": str(pki["national-ca"]),
            "/etc/mosquitto/certs/national-broker.crt": str(pki["national-broker.crt"]),
            "/etc/mosquitto/certs/national-broker.key": str(pki["national-broker.key"]),
            "persistence_location /var/lib/mosquitto/": f"persistence_location {store}/",
        },
    )


def _render_post(tmp: Path, pki: dict[str, Path], port: int, national_port: int) -> str:
    """post.conf + post-bridge.conf for POST, bridged to the national broker on loopback."""
    acl = tmp / "spectra-edge.acl"
    acl.write_text(
        render_shipped("post.acl", {"@POST@": POST})
        + f"\nuser {AUDITOR}\ntopic read #\n"  # test-only
    )
    conf = render_post_conf(
        acl, port, pki["post-ca"], pki["post-broker.crt"], pki["post-broker.key"]
    )
    bridge = render_shipped(
        "post-bridge.conf",
        {
            "address national-broker.customs.example:8883": f"address 127.0.0.1:{national_port}",
            "/etc/mosquitto/certs/national-ca.crt": str(pki["national-ca"]),
            "/etc/mosquitto/certs/bridge-@POST@.crt": str(pki[f"{POST}.crt"]),
            "/etc/mosquitto/certs/bridge-@POST@.key": str(pki[f"{POST}.key"]),
            "@POST@": POST,
        },
    )
    return conf + "\n" + bridge


@dataclass
class Federation:
    """The national broker, POST's broker bridged to it, and ways to connect to either."""

    tmp: Path
    pki: dict[str, Path]
    national: Broker
    post: Broker
    clients: list[TlsClient] = field(default_factory=list)

    def on_post(self, name: str, client_id: str = "") -> TlsClient:
        """A client of the post broker holding the post CA's certificate for *name*."""
        c = TlsClient(
            name,
            self.post.port,
            self.pki["post-ca"],
            self.pki[f"{name}.crt"],
            self.pki[f"{name}.key"],
            client_id=client_id,
        )
        self.clients.append(c)
        return c

    def on_national(self, name: str, client_id: str = "", persistent: bool = False) -> TlsClient:
        """A client of the national broker holding the national CA's certificate for *name*."""
        c = TlsClient(
            name,
            self.national.port,
            self.pki["national-ca"],
            self.pki[f"{name}.crt"],
            self.pki[f"{name}.key"],
            client_id=client_id,
            persistent=persistent,
        )
        self.clients.append(c)
        return c

    def wait_bridge_up(self) -> None:
        """Wait until the bridge carries a device's message up (the link is connected)."""
        probe = self.on_national(NATIONAL_CONTROL, client_id="bridge-probe")
        device = self.on_post(DEVICE, client_id="bridge-probe-device")
        topic = _topic(POST, DEVICE, "health")
        assert probe.subscribe(topic) == 1
        deadline = time.monotonic() + DEADLINE
        while True:
            assert device.publish(topic, b"probe") == ACCEPTED
            try:
                probe.wait(lambda: probe.got(topic), "", 1.0)
                break
            except AssertionError:
                assert time.monotonic() < deadline, f"bridge never connected:\n{self.logs()}"
        probe.close()
        device.close()
        self.clients.remove(probe)
        self.clients.remove(device)

    def logs(self) -> str:
        return "\n".join(
            f"--- {b.log_file}\n{b.log_file.read_text() if b.log_file.exists() else ''}"
            for b in (self.national, self.post)
        )


def _only_the_marker_arrives(sender: TlsClient, marker: str, *receivers: TlsClient) -> None:
    """*sender* publishes *marker* after what must not arrive: each receiver gets the marker,
    and nothing else (anything sent before the marker had the time to arrive too)."""
    assert sender.publish(marker, b"marker") == ACCEPTED
    for receiver in receivers:
        receiver.wait_for(marker)
    time.sleep(0.3)
    for receiver in receivers:
        assert receiver.topics() == {marker}


def _topic(post: str, device: str, rest: str) -> str:
    return f"customs/{post}/{device}/{rest}"


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    pki_dir = tmp_path / "pki"
    pki_dir.mkdir()
    nat_key, nat_ca, nat_ca_path = make_ca(pki_dir, "national-ca")
    post_key, post_ca, post_ca_path = make_ca(pki_dir, "post-ca")
    pki = {"national-ca": nat_ca_path, "post-ca": post_ca_path}
    # the national CA signs the national broker, each post's bridge (CN = post) and the
    # national control room; the post CA signs the post broker and the post's devices
    for cn, server in (
        ("national-broker", True),
        (POST, False),
        (OTHER_POST, False),
        (NATIONAL_CONTROL, False),
    ):
        pki[f"{cn}.crt"], pki[f"{cn}.key"] = make_leaf(pki_dir, cn, nat_key, nat_ca, server)
    for cn, server in (
        ("post-broker", True),
        (DEVICE, False),
        (OTHER_DEVICE, False),
        (AUDITOR, False),
    ):
        pki[f"{cn}.crt"], pki[f"{cn}.key"] = make_leaf(pki_dir, cn, post_key, post_ca, server)
    national = Broker(tmp_path / "national")
    national.config_text = _render_national(tmp_path, pki, national.port)
    post = Broker(tmp_path / "post")
    post.config_text = _render_post(tmp_path, pki, post.port, national.port)
    fed = Federation(tmp_path, pki, national, post)
    try:
        national.start()
        post.start()
        fed.wait_bridge_up()
        yield fed
    finally:
        for c in fed.clients:
            c.close()
        post.kill()
        national.kill()


def test_results_state_and_responses_reach_the_national_broker(federation: Federation) -> None:
    """Everything a device publishes under its own prefix crosses the bridge, QoS 1."""
    control = federation.on_national(NATIONAL_CONTROL)
    device = federation.on_post(DEVICE)
    assert control.subscribe("customs/#") == 1
    for rest in DEVICE_TOPICS:
        assert device.publish(_topic(POST, DEVICE, rest), rest.encode()) == ACCEPTED, rest
    for rest in DEVICE_TOPICS:
        topic = _topic(POST, DEVICE, rest)
        control.wait_for(topic, f"{topic} did not cross the bridge\n{federation.logs()}")
        assert control.payloads(topic) == [rest.encode()]


def test_ingesters_share_results_on_the_national_broker(federation: Federation) -> None:
    """The ingesters' shared subscription (docs/deploy.md) is allowed and gets bridged results."""
    ingester = federation.on_national(NATIONAL_CONTROL, client_id="ingest-1")
    device = federation.on_post(DEVICE)
    assert ingester.subscribe("$share/spectra-console/customs/+/+/scan/result") == 1
    topic = _topic(POST, DEVICE, "scan/result")
    assert device.publish(topic, b'{"scan_id": "s-1"}') == ACCEPTED
    ingester.wait_for(topic)
    assert ingester.payloads(topic) == [b'{"scan_id": "s-1"}']


def test_retained_state_is_kept_on_the_national_broker(federation: Federation) -> None:
    """Retained status and alarm cross as retained: a later subscriber still gets them."""
    live = federation.on_national(NATIONAL_CONTROL, client_id="live")
    device = federation.on_post(DEVICE)
    assert live.subscribe(f"customs/{POST}/{DEVICE}/+") == 1
    for rest in ("status", "alarm"):
        assert device.publish(_topic(POST, DEVICE, rest), rest.encode(), retain=True) == ACCEPTED
    for rest in ("status", "alarm"):
        live.wait_for(_topic(POST, DEVICE, rest))
    late = federation.on_national(NATIONAL_CONTROL, client_id="late")
    assert late.subscribe(f"customs/{POST}/+/+") == 1
    for rest in ("status", "alarm"):
        topic = _topic(POST, DEVICE, rest)
        late.wait_for(topic, f"retained {topic} not kept on the national broker")
        assert late.retained(topic) == [rest.encode()]


def test_a_command_reaches_the_device_through_the_bridge(federation: Federation) -> None:
    """The national control room commands a device of the post; the device reads it."""
    control = federation.on_national(NATIONAL_CONTROL)
    device = federation.on_post(DEVICE)
    topic = _topic(POST, DEVICE, "cmd/scan")
    assert device.subscribe(_topic(POST, DEVICE, "cmd/+")) == 1
    assert control.publish(topic, b'{"request_id": "r-1"}') == ACCEPTED
    device.wait_for(topic, f"command did not come down the bridge\n{federation.logs()}")
    assert device.payloads(topic) == [b'{"request_id": "r-1"}']


def test_another_posts_commands_stay_out_of_this_post(federation: Federation) -> None:
    """A command for post-2 is never carried into post-1's broker, not even under another
    name: once a later command for post-1 arrived, nothing else had."""
    control = federation.on_national(NATIONAL_CONTROL)
    auditor = federation.on_post(AUDITOR)
    device = federation.on_post(DEVICE)
    assert auditor.subscribe("#") == 1
    assert device.subscribe(_topic(POST, DEVICE, "cmd/+")) == 1
    assert control.publish(_topic(OTHER_POST, DEVICE, "cmd/scan"), b"for post-2") == ACCEPTED
    marker = _topic(POST, DEVICE, "cmd/get_status")
    _only_the_marker_arrives(control, marker, auditor, device)


def test_a_post_reads_only_its_own_commands_on_the_national_broker(
    federation: Federation,
) -> None:
    """national.acl: the bridge identity of post-1 does not receive post-2's commands even if
    its bridge asked for them, nor the results of post-2."""
    control = federation.on_national(NATIONAL_CONTROL)
    other = federation.on_national(OTHER_POST, client_id="bridge-post-2")
    nosy = federation.on_national(POST, client_id="nosy-post-1")
    nosy.subscribe("customs/#")
    assert other.publish(_topic(OTHER_POST, DEVICE, "scan/result"), b"post-2 result") == ACCEPTED
    assert control.publish(_topic(OTHER_POST, DEVICE, "cmd/scan"), b"for post-2") == ACCEPTED
    marker = _topic(POST, DEVICE, "cmd/get_status")
    _only_the_marker_arrives(control, marker, nosy)


def test_a_post_cannot_speak_for_another_post_or_command(federation: Federation) -> None:
    """national.acl: a post's bridge identity publishes only its devices' messages: not
    under another post, and no commands (only the control room sends those)."""
    control = federation.on_national(NATIONAL_CONTROL)
    rogue = federation.on_national(POST, client_id="rogue-post-1")
    assert control.subscribe("customs/#") == 1
    refused = [
        _topic(OTHER_POST, DEVICE, "scan/result"),
        _topic(OTHER_POST, DEVICE, "alarm"),
        _topic(POST, DEVICE, "cmd/scan"),
        f"customs/{POST}/control",
    ]
    for topic in refused:
        assert rogue.publish(topic) == NOT_AUTHORIZED, topic
    marker = _topic(POST, DEVICE, "status")
    assert rogue.publish(marker) == ACCEPTED
    control.wait_for(marker)
    assert control.topics() == {marker}


def test_a_device_cannot_reach_beyond_its_prefix_through_the_bridge(
    federation: Federation,
) -> None:
    """A device's messages for another device, another post or a command are refused at the
    post broker and never reach the national broker."""
    control = federation.on_national(NATIONAL_CONTROL)
    device = federation.on_post(DEVICE)
    assert control.subscribe("customs/#") == 1
    refused = [
        _topic(POST, OTHER_DEVICE, "scan/result"),
        _topic(POST, OTHER_DEVICE, "alarm"),
        _topic(OTHER_POST, DEVICE, "scan/result"),
        _topic(POST, DEVICE, "cmd/scan"),
        _topic(POST, OTHER_DEVICE, "cmd/scan"),
        _topic(POST, DEVICE, "scan/result/extra"),
    ]
    for topic in refused:
        assert device.publish(topic) == NOT_AUTHORIZED, topic
    marker = _topic(POST, DEVICE, "scan/result")
    _only_the_marker_arrives(device, marker, control)


def test_results_wait_for_the_national_broker_and_then_arrive(federation: Federation) -> None:
    """With the national broker down, the post broker still takes results; the bridge queues
    them (cleansession false) and delivers every one when the national broker is back."""
    ingester = federation.on_national(NATIONAL_CONTROL, client_id="ingest-1", persistent=True)
    device = federation.on_post(DEVICE)
    topic = _topic(POST, DEVICE, "scan/result")
    assert ingester.subscribe(f"customs/{POST}/+/scan/result") == 1
    federation.national.stop()
    sent = [f'{{"scan_id": "s-{i}"}}'.encode() for i in range(5)]
    for payload in sent:
        assert device.publish(topic, payload) == ACCEPTED
    assert not ingester.got(topic)
    federation.national.start()
    ingester.wait(
        lambda: len(ingester.payloads(topic)) >= len(sent),
        f"queued results lost: got {ingester.payloads(topic)}\n{federation.logs()}",
        timeout=45.0,
    )
    assert sorted(ingester.payloads(topic)) == sorted(sent)


def test_the_control_room_sees_whether_a_posts_link_is_up(federation: Federation) -> None:
    """The bridge's retained link state reaches the national broker: 1 while the post is
    connected, 0 (its will) once the post broker is gone."""
    control = federation.on_national(NATIONAL_CONTROL)
    state = f"$SYS/broker/connection/bridge-{POST}/state"
    assert control.subscribe("$SYS/broker/connection/+/state") == 1
    control.wait_for(state, f"no link state on the national broker\n{federation.logs()}")
    assert control.retained(state) == [b"1"]
    federation.post.kill()
    control.wait(lambda: control.payloads(state)[-1:] == [b"0"], "no 'link down' state")


def _publish_properties(correlation: bytes, expiry_s: int | None = None) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.CorrelationData = correlation
    if expiry_s is not None:
        props.MessageExpiryInterval = expiry_s
    return props


def test_mqtt5_properties_cross_the_bridge_both_ways(federation: Federation) -> None:
    """A command keeps its correlation data and message expiry on its way down, and the
    device's response keeps the correlation data on its way up (the console matches on it)."""
    control = federation.on_national(NATIONAL_CONTROL)
    device = federation.on_post(DEVICE)
    command = _topic(POST, DEVICE, "cmd/ping")
    response = f"{command}/response"
    assert device.subscribe(_topic(POST, DEVICE, "cmd/+")) == 1
    assert control.subscribe(response) == 1
    assert control.publish(command, b"{}", properties=_publish_properties(b"c-1", 600)) == ACCEPTED
    device.wait_for(command)
    (got,) = device.properties[command]
    assert getattr(got, "CorrelationData", None) == b"c-1"
    assert 0 < getattr(got, "MessageExpiryInterval", 0) <= 600
    assert device.publish(response, b"{}", properties=_publish_properties(b"c-1")) == ACCEPTED
    control.wait_for(response)
    (answer,) = control.properties[response]
    assert getattr(answer, "CorrelationData", None) == b"c-1"


def test_a_command_for_a_post_whose_link_is_down_has_no_taker(federation: Federation) -> None:
    """Mosquitto 2.0 bridges over MQTT 5 do not keep their session on the national broker
    (no session expiry): with the post's link down a command is not queued; the national
    broker says so with PUBACK 0x10 (no matching subscribers), which a requester can check."""
    control = federation.on_national(NATIONAL_CONTROL)
    command = _topic(POST, DEVICE, "cmd/scan")
    assert control.publish_raw(command) == ACCEPTED  # the bridge is subscribed
    federation.post.kill()
    deadline = time.monotonic() + DEADLINE
    while control.publish_raw(command) != NO_MATCHING_SUBSCRIBERS:
        assert time.monotonic() < deadline, "the national broker still had a taker"
        time.sleep(0.1)

"""The shipped Mosquitto configs (deploy/mosquitto) rendered for a test broker, and a TLS
MQTT 5 client holding a certificate (tests of the post broker and the bridge)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paths import PROJECT

DEPLOY = PROJECT / "deploy" / "mosquitto"
ACCEPTED = 0
#: How long :meth:`TlsClient.wait_for` waits for a message by default, seconds.
MESSAGE_DEADLINE_S = 10.0


def render_shipped(name: str, replacements: dict[str, str]) -> str:
    """``deploy/mosquitto/<name>`` with each replacement made; each old string must still be
    in the shipped file (the test breaks when the file changes shape)."""
    text = (DEPLOY / name).read_text()
    for old, new in replacements.items():
        assert old in text, f"{name} no longer has {old!r}"
        text = text.replace(old, new)
    return text


def render_post_conf(acl: Path, port: int, ca: Path, cert: Path, key: Path) -> str:
    """post.conf listening on 127.0.0.1:*port* with this ACL file and these certificates."""
    return render_shipped(
        "post.conf",
        {
            "listener 8883": f"listener {port} 127.0.0.1",
            "/etc/mosquitto/spectra-edge.acl": str(acl),
            "/etc/mosquitto/certs/post-ca.crt": str(ca),
            "/etc/mosquitto/certs/broker.crt": str(cert),
            "/etc/mosquitto/certs/broker.key": str(key),
        },
    )


@dataclass
class TlsClient:
    """A paho MQTT 5 client with a certificate; records what it receives and each ack.

    With ``persistent=True`` it keeps its session on the broker (clean start off, session
    expiry of an hour) and reconnects by itself, as an ingester does."""

    name: str
    port: int
    ca: Path
    cert: Path
    key: Path
    client_id: str = ""
    persistent: bool = False
    received: list[tuple[str, bytes, bool]] = field(default_factory=list)
    properties: dict[str, list[Properties | None]] = field(default_factory=dict)
    acks: dict[int, int] = field(default_factory=dict)  # mid -> reason code
    granted: dict[int, list[int]] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id or self.name,
            protocol=mqtt.MQTTv5,
        )
        c.tls_set(
            ca_certs=str(self.ca),
            certfile=str(self.cert),
            keyfile=str(self.key),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        c.reconnect_delay_set(min_delay=1, max_delay=1)
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        self.client = c
        props = None
        if self.persistent:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        c.connect("127.0.0.1", self.port, clean_start=not self.persistent, properties=props)
        c.loop_start()
        self.wait(c.is_connected, f"{self.name} did not connect")

    def wait(self, cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        """Wait until *cond* holds; fail with *what* after *timeout* seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not cond():
                left = deadline - time.monotonic()
                assert left > 0, what
                self.cond.wait(min(left, 0.05))

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.received.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.properties.setdefault(msg.topic, []).append(msg.properties)
            self.cond.notify_all()

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, rc: ReasonCode, props: object
    ) -> None:
        with self.cond:
            self.acks[mid] = rc.value
            self.cond.notify_all()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, rcs: list[ReasonCode], p: object
    ) -> None:
        with self.cond:
            self.granted[mid] = [rc.value for rc in rcs]
            self.cond.notify_all()

    def publish(
        self,
        topic: str,
        payload: bytes = b"{}",
        retain: bool = False,
        properties: Properties | None = None,
    ) -> int:
        """Publish at QoS 1; the broker's PUBACK reason code (ACCEPTED, or the refusal)."""
        code = self.publish_raw(topic, payload, retain, properties)
        return ACCEPTED if code < 0x80 else code  # 0x10 "no matching subscribers" is success

    def publish_raw(
        self,
        topic: str,
        payload: bytes = b"{}",
        retain: bool = False,
        properties: Properties | None = None,
    ) -> int:
        """Publish at QoS 1; the PUBACK reason code exactly as the broker sent it."""
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)
        self.wait(lambda: info.mid in self.acks, f"no PUBACK for {topic}")
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> int:
        """Subscribe at QoS 1; the granted QoS or the refusal code."""
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None, f"SUBSCRIBE {topic} not sent"
        self.wait(lambda: mid in self.granted, f"no SUBACK for {topic}")
        return self.granted[mid][0]

    def payloads(self, topic: str) -> list[bytes]:
        with self.cond:
            return [p for t, p, _ in self.received if t == topic]

    def got(self, topic: str) -> bool:
        return bool(self.payloads(topic))

    def retained(self, topic: str) -> list[bytes]:
        with self.cond:
            return [p for t, p, r in self.received if t == topic and r]

    def topics(self) -> set[str]:
        with self.cond:
            return {t for t, _, _ in self.received}

    def wait_for(self, topic: str, what: str = "", timeout: float = MESSAGE_DEADLINE_S) -> None:
        self.wait(lambda: self.got(topic), what or f"{self.name} never got {topic}", timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

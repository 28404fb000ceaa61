"""Test helpers for MQTT: a real paho subscriber, configs pointing at a test broker, results."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import Config
from edge.config.loader import parse_config
from edge.identify.result import Hit, Identification, MixtureComponent, Substance
from edge.publish import messages


def make_config(data_dir: Path, port: int, **sections: dict[str, Any]) -> Config:
    """A config for device ``post-1/dev-1`` with data in *data_dir*, broker on 127.0.0.1:*port*."""
    data: dict[str, Any] = {
        "device": {"id": "dev-1", "post": "post-1", "data_dir": str(data_dir)},
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "keepalive_s": 5,
        },
        "outbox": {"flush_timeout_s": 5.0},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data)


def make_identification(n: int = 0, *, alarm: bool = False) -> Identification:
    """A plausible identification; *alarm* makes it a narcotic with severity alarm."""
    if alarm:
        sub = Substance("cocaine hydrochloride", "narcotic", "tropane", "alarm", "53-21-4")
    else:
        sub = Substance("sucrose", "benign", "sugar", "info", "57-50-1")
    return Identification(
        status="identified",
        substance=sub,
        confidence=0.93,
        hits=(Hit(sub.name, 0.93), Hit("lactose", 0.41)),
        mixture=(MixtureComponent(sub.name, 1.0, sub.category, sub.severity),),
        family=sub.family,
        reason=None,
        severity=sub.severity,
        quality={"snr": 210.5, "n": float(n)},
        versions={"model": "m-1", "library": "lib-1"},
    )


@dataclass
class Received:
    """One message a subscriber received."""

    topic: str
    payload: bytes
    retain: bool
    properties: Any
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A real paho subscriber (MQTT 5) collecting messages; waits are bounded.

    ``persistent=True`` keeps a session (QoS 1 messages queue at the broker while away).
    """

    def __init__(
        self,
        port: int,
        topics: list[str],
        *,
        host: str = "127.0.0.1",
        persistent: bool = False,
        client_id: str | None = None,
        tls: Callable[[mqtt.Client], None] | None = None,
    ) -> None:
        self.topics = topics
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        if tls is not None:
            tls(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._subacks = 0
        self.client.on_subscribe = self._on_subscribe
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600 if persistent else 0
        self.client.connect_async(
            host, port, keepalive=5, clean_start=not persistent, properties=props
        )
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        self._subacks = 0
        for t in self.topics:
            client.subscribe(t, qos=1)

    def _on_subscribe(self, *args: Any) -> None:
        self._subacks += 1
        if self._subacks >= len(self.topics):  # every topic acknowledged
            self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(
                Received(
                    msg.topic,
                    bytes(msg.payload),
                    bool(msg.retain),
                    msg.properties,
                    time.monotonic(),
                )
            )
            self._cond.notify_all()

    def wait_subscribed(self, timeout: float = 10.0) -> None:
        if not self.subscribed.wait(timeout):
            raise TimeoutError("subscriber did not get its SUBACK")

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0
    ) -> list[Received]:
        """Wait until *predicate(messages)* holds; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met; got {len(self.messages)} messages")
                self._cond.wait(min(remaining, 0.1))
            return list(self.messages)

    def wait_count(self, topic: str, n: int, timeout: float = 10.0) -> list[Received]:
        """Wait for at least *n* messages on *topic*."""
        self.wait_for(lambda ms: sum(m.topic == topic for m in ms) >= n, timeout)
        return self.on(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def validate_message(topic: str, payload: Any) -> str:
    """Validate *payload* against the schema its *topic* implies; return the kind used."""
    parts = topic.split("/")
    if parts[-2:] == ["scan", "result"]:
        kind = "scan-result"
    elif parts[-2:] == ["ota", "state"]:
        kind = "ota-state"
    elif len(parts) >= 2 and parts[-3:-1] and parts[-1] == "response":
        kind = messages.response_kind(parts[-2])
    elif "cmd" in parts:
        kind = f"cmd-{parts[-1]}-request"
    else:
        kind = parts[-1]
    messages.validate(kind, payload)
    return kind


class Requester:
    """A control-room client sending MQTT 5 requests to device *prefix*, with a response
    topic and correlation data; :meth:`response` checks each answer against its schema."""

    def __init__(self, port: int, prefix: str = "customs/post-1/dev-1") -> None:
        self.prefix = prefix
        self.reply_topic = f"control/replies/{uuid.uuid4().hex[:8]}"
        self.sub = Subscriber(port, [self.reply_topic, f"{prefix}/cmd/+/response"])
        self.sub.wait_subscribed()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(
        self,
        name: str,
        body: bytes | dict[str, Any],
        corr: bytes | None = None,
        topic: str | None = None,
        reply: bool = True,
    ) -> None:
        props = Properties(PacketTypes.PUBLISH)
        if reply:
            props.ResponseTopic = self.reply_topic
        if corr is not None:
            props.CorrelationData = corr
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.client.publish(topic or f"{self.prefix}/cmd/{name}", payload, qos=1, properties=props)

    def response(self, corr: bytes, timeout: float = 10.0) -> dict[str, Any]:
        def match(ms: list[Any]) -> bool:
            return any(getattr(m.properties, "CorrelationData", None) == corr for m in ms)

        msgs = self.sub.wait_for(match, timeout)
        m = next(m for m in msgs if getattr(m.properties, "CorrelationData", None) == corr)
        body: dict[str, Any] = m.json()
        validate_message(f"{self.prefix}/cmd/{body['command']}/response", body)
        return body

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.sub.close()


def wait_commands_ready(port: int, timeout: float = 10.0) -> None:
    """Ping until the service answers: its command subscription is then in place."""
    probe = Requester(port)
    try:
        deadline = time.monotonic() + timeout
        for i in range(10_000):
            corr = f"ready-{i}".encode()
            probe.send("ping", {}, corr)
            try:
                probe.response(corr, timeout=0.3)
                return
            except TimeoutError:
                assert time.monotonic() < deadline, "service never answered ping"
    finally:
        probe.close()


def _child_main(argv: list[str]) -> int:
    """Child process for kill tests.

    ``publish DATA_DIR PORT START``: run a device Courier and submit results numbered START,
    START+1, ... (the number is the consignment ``N<n>``), printing each number once its
    commit returned, until killed.
    ``hold DATA_DIR PORT``: connect as the device and sleep (last-will test).
    """
    import sys

    mode, data_dir, port = argv[0], Path(argv[1]), int(argv[2])
    cfg = make_config(data_dir, port)
    from edge.publish import Courier, DeviceKey, MqttLink, Outbox

    link = MqttLink(cfg)
    if mode == "hold":
        link.use_key(DeviceKey.load_or_create(data_dir))  # the will is signed, as the service's
        link.start()
        link.wait_connected(10)
        print("connected", flush=True)
        time.sleep(60)
        return 0
    courier = Courier(cfg, link, Outbox.for_data_dir(data_dir), DeviceKey.load_or_create(data_dir))
    courier.start()
    n = int(argv[3])
    ident = make_identification()
    while True:
        courier.submit_result(ident, consignment=f"N{n}")
        sys.stdout.write(f"{n}\n")
        sys.stdout.flush()
        n += 1
        time.sleep(0.002)


if __name__ == "__main__":
    import sys

    sys.exit(_child_main(sys.argv[1:]))

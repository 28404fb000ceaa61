"""MqttLink against a real broker: commands with response topic + correlation data."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from helpers_mqtt import Subscriber, make_config, validate_message
from mosquitto_broker import Broker, BrokerFactory
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.publish import CommandMessage, MqttLink
from edge.publish.messages import response_payload, status_payload
from edge.publish.signing import canonical_json

PREFIX = "customs/post-1/dev-1"


def test_command_round_trip_with_correlation_data(tmp_path: Path, mosquitto: Broker) -> None:
    cfg = make_config(tmp_path, mosquitto.port)
    link = MqttLink(cfg)
    seen: list[CommandMessage] = []
    handled = threading.Event()

    def handler(msg: CommandMessage) -> None:
        seen.append(msg)
        name = link.topics.command_name(msg.topic)
        assert name is not None
        body = response_payload(name, "dev-1", "post-1", result={"uptime_s": 1.0, "version": "t"})
        reply_to = msg.response_topic or link.topics.cmd_response(name)
        link.respond(reply_to, canonical_json(body), msg.correlation_data)
        handled.set()

    link.subscribe_commands(handler)
    link.start()
    reply_topic = f"control/{uuid.uuid4().hex}"
    sub = Subscriber(mosquitto.port, [reply_topic, f"{PREFIX}/cmd/+/response"])
    requester = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        assert link.wait_connected(10)
        assert link.wait_commands_ready(10)
        sub.wait_subscribed()
        requester.connect("127.0.0.1", mosquitto.port)
        requester.loop_start()
        # a command for another device is never delivered to this one
        requester.publish("customs/post-1/dev-2/cmd/ping", b"{}", qos=1).wait_for_publish(5)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = reply_topic
        props.CorrelationData = b"req-42"
        requester.publish(f"{PREFIX}/cmd/ping", b'{"nonce":"n1"}', qos=1, properties=props)
        assert handled.wait(10)
        reply = sub.wait_count(reply_topic, 1)[0]
        # without a response topic the default one is used
        requester.publish(f"{PREFIX}/cmd/ping", b"{}", qos=1)
        default = sub.wait_count(f"{PREFIX}/cmd/ping/response", 1)[0]
    finally:
        requester.loop_stop()
        requester.disconnect()
        link.stop()
        sub.close()
    assert [m.topic for m in seen] == [f"{PREFIX}/cmd/ping"] * 2
    assert seen[0].payload == b'{"nonce":"n1"}'
    assert seen[0].correlation_data == b"req-42"
    assert seen[0].response_topic == reply_topic and seen[1].response_topic is None
    assert reply.properties.CorrelationData == b"req-42"
    body = reply.json()
    validate_message(f"{PREFIX}/cmd/ping/response", body)
    assert body["ok"] is True and body["command"] == "ping"
    assert default.json()["ok"] is True


def test_maintenance_status_survives_reconnect(tmp_path: Path, mosquitto: Broker) -> None:
    cfg = make_config(tmp_path, mosquitto.port)
    link = MqttLink(cfg)
    link.start()
    try:
        assert link.wait_connected(10)
        link.publish_retained("status", status_payload("maintenance", "dev-1", "post-1"))
        epoch = link.epoch
        mosquitto.restart()  # retained state is gone; the link must restore 'maintenance'
        sub = Subscriber(mosquitto.port, [f"{PREFIX}/status"])
        try:
            msgs = sub.wait_for(
                lambda ms: (
                    link.epoch > epoch and any(m.json()["state"] == "maintenance" for m in ms)
                ),
                15,
            )
            assert all(m.json()["state"] != "online" for m in msgs)
        finally:
            sub.close()
        late = Subscriber(mosquitto.port, [f"{PREFIX}/status"])  # sees the retained copy
        try:
            kept = late.wait_count(f"{PREFIX}/status", 1, timeout=10)[0]
        finally:
            late.close()
    finally:
        link.stop()
    assert kept.retain and kept.json()["state"] == "maintenance"
    for m in [*msgs, kept]:
        validate_message(m.topic, m.json())


def test_window_follows_the_brokers_receive_maximum(
    tmp_path: Path, mosquitto_factory: BrokerFactory
) -> None:
    from helpers_mqtt import make_identification

    from edge.publish import Courier, DeviceKey, Outbox

    broker = mosquitto_factory(max_inflight=5)  # mosquitto announces Receive Maximum 5
    cfg = make_config(tmp_path, broker.port)
    courier = Courier(cfg, MqttLink(cfg), Outbox(tmp_path / "o.db"), DeviceKey.generate())
    sub = Subscriber(broker.port, [f"{PREFIX}/scan/result"])
    sub.wait_subscribed()
    courier.start()
    try:
        assert courier.link.wait_connected(10)
        assert courier.link.window == 4  # one kept for retained state and responses
        epoch = courier.link.epoch
        for i in range(300):
            courier.submit_result(make_identification(i))
            if i % 10 == 0:
                courier.link.publish_retained("status", status_payload("online", "dev-1", "post-1"))
        got = sub.wait_count(f"{PREFIX}/scan/result", 300, timeout=30)
    finally:
        courier.stop()
        courier.outbox.close()
        sub.close()
    assert courier.link.epoch == epoch  # never disconnected for exceeding the quota
    assert [m.json()["seq"] for m in got] == list(range(1, 301))

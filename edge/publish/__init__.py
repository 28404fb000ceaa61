"""Publishing results to the customs post over MQTT, durably (contract: docs/mqtt.md).

* :class:`Topics` — the topic tree under ``mqtt.prefix``.
* :mod:`edge.publish.messages` — payload builders and their JSON Schemas.
* :class:`DeviceKey`, :func:`verify` — Ed25519 signatures over canonical JSON.
* :class:`Outbox` — SQLite outbox: committed before publish, removed on PUBACK.
* :class:`MqttLink` — paho-mqtt 2 / MQTT 5 link with availability and retained state.
* :class:`Courier` — outbox + link + sender thread (used by the service).
* :func:`deliver_result`, :func:`flush_outbox` — one-shot delivery for CLI commands.
"""

from __future__ import annotations

from edge.publish.client import CommandMessage, MqttLink
from edge.publish.courier import Courier, Submitted
from edge.publish.delivery import (
    DeliveryReport,
    FlushReport,
    deliver_result,
    flush_outbox,
    open_outbox,
)
from edge.publish.outbox import Outbox, OutboxRow, OutboxStats
from edge.publish.signing import DeviceKey, canonical_json, verify
from edge.publish.topics import Topics

__all__ = [
    "CommandMessage",
    "Courier",
    "DeliveryReport",
    "DeviceKey",
    "FlushReport",
    "MqttLink",
    "Outbox",
    "OutboxRow",
    "OutboxStats",
    "Submitted",
    "Topics",
    "canonical_json",
    "deliver_result",
    "flush_outbox",
    "open_outbox",
    "verify",
]

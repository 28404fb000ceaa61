"""Commands from the control room to devices: ``ack``, ``replay``, ``get_spectrum``.

A command goes to ``<prefix>/cmd/<name>`` (QoS 1) with MQTT 5 correlation data and a message
expiry; the device answers on its default response topic ``<prefix>/cmd/<name>/response``,
which every ingester subscribes to, so the answer lands in the database whichever process sent
the request (docs/mqtt.md).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controlroom.errors import ControlRoomError
from edge.publish.client import stop_loop

log = logging.getLogger(__name__)

#: How long a command may wait at the broker for an offline device, seconds.
DEFAULT_EXPIRY_S = 600
#: MQTT 5 PUBACK reason "No matching subscribers": the broker accepted the command and
#: dropped it (no session of the device, or its post's bridge down).
NO_MATCHING_SUBSCRIBERS = 0x10


class CommandSender(Protocol):
    """Anything that can send one command to a device."""

    def send(
        self,
        prefix: str,
        name: str,
        body: dict[str, Any],
        *,
        correlation: str,
        expiry_s: int = DEFAULT_EXPIRY_S,
    ) -> None: ...


def new_correlation() -> str:
    """A fresh correlation id (ASCII, 32 hex digits)."""
    return uuid.uuid4().hex


class CommandLink:
    """A paho client (MQTT 5) that publishes commands; waits for the broker's PUBACK."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"spectra-console-cmd-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(1, 5)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_a: self.connected.clear()
        self.client.on_publish = self._on_publish
        self._acks: dict[int, int] = {}  # mid -> PUBACK reason code, until send() reads it
        self._acks_lock = threading.Lock()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._acks_lock:
            self._acks[mid] = int(getattr(reason, "value", reason) or 0)
            while len(self._acks) > 1024:  # PUBACKs nobody waits for any more
                self._acks.pop(next(iter(self._acks)))

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("command link: broker refused the connection: %s", reason)
        else:
            self.connected.set()

    def start(self, wait_s: float = 5.0) -> None:
        """Connect in the background; waits up to *wait_s* (0: do not wait)."""
        try:
            self.client.connect_async(self.host, self.port, keepalive=30)
        except (OSError, ValueError) as err:
            raise ControlRoomError(f"command link: broker {self.host}:{self.port}: {err}") from err
        self.client.loop_start()
        if wait_s:
            self.connected.wait(wait_s)

    def stop(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        stop_loop(self.client)

    def send(
        self,
        prefix: str,
        name: str,
        body: dict[str, Any],
        *,
        correlation: str,
        expiry_s: int = DEFAULT_EXPIRY_S,
        timeout_s: float = 5.0,
    ) -> None:
        """Publish ``<prefix>/cmd/<name>``; raises :class:`ControlRoomError` without a PUBACK,
        or when the broker's PUBACK says it dropped the command: no subscriber (the device has
        no session there, or its post's bridge is down) or refused (ACL)."""
        if not self.connected.wait(timeout_s):
            raise ControlRoomError(f"broker {self.host}:{self.port} not connected")
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = correlation.encode("ascii")
        props.MessageExpiryInterval = int(expiry_s)
        info = self.client.publish(
            f"{prefix}/cmd/{name}", json.dumps(body).encode(), qos=1, properties=props
        )
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as err:
            raise ControlRoomError(f"command {name} to {prefix} not sent: {err}") from err
        with self._acks_lock:
            code = self._acks.pop(info.mid, 0)
        if not info.is_published():
            raise ControlRoomError(f"command {name} to {prefix}: no PUBACK in {timeout_s} s")
        if code == NO_MATCHING_SUBSCRIBERS:
            raise ControlRoomError(
                f"command {name} to {prefix} dropped by the broker: nobody subscribed (the"
                " device is unknown to the broker or its post's link is down); try again later"
            )
        if code >= 0x80:
            raise ControlRoomError(f"command {name} to {prefix} refused by the broker ({code:#x})")

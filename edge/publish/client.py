"""The MQTT link of one device: paho-mqtt 2.x, MQTT 5, availability and retained state.

* Last will ``offline`` (retained) is set before connecting; ``online`` on every connect,
  ``stopped`` on a clean :meth:`MqttLink.stop`.
* With the device key (:meth:`MqttLink.use_key`), every retained state message is signed
  like a result, the last will included: it is signed when it is armed, before each connect,
  so it proves who set it, not that the device is gone (docs/mqtt.md, "Signed state").
* Persistent session (clean start off, session expiry from config); QoS 1 for everything
  that matters.
* Retained state (status, info, health, alarm) is remembered and republished on every
  reconnect.
* Starts and keeps working without a broker: paho's network thread retries with a capped
  exponential backoff (``mqtt.reconnect_min_s`` .. ``reconnect_max_s``) that resets after a
  successful connect and sleeps in short slices, so :meth:`stop` stays prompt.
* A refused CONNACK is never treated as connected.
* Credentials: user name from config, password from ``mqtt.password_file`` (a relative path
  is looked up in ``$CREDENTIALS_DIRECTORY``, systemd's credentials), or the systemd
  credential ``mqtt-password`` when no file is configured. Never from the command line.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config.schema import Config
from edge.errors import ConfigError, PublishError
from edge.lifecycle import Deadline, SystemClock
from edge.publish.messages import status_payload
from edge.publish.signing import DeviceKey, canonical_json
from edge.publish.topics import RETAINED_KINDS, Topics

log = logging.getLogger(__name__)

CREDENTIAL_NAME = "mqtt-password"
#: Receive Maximum assumed when the broker announces none (MQTT 5 default is 65535; keep
#: the window modest so a slow broker is not flooded).
DEFAULT_WINDOW = 100
#: How far :meth:`MqttLink.stop` can run past its timeout: the wait for paho's network
#: thread (:func:`stop_loop`), which may be inside a TCP connect (paho's connect timeout, 5 s)
#: or a select (1 s) when asked to stop.
STOP_OVERRUN_S = 5.0


def stop_loop(client: Any, timeout: float = STOP_OVERRUN_S) -> bool:
    """Stop paho's network thread (``loop_stop``), waiting at most *timeout* seconds.

    paho joins its thread without a bound; the join runs on a helper thread here so the
    caller's deadline holds. Returns False (and logs) when the thread is still running: it
    is a daemon thread and ends with the process.
    """
    done = threading.Event()

    def join() -> None:
        try:
            client.loop_stop()
        finally:
            done.set()

    threading.Thread(target=join, name="mqtt-loop-stop", daemon=True).start()
    if done.wait(max(timeout, 0.0)):
        return True
    log.warning("MQTT network thread still running %.1f s after stop; left behind", timeout)
    return False


@dataclass(frozen=True)
class CommandMessage:
    """One message received on the command subscription ``<prefix>/cmd/+``, as it came:
    the topic is parsed, and the body checked, by the command dispatcher
    (:mod:`edge.service.commands`), not here."""

    topic: str
    payload: bytes
    response_topic: str | None
    correlation_data: bytes | None


PublishCallback = Callable[[int, bool], None]
"""Called from the network thread with (mid, acknowledged ok) for every QoS>0 PUBACK."""


def read_password(cfg: Config) -> str | None:
    """The broker password from ``mqtt.password_file`` or the systemd credential, or None."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    path: Path | None = cfg.mqtt.password_file
    if path is not None and not path.is_absolute() and creds:
        path = Path(creds) / path
    if path is None and creds and (Path(creds) / CREDENTIAL_NAME).is_file():
        path = Path(creds) / CREDENTIAL_NAME
    if path is None:
        return None
    try:
        return path.expanduser().read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as err:
        raise ConfigError(f"mqtt.password_file {path}: {err}") from err


def tls_context(cfg: Config) -> ssl.SSLContext:
    """Client TLS context: verify the broker against ``ca_file``; optional client cert."""
    tls = cfg.mqtt.tls
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file) if tls.ca_file else None
        )
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if tls.cert_file is not None:
            ctx.load_cert_chain(
                str(tls.cert_file), str(tls.key_file) if tls.key_file is not None else None
            )
        elif tls.key_file is not None:
            raise ConfigError("mqtt.tls.key_file is set without mqtt.tls.cert_file")
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"mqtt.tls: {err}") from err
    return ctx


class MqttLink:
    """One MQTT connection with the availability contract of docs/mqtt.md.

    ``role="device"`` (the service) owns the availability topic: last will, online/stopped,
    retained state, persistent session under a stable client id. ``role="oneshot"`` (CLI
    commands such as ``scan`` and ``outbox flush``) only delivers: a unique client id, no
    will and no status, so it never disturbs a running service's availability.
    """

    def __init__(self, cfg: Config, *, role: str = "device", client_id: str | None = None) -> None:
        if role not in ("device", "oneshot"):
            raise ValueError(f"role must be 'device' or 'oneshot', not {role!r}")
        self.cfg = cfg
        self.role = role
        self.topics = Topics.from_config(cfg)
        self.device = cfg.device.id
        self.post = cfg.device.post
        base = f"spectra-edge-{self.post}-{self.device}"
        if client_id is None:
            client_id = base if role == "device" else f"{base}-cli-{uuid.uuid4().hex[:8]}"
        self.client_id = client_id
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._epoch = 0  # incremented on every successful connect
        self._window = DEFAULT_WINDOW
        self._retained: dict[str, bytes] = {}
        self._maintenance: bytes | None = None
        self._command_handler: Callable[[CommandMessage], object] | None = None
        self._commands_ready = threading.Event()
        self._command_sub_mid: int | None = None
        self._publish_listeners: list[PublishCallback] = []
        self._connect_listeners: list[Callable[[bool], None]] = []
        self._started = False
        self._stopped = False
        self.last_error: str | None = None
        self._key: DeviceKey | None = None
        self._client = self._make_client()

    # -- set-up ------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        m = self.cfg.mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=True,
        )
        client.reconnect_delay_set(m.reconnect_min_s, m.reconnect_max_s)  # type: ignore[arg-type]
        client.max_inflight_messages_set(DEFAULT_WINDOW)
        client.max_queued_messages_set(0)
        if m.username is not None:
            client.username_pw_set(m.username, read_password(self.cfg))
        if m.tls.enabled:
            client.tls_set_context(tls_context(self.cfg))
        if self.role == "device":
            self._arm_will(client)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def use_key(self, key: DeviceKey) -> None:
        """Sign every retained state message (and the last will) with *key* from now on.

        Call it before :meth:`start`: state set earlier is not re-signed.
        """
        self._key = key
        if self.role == "device":
            self._arm_will(self._client)

    def encode_state(self, payload: dict[str, Any]) -> bytes:
        """The wire bytes of a state message: canonical JSON, signed when a key is set."""
        if self._key is None:
            return canonical_json(payload)
        return self._key.sign_canonical(payload)[1]

    def _arm_will(self, client: mqtt.Client) -> None:
        """Set the last will ``offline`` for the next connection. Signed, it carries the time
        it was armed: who set it is proven, liveness is not (the broker sends it later)."""
        signed = self._key is not None
        will = status_payload("offline", self.device, self.post, with_time=signed)
        client.will_set(self.topics.status, self.encode_state(will), qos=1, retain=True)

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        if self.role == "device":
            props.SessionExpiryInterval = self.cfg.mqtt.session_expiry_s
        else:
            props.SessionExpiryInterval = 0
        return props

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background; never blocks on, or fails for, a missing broker."""
        with self._lock:
            if self._started:
                return
            self._started = True
        m = self.cfg.mqtt
        try:
            self._client.connect_async(
                m.host,
                m.port,
                keepalive=m.keepalive_s,
                clean_start=self.role != "device",
                properties=self._connect_properties(),
            )
        except (OSError, ValueError) as err:
            raise PublishError(f"cannot start MQTT client for {m.host}:{m.port}: {err}") from err
        self._client.loop_start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``stopped`` (device role), disconnect and join the network thread.

        Idempotent; bounded by *timeout* seconds plus at most :data:`STOP_OVERRUN_S` (paho's
        own join).
        """
        with self._lock:
            if not self._started or self._stopped:
                self._stopped = True
                return
            self._stopped = True
        deadline = Deadline(SystemClock(), timeout)
        if self.role == "device" and self._connected.is_set():
            payload = self.encode_state(status_payload("stopped", self.device, self.post))
            info = self._client.publish(self.topics.status, payload, qos=1, retain=True)
            try:
                info.wait_for_publish(deadline.remaining())
            except (RuntimeError, ValueError):
                log.warning("could not publish 'stopped' before shutdown")
        self._client.disconnect()
        stop_loop(self._client)  # returns once the loop sees the disconnect, or gives up

    def __enter__(self) -> MqttLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state -------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True between an accepted CONNACK and the next disconnect."""
        return self._connected.is_set()

    def loop_problem(self) -> str | None:
        """None while paho's network thread runs (connected or reconnecting: a broker that
        cannot be reached is not a problem here), else what is wrong; the watchdog asks."""
        if not self._started or self._stopped:
            return "MQTT link not running"
        thread = getattr(self._client, "_thread", None)  # paho's loop_start thread
        if thread is None or not thread.is_alive():
            return "MQTT network loop is not running"
        return None

    @property
    def epoch(self) -> int:
        """Number of successful connects so far (changes on every reconnect)."""
        return self._epoch

    @property
    def window(self) -> int:
        """How many QoS 1 messages may be in flight (the broker's Receive Maximum)."""
        return self._window

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to *timeout* seconds for a connection; True when connected."""
        return self._connected.wait(max(0.0, timeout))

    def add_publish_listener(self, callback: PublishCallback) -> None:
        """Call *callback(mid, ok)* from the network thread on every PUBACK."""
        self._publish_listeners.append(callback)

    def add_connect_listener(self, callback: Callable[[bool], None]) -> None:
        """Call *callback(connected)* from the network thread on connect and disconnect."""
        self._connect_listeners.append(callback)

    # -- paho callbacks (network thread) -----------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            error = f"connection refused: {reason}"
            if self.last_error == error:  # log once per condition, not on every retry
                return
            self.last_error = error
            log.error(
                "MQTT broker %s:%s refused the connection: %s",
                self.cfg.mqtt.host,
                self.cfg.mqtt.port,
                reason,
            )
            return
        window = DEFAULT_WINDOW
        if properties is not None and hasattr(properties, "ReceiveMaximum"):
            # leave room for retained state and command responses on the same session
            receive_max = int(properties.ReceiveMaximum)
            window = max(1, min(DEFAULT_WINDOW, receive_max - min(4, receive_max // 4)))
        self._window = window
        log.info(
            "MQTT connected to %s:%s (session present: %s, window %d)",
            self.cfg.mqtt.host,
            self.cfg.mqtt.port,
            flags.session_present,
            window,
        )
        if self.role == "device":
            if self._maintenance is None:
                online = status_payload("online", self.device, self.post)
                self._retained["status"] = self.encode_state(online)
            for kind in RETAINED_KINDS:
                payload = self._retained.get(kind)
                if payload is not None:
                    client.publish(self.topics.state(kind), payload, qos=1, retain=True)
        if self._command_handler is not None:
            self._subscribe_commands(client)
        if self.last_error is not None:
            log.info("MQTT link recovered (was: %s)", self.last_error)
        self.last_error = None
        self._epoch += 1
        for cb in self._connect_listeners:
            cb(True)
        self._connected.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        if self.last_error != "broker unreachable":
            log.warning(
                "MQTT broker %s:%s unreachable; retrying with backoff",
                self.cfg.mqtt.host,
                self.cfg.mqtt.port,
            )
        self.last_error = "broker unreachable"

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        self._commands_ready.clear()
        if self.role == "device" and self._key is not None and not self._stopped:
            self._arm_will(client)  # a fresh will (time) for the next connection
        if was:
            # Our own clean stop is no news; anything else is worth a warning (once per drop).
            log_at = logging.INFO if self._stopped else logging.WARNING
            log.log(log_at, "MQTT disconnected: %s", reason)
            for cb in self._connect_listeners:
                cb(False)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        ok = not reason.is_failure
        if not ok:
            log.error("broker rejected message %d: %s", mid, reason)
        for cb in self._publish_listeners:
            cb(mid, ok)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        handler = self._command_handler
        if handler is None:
            return
        props = msg.properties
        response_topic = getattr(props, "ResponseTopic", None) or None
        correlation = getattr(props, "CorrelationData", None)
        try:
            handler(CommandMessage(msg.topic, bytes(msg.payload), response_topic, correlation))
        except Exception:  # a command must never take the network thread down
            log.exception("command handler failed on %s", msg.topic[:200])

    # -- publishing --------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo:
        """Hand one message to paho (non-blocking); the info's ``mid`` matches PUBACKs."""
        return self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)

    def publish_retained(self, kind: str, payload: dict[str, Any]) -> None:
        """Set retained state *kind* (status, info, health, alarm); sent now if connected and
        again on every reconnect."""
        topic = self.topics.state(kind)
        data = self.encode_state(payload)
        self._retained[kind] = data
        if kind == "status":  # maintenance survives reconnects; anything else ends it
            self._maintenance = data if payload.get("state") == "maintenance" else None
        if self._connected.is_set():
            info = self._client.publish(topic, data, qos=1, retain=True)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning(
                    "retained %s not sent now (%s); will resend on reconnect", kind, info.rc
                )

    def subscribe_commands(self, handler: Callable[[CommandMessage], object]) -> None:
        """Deliver messages on ``<prefix>/cmd/+`` to *handler* (network thread: keep it short)."""
        self._command_handler = handler
        if self._connected.is_set():
            self._subscribe_commands(self._client)

    def _subscribe_commands(self, client: mqtt.Client) -> None:
        self._commands_ready.clear()
        _, mid = client.subscribe(self.topics.cmd_filter, qos=1)
        self._command_sub_mid = mid

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if mid != self._command_sub_mid:
            return
        if any(r.is_failure for r in reasons):
            log.error("broker refused the command subscription: %s", reasons)
            return
        self._commands_ready.set()

    def wait_commands_ready(self, timeout: float) -> bool:
        """Wait until the broker acknowledged the command subscription (SUBACK)."""
        return self._commands_ready.wait(max(0.0, timeout))

    def respond(self, topic: str, payload: bytes, correlation_data: bytes | None) -> None:
        """Send one command response (QoS 1) to *topic*, echoing the request's correlation
        data (MQTT 5); the dispatcher's responder. Signed like state when a key is set, so
        a forged answer ("no such alarm", a spectrum, a replay) is told from the device's."""
        if self._key is not None:
            payload = self.encode_state(json.loads(payload))
        props = Properties(PacketTypes.PUBLISH)
        if correlation_data is not None:
            props.CorrelationData = correlation_data
        self._client.publish(topic, payload, qos=1, properties=props)


def decode(payload: bytes) -> Any:
    """Parse a JSON message payload (helper for subscribers and tests)."""
    return json.loads(payload.decode("utf-8"))

"""The control-room monitor: a live terminal view of every device under a topic prefix.

``spectra-edge monitor --prefix 'customs/+/+'`` subscribes to ``<prefix>/#`` and shows, per
device: availability (``status``), last health, the last result with its signature checked
against the public key the device publishes in its retained ``info``, and the active alarm.

:class:`MonitorState` is the pure part (messages in, a table out); :func:`run_monitor` wires it
to a broker and to ``rich.live``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from edge.errors import PublishError
from edge.publish.messages import mixture_text
from edge.publish.signing import load_public_key, verify

log = logging.getLogger(__name__)

#: Default filter: every device of every post under ``customs/``.
DEFAULT_PREFIX = "customs/+/+"
#: Scan ids remembered per device to drop QoS 1 duplicates (bounded memory).
DEDUPE_WINDOW = 10_000


@dataclass
class DeviceView:
    """What the monitor knows about one device."""

    prefix: str
    status: str | None = None
    info: dict[str, Any] | None = None
    health: dict[str, Any] | None = None
    alarm: dict[str, Any] | None = None
    last_result: dict[str, Any] | None = None
    #: "valid", "INVALID" or "no key" for the last result.
    signature: str | None = None
    results: int = 0
    invalid: int = 0
    seen_scan_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)
    duplicates: int = 0

    @property
    def alarm_active(self) -> bool:
        """True while the device's retained alarm names an unacknowledged scan."""
        return alarm_is_active(self.alarm)


def alarm_is_active(alarm: dict[str, Any] | None) -> bool:
    """Whether a retained ``alarm`` payload describes an active alarm."""
    if not alarm:
        return False
    if "active" in alarm:
        return bool(alarm["active"])
    if alarm.get("state") in ("cleared", "none") or alarm.get("cleared"):
        return False
    return bool(alarm.get("scan_id"))


def check_signature(result: dict[str, Any], info: dict[str, Any] | None) -> str:
    """Verify *result* against the public key in *info*: "valid", "INVALID" or "no key"."""
    key_b64 = _public_key_of(info)
    if key_b64 is None:
        return "no key"
    try:
        key = load_public_key(key_b64)
    except Exception:  # a malformed key in info is the sender's fault: show it, do not crash
        return "INVALID"
    return "valid" if verify(result, key) else "INVALID"


def _public_key_of(info: dict[str, Any] | None) -> str | None:
    """The base64 public key from ``info`` (``public_key.value``, see info.json)."""
    key = (info or {}).get("public_key")
    if isinstance(key, dict) and key.get("alg", "Ed25519") == "Ed25519":
        key = key.get("value")
    return key if isinstance(key, str) else None


class MonitorState:
    """Devices seen under a topic filter, updated message by message. Thread-safe."""

    def __init__(self, prefix_filter: str = DEFAULT_PREFIX) -> None:
        self.prefix_filter = prefix_filter.strip("/")
        self.levels = len(self.prefix_filter.split("/"))
        self.devices: dict[str, DeviceView] = {}
        self.messages = 0
        self.unparsable = 0
        self._lock = threading.Lock()

    @property
    def subscription(self) -> str:
        """The MQTT subscription covering every device under the filter."""
        return f"{self.prefix_filter}/#"

    def handle(self, topic: str, payload: bytes) -> None:
        """Take one message into account (unknown topics and bad JSON are counted, ignored)."""
        parts = topic.split("/")
        if len(parts) <= self.levels:
            return
        prefix = "/".join(parts[: self.levels])
        kind = "/".join(parts[self.levels :])
        with self._lock:
            self.messages += 1
            view = self.devices.get(prefix)
            if view is None:
                view = self.devices[prefix] = DeviceView(prefix)
            if kind == "status":
                view.status = _status_text(payload)
                return
            if kind.startswith("cmd/"):
                return
            if not payload:  # a cleared retained message
                if kind == "alarm":
                    view.alarm = None
                return
            try:
                body = json.loads(payload)
            except ValueError:
                self.unparsable += 1
                return
            if not isinstance(body, dict):
                self.unparsable += 1
                return
            if kind == "info":
                view.info = body
            elif kind == "health":
                view.health = body
            elif kind == "alarm":
                view.alarm = body
            elif kind == "scan/result":
                self._result(view, body)

    @staticmethod
    def _result(view: DeviceView, body: dict[str, Any]) -> None:
        scan_id = str(body.get("scan_id", ""))
        if scan_id in view.seen_scan_ids:  # QoS 1 may deliver twice: dedupe on scan_id
            view.duplicates += 1
            return
        view.seen_scan_ids[scan_id] = None
        if len(view.seen_scan_ids) > DEDUPE_WINDOW:
            view.seen_scan_ids.popitem(last=False)
        view.results += 1
        view.last_result = body
        view.signature = check_signature(body, view.info)
        if view.signature == "INVALID":
            view.invalid += 1

    def snapshot(self) -> dict[str, DeviceView]:
        """A shallow copy of the per-device views."""
        with self._lock:
            return dict(self.devices)

    def render(self) -> Table:
        """The devices as a rich table."""
        table = Table(title=f"spectra-edge devices under {self.prefix_filter}", expand=True)
        table.add_column("device", no_wrap=True)
        for col in ("status", "last result", "signature", "alarm", "health"):
            table.add_column(col)
        for prefix, v in sorted(self.snapshot().items()):
            table.add_row(
                prefix,
                _styled_status(v.status),
                _result_text(v.last_result),
                _signature_text(v.signature),
                _alarm_text(v.alarm) if v.alarm_active else Text("-", style="dim"),
                _health_text(v.health),
            )
        return table


def _status_text(payload: bytes) -> str:
    text = payload.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text or "-"
    if isinstance(body, dict):
        return str(body.get("status") or body.get("state") or text)
    return str(body)


def _styled_status(status: str | None) -> Text:
    style = {"online": "green", "offline": "red", "stopped": "yellow", "maintenance": "cyan"}
    return Text(status or "?", style=style.get(status or "", "dim"))


def _substance_name(result: dict[str, Any]) -> str:
    mix = result.get("mixture")
    if result.get("status") == "mixture" and isinstance(mix, list) and mix:
        return mixture_text([m for m in mix if isinstance(m, dict)])  # spectral shares
    sub = result.get("substance")
    if isinstance(sub, dict) and sub.get("name"):
        return str(sub["name"])
    near = result.get("nearest")
    if isinstance(near, dict) and near.get("name"):
        return f"closest {near['name']}"
    return "-"


def _result_text(result: dict[str, Any] | None) -> Text:
    if result is None:
        return Text("-", style="dim")
    status = str(result.get("status", "?"))
    conf = result.get("confidence")
    conf_s = f" {float(conf):.2f}" if isinstance(conf, int | float) else ""
    sev = result.get("severity") or (result.get("substance") or {}).get("severity")
    style = {"alarm": "bold red", "warn": "yellow"}.get(str(sev), "")
    text = Text(f"{status}: {_substance_name(result)}{conf_s}", style=style)
    if result.get("consignment"):
        text.append(f" [{result['consignment']}]", style="dim")
    if result.get("historical"):
        text.append(" (historical)", style="dim")
    return text


def _signature_text(sig: str | None) -> Text:
    style = {"valid": "green", "INVALID": "bold red", "no key": "yellow"}
    return Text(sig or "-", style=style.get(sig or "", "dim"))


def _alarm_text(alarm: dict[str, Any] | None) -> Text:
    alarm = alarm or {}
    sub = alarm.get("substance")
    name = sub.get("name") if isinstance(sub, dict) else sub
    return Text(f"ALARM {name or '?'} ({alarm.get('scan_id', '?')})", style="bold white on red")


def _health_text(health: dict[str, Any] | None) -> Text:
    if not health:
        return Text("-", style="dim")
    bits = []
    temp = health.get("instrument_temperature_c")
    if isinstance(temp, int | float):
        bits.append(f"T={temp:.1f}C")
    outbox = health.get("outbox")
    if isinstance(outbox, dict) and isinstance(outbox.get("waiting"), int):
        bits.append(f"outbox={outbox['waiting']}")
    uptime = health.get("uptime_s")
    if isinstance(uptime, int | float):
        bits.append(f"up={uptime:.0f}s")
    if health.get("last_error"):
        bits.append(f"err={health['last_error']}")
    return Text(" ".join(bits) or "ok", style="red" if health.get("last_error") else "")


def connect_monitor(
    state: MonitorState, host: str, port: int, *, timeout_s: float = 5.0
) -> mqtt.Client:
    """Connect a paho client that feeds *state*; raises :class:`PublishError` if unreachable."""
    connected = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"spectra-edge-monitor-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            c.subscribe(state.subscription, qos=1)
            connected.set()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            state.handle(msg.topic, bytes(msg.payload))
        except Exception:  # one odd message must not stop the view
            log.exception("monitor: message on %s not handled", msg.topic)

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(host, port, keepalive=30)
    except OSError as err:
        raise PublishError(f"cannot reach broker {host}:{port}: {err}") from err
    client.loop_start()
    if not connected.wait(timeout_s):
        client.loop_stop()
        client.disconnect()
        raise PublishError(f"broker {host}:{port} did not accept the connection in {timeout_s}s")
    return client


def run_monitor(
    host: str,
    port: int,
    prefix_filter: str = DEFAULT_PREFIX,
    *,
    duration_s: float | None = None,
    once: bool = False,
    console: Console | None = None,
) -> MonitorState:
    """Show the live view until Ctrl-C or *duration_s*; *once* prints one table and returns.

    With *once*, the view is printed after *duration_s* (default 1 s) of collecting the
    retained state and any traffic.
    """
    console = console or Console()
    state = MonitorState(prefix_filter)
    client = connect_monitor(state, host, port)
    try:
        if once:
            time.sleep(1.0 if duration_s is None else duration_s)
            console.print(state.render())
            return state
        deadline = None if duration_s is None else time.monotonic() + duration_s
        with Live(state.render(), console=console, refresh_per_second=4) as live:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.25)
                live.update(Group(state.render()))
        return state
    finally:
        client.disconnect()
        client.loop_stop()

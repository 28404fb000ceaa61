"""The control-room monitor: a live terminal view of every device under a topic prefix.

``spectra-edge monitor --prefix 'customs/+/+'`` subscribes to ``<prefix>/#`` and shows, per
device: availability (``status``), last health, the last result, the active alarm, and the
device's key. Results, ``status``, ``alarm`` and ``health`` are verified against the key
**pinned** for that device (:mod:`controlroom.pins`, trust on first use), never against the
key the device announces in its own retained ``info``: anyone on the broker can publish an
``info``. A changed key is shown loudly and never trusted; an untrusted ``status`` or
``alarm`` is shown flagged and never replaces the last verified one.

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

from controlroom.pins import KeyPins, Pin
from edge.errors import PublishError
from edge.identify.result import mixture_text
from edge.publish.client import stop_loop
from edge.publish.signing import verify

log = logging.getLogger(__name__)

#: Default filter: every device of every post under ``customs/``.
DEFAULT_PREFIX = "customs/+/+"
#: Scan ids remembered per device to drop QoS 1 duplicates (bounded memory).
DEDUPE_WINDOW = 10_000
#: State kinds verified against the pinned key (``info`` is what pins it).
VERIFIED_STATE = ("status", "alarm", "health")


@dataclass
class Untrusted:
    """The latest state message of one kind that did not verify against the pinned key."""

    check: str  # "INVALID" (unsigned, forged, tampered, another key) or "no key"
    body: dict[str, Any] | None
    text: str


@dataclass
class DeviceView:
    """What the monitor knows about one device."""

    prefix: str
    #: The last verified ``status`` (``state``), ``health`` and ``alarm``.
    status: str | None = None
    health: dict[str, Any] | None = None
    alarm: dict[str, Any] | None = None
    #: The latest ``info`` as received (shown, never used to verify anything).
    info: dict[str, Any] | None = None
    #: Per kind, the latest message that did not verify (cleared by a newer verified one).
    untrusted: dict[str, Untrusted] = field(default_factory=dict)
    #: State messages that did not verify, in all.
    untrusted_count: int = 0
    #: The key id a *different* announced key has (None: no change seen).
    key_changed_to: str | None = None
    last_result: dict[str, Any] | None = None
    #: "valid", "INVALID" or "no key" for the last result.
    signature: str | None = None
    results: int = 0
    invalid: int = 0
    seen_scan_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)
    duplicates: int = 0

    @property
    def alarm_active(self) -> bool:
        """True while the device's last verified alarm names an unacknowledged scan."""
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


def check_signature(payload: dict[str, Any], pin: Pin | None) -> str:
    """Verify *payload* against the pinned key: "valid", "INVALID" or "no key" (none pinned).

    Unsigned counts as INVALID: every spectra-edge message of these kinds is signed.
    """
    if pin is None:
        return "no key"
    return "valid" if verify(payload, pin.public) else "INVALID"


class MonitorState:
    """Devices seen under a topic filter, updated message by message. Thread-safe.

    *pins*: the pinned keys (default: in memory only, so pinned afresh each run).
    """

    def __init__(self, prefix_filter: str = DEFAULT_PREFIX, pins: KeyPins | None = None) -> None:
        self.prefix_filter = prefix_filter.strip("/")
        self.levels = len(self.prefix_filter.split("/"))
        self.pins = pins if pins is not None else KeyPins(None)
        self.devices: dict[str, DeviceView] = {}
        self.messages = 0
        self.unparsable = 0
        #: State messages that arrived before any key was pinned, re-checked once one is.
        self._waiting: dict[str, dict[str, tuple[bytes, dict[str, Any] | None]]] = {}
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
            if kind.startswith("cmd/"):
                return
            if not payload:  # a cleared retained message (anyone may clear one: flagged)
                if kind in VERIFIED_STATE:
                    self._state(view, kind, payload, None)
                return
            try:
                body = json.loads(payload)
            except ValueError:
                if kind == "status":  # a bare string: shown as it is, untrusted
                    self._state(view, kind, payload, None)
                else:
                    self.unparsable += 1
                return
            if not isinstance(body, dict):
                self.unparsable += 1
                return
            if kind == "info":
                self._info(view, body)
            elif kind in VERIFIED_STATE:
                self._state(view, kind, payload, body)
            elif kind == "scan/result":
                self._result(view, body)

    def _info(self, view: DeviceView, body: dict[str, Any]) -> None:
        view.info = body
        ann = self.pins.announce(view.prefix, body)
        if ann.verdict == "changed":
            if view.key_changed_to != ann.announced_key_id:
                pin = self.pins.get(view.prefix)
                log.warning(
                    "KEY CHANGED for %s: info announces %s, pinned %s; not trusted",
                    view.prefix,
                    ann.announced_key_id,
                    pin.key_id if pin else "?",
                )
            view.key_changed_to = ann.announced_key_id
        elif ann.verdict == "same":
            view.key_changed_to = None
        elif ann.verdict == "pinned":  # first key: what waited for it is checked now
            view.key_changed_to = None
            for kind, (raw, waiting) in self._waiting.pop(view.prefix, {}).items():
                self._state(view, kind, raw, waiting)
            if view.last_result is not None:
                view.signature = check_signature(view.last_result, self.pins.get(view.prefix))
                if view.signature == "INVALID":
                    view.invalid += 1

    def _state(self, view: DeviceView, kind: str, raw: bytes, body: dict[str, Any] | None) -> None:
        pin = self.pins.get(view.prefix)
        check = check_signature(body, pin) if body is not None else "INVALID"
        if check == "no key":
            self._waiting.setdefault(view.prefix, {})[kind] = (raw, body)
        if check == "valid":
            assert body is not None
            view.untrusted.pop(kind, None)
            if kind == "status":
                view.status = _status_text(raw)
            elif kind == "health":
                view.health = body
            else:
                view.alarm = body
            return
        if check == "INVALID":
            view.untrusted_count += 1
            log.warning("untrusted %s on %s (signature %s)", kind, view.prefix, check)
        text = _status_text(raw) if kind == "status" else _state_summary(kind, body)
        view.untrusted[kind] = Untrusted(check, body, text)

    def _result(self, view: DeviceView, body: dict[str, Any]) -> None:
        scan_id = str(body.get("scan_id", ""))
        if scan_id in view.seen_scan_ids:  # QoS 1 may deliver twice: dedupe on scan_id
            view.duplicates += 1
            return
        view.seen_scan_ids[scan_id] = None
        if len(view.seen_scan_ids) > DEDUPE_WINDOW:
            view.seen_scan_ids.popitem(last=False)
        view.results += 1
        view.last_result = body
        view.signature = check_signature(body, self.pins.get(view.prefix))
        if view.signature == "INVALID":
            view.invalid += 1

    def snapshot(self) -> dict[str, DeviceView]:
        """A shallow copy of the per-device views."""
        with self._lock:
            return dict(self.devices)

    def render(self) -> Group:
        """The devices as a rich table, with a loud line per changed key."""
        table = Table(title=f"spectra-edge devices under {self.prefix_filter}", expand=True)
        table.add_column("device", no_wrap=True)
        for col in ("status", "last result", "signature", "alarm", "health", "key"):
            table.add_column(col)
        warnings: list[Text] = []
        for prefix, v in sorted(self.snapshot().items()):
            pin = self.pins.get(prefix)
            table.add_row(
                prefix,
                _status_cell(v),
                _result_text(v.last_result),
                _signature_text(v.signature),
                _alarm_cell(v),
                _health_cell(v),
                _key_text(v, pin),
            )
            if v.key_changed_to is not None:
                warnings.append(
                    Text(
                        f"KEY CHANGED: {prefix} announces key {v.key_changed_to}, pinned "
                        f"{pin.key_id if pin else '?'}. Its messages are checked against the "
                        f"pinned key only. If the device really has a new key, run "
                        f"`spectra-edge monitor --repin {prefix}`.",
                        style="bold white on red",
                    )
                )
        return Group(table, *warnings)


def _state_summary(kind: str, body: dict[str, Any] | None) -> str:
    if body is None:
        return "cleared"
    if kind == "alarm":
        sub = body.get("substance")
        name = sub.get("name") if isinstance(sub, dict) else sub
        return (
            f"alarm {name or '?'} ({body.get('scan_id', '?')})"
            if alarm_is_active(body)
            else (f"alarm cleared ({body.get('scan_id', '?')})")
        )
    return kind


def _status_cell(v: DeviceView) -> Text:
    text = _styled_status(v.status)
    bad = v.untrusted.get("status")
    if bad is not None:
        text.append(f" UNTRUSTED {bad.text} ({bad.check})", style="bold red")
    return text


def _alarm_cell(v: DeviceView) -> Text:
    text = _alarm_text(v.alarm) if v.alarm_active else Text("-", style="dim")
    bad = v.untrusted.get("alarm")
    if bad is not None:
        text.append(f" UNTRUSTED {bad.text} ({bad.check})", style="bold red")
    return text


def _health_cell(v: DeviceView) -> Text:
    text = _health_text(v.health)
    if "health" in v.untrusted:
        text.append(f" UNTRUSTED health ({v.untrusted['health'].check})", style="bold red")
    return text


def _key_text(v: DeviceView, pin: Pin | None) -> Text:
    if pin is None:
        return Text("no key pinned", style="yellow")
    if v.key_changed_to is not None:
        return Text(f"KEY CHANGED ({v.key_changed_to})", style="bold white on red")
    return Text(f"pinned {pin.key_id}", style="green")


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
        stop_loop(client)
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
    pins: KeyPins | None = None,
) -> MonitorState:
    """Show the live view until Ctrl-C or *duration_s*; *once* prints one table and returns.

    With *once*, the view is printed after *duration_s* (default 1 s) of collecting the
    retained state and any traffic. *pins*: the pinned keys (the CLI passes the file's).
    """
    console = console or Console()
    state = MonitorState(prefix_filter, pins)
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
                live.update(state.render())
        return state
    finally:
        client.disconnect()
        stop_loop(client)

"""``spectra-edge demo``: the whole product on one machine, with a simulated officer.

The service runs on the given configuration (by default the embedded one: simulated
instrument, shipped library and model, broker on localhost:1883) with a mock operator panel.
A simulated officer takes a background (long press), then puts each sample of a short script
on the crystal, through the simulated instrument's sample handler, and presses the scan
button (short press). A control-room subscriber prints
every result *as it arrives on the broker*, with its signature checked against the key it
pinned from the device's first ``info`` (trust on first use, as ``spectra-edge monitor``;
the demo's pins live in memory only); at the end the control room acknowledges the alarm. The demo
exits 0 only if every scan's result arrived.
"""

from __future__ import annotations

import json
import logging
import queue
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from controlroom.monitor import check_signature
from controlroom.pins import KeyPins, Pin
from edge.config.schema import Config
from edge.errors import EdgeError
from edge.identify.result import mixture_text
from edge.lifecycle import Deadline, SystemClock
from edge.publish.client import stop_loop
from edge.publish.topics import Topics
from edge.scan.engine import ScanEngine
from edge.scan.opener import SampleHandler
from edge.service.app import Service
from edge.service.run import engine_factory, open_panel
from hal.panel import Panel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One thing the simulated officer does."""

    label: str
    sample: str | None  # None: nothing on the crystal
    background_first: bool = False


#: The officer's script: a sugar, a cut narcotic, an unknown, an explosive, an empty crystal.
SCRIPT: tuple[Step, ...] = (
    Step("lactose (benign)", "Lactose monohydrate"),
    Step("cocaine HCl cut with caffeine", "Cocaine HCl:0.6,Caffeine:0.4"),
    Step("polystyrene (not in the library)", "polystyrene"),
    Step("TNT", "TNT"),
    Step("empty crystal after cleaning", None, background_first=True),
)


class Crystal:
    """The simulated officer's hands: the sample handler of the engine the service opened
    (it is opened again after an instrument fault, so the handler is picked up each time)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.samples: SampleHandler | None = None

    def open_engine(self) -> ScanEngine:
        """The service's engine factory: the real pipeline, keeping its sample handler."""
        pipeline = engine_factory(self.cfg)
        self.samples = pipeline.samples
        return pipeline

    def _handler(self) -> SampleHandler:
        if self.samples is None:
            raise EdgeError(
                "the demo's officer needs an instrument that places samples "
                f"([instrument] driver = 'sim'), not {self.cfg.instrument.driver!r}"
            )
        return self.samples

    def clean(self) -> None:
        """Take everything off the crystal."""
        self._handler().clear()

    def place(self, spec: str | None) -> None:
        """Put *spec* on the crystal (None: leave it as it is, e.g. clean)."""
        self._handler().place(spec)


class ControlRoom:
    """A subscriber on the device's result, info and alarm topics; also sends commands."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.prefix = prefix
        self.results: queue.Queue[dict[str, Any]] = queue.Queue()
        self.info: dict[str, Any] | None = None
        self.pins = KeyPins(None)
        self.alarm: dict[str, Any] | None = None
        self.responses: queue.Queue[dict[str, Any]] = queue.Queue()
        #: The device answers on <prefix>/cmd/<name>/response only; ours carry this request's
        #: correlation data.
        self._correlation = b""
        self._ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"spectra-edge-demo-room-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as err:
            raise EdgeError(
                f"no MQTT broker at {host}:{port} ({err}); `make demo` starts one "
                "(scripts/ensure-mosquitto.sh --start)"
            ) from err
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(
            [
                (f"{self.prefix}/scan/result", 1),
                (f"{self.prefix}/info", 1),
                (f"{self.prefix}/alarm", 1),
                (f"{self.prefix}/cmd/+/response", 1),
            ]
        )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        if msg.topic.endswith("/scan/result"):
            self.results.put(body)
        elif msg.topic.endswith("/info"):
            self.info = body
            self.pins.announce(self.prefix, body)
        elif msg.topic.endswith("/alarm"):
            self.alarm = body
        elif msg.topic.endswith("/response") and (
            getattr(msg.properties, "CorrelationData", None) == self._correlation
        ):
            self.responses.put(body)

    def wait_ready(self, timeout: float) -> bool:
        """True once subscribed."""
        return self._ready.wait(timeout)

    def command(self, name: str, body: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send ``cmd/<name>`` (MQTT 5 request/response) and wait for the answer."""
        props = Properties(PacketTypes.PUBLISH)
        self._correlation = uuid.uuid4().bytes
        props.CorrelationData = self._correlation
        self.client.publish(f"{self.prefix}/cmd/{name}", json.dumps(body), qos=1, properties=props)
        try:
            return self.responses.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.client.disconnect()
        stop_loop(self.client)


def _press(panel: Panel | None, cfg: Config, seconds: float) -> None:
    """Press the mock scan button for *seconds* (through gpiozero's mock pin)."""
    if panel is None or not panel.is_mock:
        raise EdgeError("the demo needs the (mock) operator panel")
    pin = panel.factory.pin(cfg.panel.scan_button)
    pin.drive_low()
    SystemClock().sleep(seconds)
    pin.drive_high()


def _describe(result: dict[str, Any], pin: Pin | None) -> Table:
    sub = result.get("substance") or {}
    table = Table(show_header=False, box=None, padding=(0, 1))
    status = result.get("status", "?")
    sev = result.get("severity")
    style = {"alarm": "bold red", "warn": "yellow"}.get(str(sev), "green")
    table.add_row("status", f"[{style}]{status}[/] (severity {sev})")
    if sub:
        table.add_row("substance", escape(f"{sub.get('name')} [{sub.get('category')}]"))
    mix = result.get("mixture") or []
    if status == "mixture":
        table.add_row("mixture", escape(mixture_text(mix)))
    if status == "no_match" and result.get("family"):
        table.add_row("nearest class", str(result["family"]))
    if result.get("reason"):
        table.add_row("reason", escape(str(result["reason"])))
    table.add_row("confidence", f"{float(result.get('confidence', 0)):.2f}")
    hits = result.get("hits") or []
    if hits:
        table.add_row("top hits", ", ".join(f"{h['name']} {h['score']:.2f}" for h in hits[:3]))
    sig = check_signature(result, pin)
    table.add_row("signature", f"[{'green' if sig == 'valid' else 'red'}]{sig}[/]")
    table.add_row("scan", f"{result.get('scan_id')} seq {result.get('seq')}")
    return table


def run_demo(
    cfg: Config,
    *,
    count: int | None = None,
    timeout_s: float = 120.0,
    data_dir: Path | None = None,
    console: Console | None = None,
) -> int:
    """Run the scripted demo; 0 when every result arrived on the broker, else 1."""
    console = console or Console()
    steps = SCRIPT[: count if count is not None else len(SCRIPT)]
    deadline = Deadline(SystemClock(), timeout_s)
    with tempfile.TemporaryDirectory(prefix="spectra-edge-demo-") as tmp:
        cfg = cfg.model_copy(
            update={
                "device": cfg.device.model_copy(update={"data_dir": data_dir or Path(tmp)}),
                "panel": cfg.panel.model_copy(
                    update={"enabled": True, "pin_factory": "mock", "long_press_s": 0.5}
                ),
            }
        )
        prefix = Topics.from_config(cfg).prefix
        room = ControlRoom(cfg.mqtt.host, cfg.mqtt.port, prefix)
        panel = open_panel(cfg)
        crystal = Crystal(cfg)
        service = Service(cfg, crystal.open_engine, panel=panel)
        arrived: list[dict[str, Any]] = []
        try:
            if not room.wait_ready(10):
                raise EdgeError(f"broker {cfg.mqtt.host}:{cfg.mqtt.port} did not answer")
            console.rule(f"spectra-edge demo: device {prefix}")
            service.start()
            if not service.link.wait_connected(10):
                raise EdgeError("the service did not connect to the broker")
            console.print("officer: long press (new background, crystal clean)")
            crystal.clean()
            _press(panel, cfg, cfg.panel.long_press_s + 0.3)
            for i, step in enumerate(steps, 1):
                if step.background_first:
                    _wait_idle(service, deadline)
                    console.print("officer: cleans the crystal, long press (new background)")
                    crystal.clean()
                    _press(panel, cfg, cfg.panel.long_press_s + 0.3)
                _wait_idle(service, deadline)
                crystal.place(step.sample)
                console.print(f"officer: [bold]{step.label}[/] on the crystal, short press")
                _press(panel, cfg, 0.05)
                result = _next_result(room, deadline)
                if result is None:
                    console.print(f"[red]no result for scan {i} before the deadline[/]")
                    break
                arrived.append(result)
                console.print(f"control room: result {i}/{len(steps)} arrived")
                console.print(_describe(result, room.pins.get(prefix)))
            if room.alarm and room.alarm.get("active"):
                scan_id = room.alarm.get("scan_id")
                console.print(f"control room: alarm active for scan {scan_id}; acknowledging")
                resp = room.command("ack", {"scan_id": scan_id, "operator": "demo"}, 10)
                ok = bool(resp and resp.get("ok") and resp["result"].get("cleared"))
                console.print(f"control room: ack {'cleared the alarm' if ok else 'FAILED'}")
        finally:
            service.stop()
            if panel is not None:
                panel.close()
            room.close()
    ok = len(arrived) == len(steps)
    console.rule(
        f"{len(arrived)}/{len(steps)} results arrived on the broker"
        + ("" if ok else " [red](incomplete)[/]")
    )
    return 0 if ok else 1


def _wait_idle(service: Service, deadline: Deadline) -> None:
    """Wait until the scan worker has nothing queued (bounded by *deadline*)."""
    while not deadline.expired():
        if service.worker.idle:
            return
        deadline.clock.sleep(min(0.05, deadline.remaining()))


def _next_result(room: ControlRoom, deadline: Deadline) -> dict[str, Any] | None:
    try:
        return room.results.get(timeout=deadline.remaining())
    except queue.Empty:
        return None

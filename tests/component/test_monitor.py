"""The control-room monitor's state: topics to devices, signatures, alarms, dedupe."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from rich.console import Console

from controlroom.monitor import MonitorState, alarm_is_active, check_signature
from edge.publish.signing import DeviceKey

P1 = "customs/altynkol/altynkol-01"
P2 = "customs/khorgos/khorgos-03"


def result(scan_id: str, name: str = "cocaine hydrochloride") -> dict[str, Any]:
    return {
        "scan_id": scan_id,
        "status": "identified",
        "substance": {"name": name, "category": "narcotic", "severity": "alarm"},
        "confidence": 0.97,
        "consignment": "MSKU 1234567",
    }


def pub(key: DeviceKey) -> dict[str, str]:
    return {"alg": "Ed25519", "key_id": key.key_id, "value": key.public_b64}


def feed(state: MonitorState, topic: str, body: Any) -> None:
    state.handle(topic, json.dumps(body).encode() if not isinstance(body, bytes) else body)


def render_text(state: MonitorState) -> str:
    console = Console(record=True, width=200)
    console.print(state.render())
    return console.export_text()


def test_devices_are_keyed_by_the_prefix_levels() -> None:
    key1, key2 = DeviceKey.generate(), DeviceKey.generate()
    st = MonitorState("customs/+/+")
    assert st.subscription == "customs/+/+/#"
    feed(st, f"{P1}/status", {"state": "online", "device": "altynkol-01"})
    st.handle(f"{P2}/status", b"offline")  # a bare string is shown as it is
    feed(st, f"{P1}/info", {"device": "altynkol-01", "public_key": pub(key1)})
    feed(st, f"{P2}/info", {"device": "khorgos-03", "public_key": pub(key2)})
    feed(st, f"{P1}/scan/result", key1.sign(result("a1")))
    feed(st, f"{P2}/scan/result", key1.sign(result("b1", "lactose")))  # signed by the wrong key
    devs = st.snapshot()
    assert set(devs) == {P1, P2}
    assert devs[P1].status == "online" and devs[P2].status == "offline"
    assert devs[P1].signature == "valid"
    assert devs[P2].signature == "INVALID" and devs[P2].invalid == 1
    text = render_text(st)
    assert "cocaine hydrochloride" in text and "INVALID" in text and "valid" in text


def test_tampered_result_fails_verification() -> None:
    key = DeviceKey.generate()
    st = MonitorState()
    feed(st, f"{P1}/info", {"public_key": pub(key)})
    signed = key.sign(result("x1", "lactose"))
    signed["substance"]["name"] = "sugar"
    feed(st, f"{P1}/scan/result", signed)
    assert st.snapshot()[P1].signature == "INVALID"


def test_historical_flag_does_not_break_the_signature() -> None:
    key = DeviceKey.generate()
    signed = key.sign(result("h1"))
    signed["historical"] = True
    assert check_signature(signed, {"public_key": pub(key)}) == "valid"
    assert check_signature(signed, None) == "no key"
    bad = {"alg": "Ed25519", "key_id": key.key_id, "value": "not base64!"}
    assert check_signature(signed, {"public_key": bad}) == "INVALID"


def test_duplicates_are_counted_once() -> None:
    st = MonitorState()
    for _ in range(3):
        feed(st, f"{P1}/scan/result", result("dup"))
    v = st.snapshot()[P1]
    assert v.results == 1 and v.duplicates == 2
    assert v.signature == "no key"


def test_alarm_shown_until_cleared() -> None:
    st = MonitorState()
    feed(st, f"{P1}/alarm", {"active": True, "scan_id": "a1", "substance": "TNT"})
    assert st.snapshot()[P1].alarm_active
    assert "ALARM TNT" in render_text(st)
    feed(st, f"{P1}/alarm", {"active": False, "scan_id": "a1"})
    assert not st.snapshot()[P1].alarm_active
    assert "ALARM" not in render_text(st)
    feed(st, f"{P1}/alarm", {"active": True, "scan_id": "a2"})
    st.handle(f"{P1}/alarm", b"")  # retained message deleted
    assert not st.snapshot()[P1].alarm_active


def test_alarm_payload_forms() -> None:
    assert not alarm_is_active(None)
    assert alarm_is_active({"scan_id": "s"})
    assert not alarm_is_active({"scan_id": "s", "state": "cleared"})
    assert not alarm_is_active({"active": False, "scan_id": "s"})


def test_garbage_is_counted_and_ignored() -> None:
    st = MonitorState()
    st.handle(f"{P1}/health", b"{not json")
    st.handle(f"{P1}/scan/result", b"[1,2]")
    st.handle("customs/short", b"x")  # above the device level: ignored
    st.handle(f"{P1}/cmd/ping", b"whatever")
    assert st.unparsable == 2
    assert st.snapshot()[P1].last_result is None
    render_text(st)  # renders without raising


def test_health_is_summarised() -> None:
    st = MonitorState()
    health = {
        "uptime_s": 3600.0,
        "instrument_temperature_c": 31.5,
        "outbox": {"waiting": 7, "alarms_waiting": 1, "dropped": 0, "oldest_age_s": 2.0},
        "last_error": "instrument timeout",
    }
    feed(st, f"{P1}/health", health)
    text = render_text(st)
    assert "T=31.5C" in text and "outbox=7" in text and "instrument timeout" in text


def test_run_monitor_against_a_broker(mosquitto: Any) -> None:
    """Retained state of two devices, one live result: the view shows all, verified."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from controlroom.monitor import run_monitor

    key = DeviceKey.generate()
    pubc = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pubc.connect("127.0.0.1", mosquitto.port)
    pubc.loop_start()
    try:
        for topic, body in (
            (f"{P1}/status", {"state": "online"}),
            (f"{P1}/info", {"public_key": pub(key)}),
            (f"{P1}/alarm", {"active": True, "scan_id": "a1", "substance": {"name": "TNT"}}),
            (f"{P2}/status", {"state": "offline"}),
        ):
            pubc.publish(topic, json.dumps(body), qos=1, retain=True).wait_for_publish(5)
        timer = threading.Timer(
            0.6,
            lambda: pubc.publish(f"{P1}/scan/result", json.dumps(key.sign(result("r1"))), qos=1),
        )
        timer.start()
        console = Console(record=True, width=250)
        state = run_monitor(
            "127.0.0.1", mosquitto.port, "customs/+/+", once=True, duration_s=1.5, console=console
        )
        timer.join()
    finally:
        pubc.disconnect()
        pubc.loop_stop()
    devs = state.snapshot()
    assert devs[P1].status == "online" and devs[P2].status == "offline"
    assert devs[P1].signature == "valid" and devs[P1].alarm_active
    text = console.export_text()
    assert "ALARM TNT" in text and "cocaine hydrochloride" in text and "offline" in text

    # live mode returns after its duration too
    live = run_monitor(
        "127.0.0.1",
        mosquitto.port,
        "customs/+/+",
        duration_s=0.5,
        console=Console(record=True, width=250, force_terminal=False),
    )
    assert set(live.snapshot()) == {P1, P2}


def test_unreachable_broker_is_a_publish_error() -> None:
    from mosquitto_broker import free_port

    from controlroom.monitor import run_monitor
    from edge.errors import PublishError

    with pytest.raises(PublishError):
        run_monitor("127.0.0.1", free_port(), once=True, duration_s=0.1)

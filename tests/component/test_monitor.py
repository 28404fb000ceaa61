"""The control-room monitor's state: topics to devices, pinned keys, signatures, alarms, dedupe.

Keys are pinned on first use (controlroom/pins.py); results, status, alarm and health are
verified against the pinned key, never against the key a later ``info`` announces.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from controlroom.monitor import MonitorState, alarm_is_active, check_signature
from controlroom.pins import KeyPins
from edge.errors import EdgeError
from edge.publish.signing import DeviceKey
from spectra_io.errors import SpectraEdgeError

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


def info(key: DeviceKey, **extra: Any) -> dict[str, Any]:
    """An info announcing *key*, signed by it (as a device or a forger would make it)."""
    return key.sign({"public_key": pub(key), **extra})


def feed(state: MonitorState, topic: str, body: Any) -> None:
    state.handle(topic, json.dumps(body).encode() if not isinstance(body, bytes) else body)


def render_text(state: MonitorState) -> str:
    console = Console(record=True, width=250)
    console.print(state.render())
    return console.export_text()


def test_devices_are_keyed_by_the_prefix_levels() -> None:
    key1, key2 = DeviceKey.generate(), DeviceKey.generate()
    st = MonitorState("customs/+/+")
    assert st.subscription == "customs/+/+/#"
    feed(st, f"{P1}/info", info(key1, device="altynkol-01"))
    feed(st, f"{P2}/info", info(key2, device="khorgos-03"))
    feed(st, f"{P1}/status", key1.sign({"state": "online", "device": "altynkol-01"}))
    feed(st, f"{P2}/status", key2.sign({"state": "offline"}))
    feed(st, f"{P1}/scan/result", key1.sign(result("a1")))
    feed(st, f"{P2}/scan/result", key1.sign(result("b1", "lactose")))  # signed by the wrong key
    devs = st.snapshot()
    assert set(devs) == {P1, P2}
    assert devs[P1].status == "online" and devs[P2].status == "offline"
    assert devs[P1].signature == "valid"
    assert devs[P2].signature == "INVALID" and devs[P2].invalid == 1
    text = render_text(st)
    assert "cocaine hydrochloride" in text and "INVALID" in text and "valid" in text
    assert f"pinned {key1.key_id}" in text and f"pinned {key2.key_id}" in text


def test_tampered_result_fails_verification() -> None:
    key = DeviceKey.generate()
    st = MonitorState()
    feed(st, f"{P1}/info", info(key))
    signed = key.sign(result("x1", "lactose"))
    signed["substance"]["name"] = "sugar"
    feed(st, f"{P1}/scan/result", signed)
    assert st.snapshot()[P1].signature == "INVALID"


def test_historical_flag_does_not_break_the_signature() -> None:
    key = DeviceKey.generate()
    pins = KeyPins(None)
    pins.announce(P1, info(key))
    signed = key.sign(result("h1"))
    signed["historical"] = True
    assert check_signature(signed, pins.get(P1)) == "valid"
    assert check_signature(signed, None) == "no key"
    other = KeyPins(None)
    assert other.announce(P1, {"public_key": dict(pub(key), value="not base64!")}).verdict == (
        "malformed"
    )
    assert other.get(P1) is None


def test_forged_info_cannot_move_trust_and_the_key_change_is_shown(tmp_path: Path) -> None:
    """Issue 8 item 8: a forged info with another key used to make forged results "valid"
    and the genuine alarm result "INVALID"."""
    genuine, forger = DeviceKey.generate(), DeviceKey.generate()
    keys_file = tmp_path / "keys" / "monitor-keys.json"
    st = MonitorState(pins=KeyPins(keys_file))
    feed(st, f"{P1}/info", info(genuine))
    feed(st, f"{P1}/scan/result", genuine.sign(result("g1")))
    assert st.snapshot()[P1].signature == "valid"
    assert json.loads(keys_file.read_text())[P1]["key_id"] == genuine.key_id  # pinned, saved

    feed(st, f"{P1}/info", info(forger))  # well signed, by the key it announces
    feed(st, f"{P1}/scan/result", forger.sign(result("f1", "lactose")))
    view = st.snapshot()[P1]
    assert view.signature == "INVALID" and view.key_changed_to == forger.key_id
    text = render_text(st)
    assert f"KEY CHANGED: {P1} announces key {forger.key_id}, pinned {genuine.key_id}" in text
    assert "--repin" in text
    feed(st, f"{P1}/scan/result", genuine.sign(result("g2")))  # the real device goes on
    assert st.snapshot()[P1].signature == "valid"
    assert st.snapshot()[P1].invalid == 1

    # the pin survives a restart of the monitor: a forged info seen first changes nothing
    st2 = MonitorState(pins=KeyPins(keys_file))
    feed(st2, f"{P1}/info", info(forger))
    feed(st2, f"{P1}/scan/result", forger.sign(result("f2")))
    feed(st2, f"{P1}/scan/result", genuine.sign(result("g3")))
    assert st2.snapshot()[P1].key_changed_to == forger.key_id
    assert st2.snapshot()[P1].signature == "valid" and st2.snapshot()[P1].invalid == 1
    assert KeyPins(keys_file).get(P1).key_id == genuine.key_id  # type: ignore[union-attr]

    # a genuine key change is accepted only by forgetting the pin on purpose
    assert KeyPins(keys_file).forget(P1)
    st3 = MonitorState(pins=KeyPins(keys_file))
    new = DeviceKey.generate()
    feed(st3, f"{P1}/info", info(new))
    feed(st3, f"{P1}/scan/result", new.sign(result("n1")))
    assert st3.snapshot()[P1].signature == "valid" and st3.snapshot()[P1].key_changed_to is None


def test_a_damaged_pins_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "monitor-keys.json"
    bad.write_text("{not json")
    with pytest.raises(SpectraEdgeError, match="unreadable"):
        KeyPins(bad)
    bad.write_text(json.dumps({P1: {"value": "AAAA"}}))
    with pytest.raises(SpectraEdgeError, match=P1):
        KeyPins(bad)
    assert issubclass(EdgeError, SpectraEdgeError)


def test_untrusted_status_and_alarm_never_replace_the_verified_ones() -> None:
    genuine, forger = DeviceKey.generate(), DeviceKey.generate()
    st = MonitorState()
    feed(st, f"{P1}/info", info(genuine))
    feed(st, f"{P1}/status", genuine.sign({"state": "online"}))
    alarm = {"active": True, "scan_id": "a1", "substance": {"name": "TATP"}}
    feed(st, f"{P1}/alarm", genuine.sign(alarm))
    assert st.snapshot()[P1].alarm_active

    # clearing the alarm: unsigned, by another key, and with the genuine signature copied
    cleared = {"active": False, "scan_id": "a1", "acknowledged_by": "nobody"}
    for forged in (
        cleared,
        forger.sign(cleared),
        dict(cleared, signature=genuine.sign(alarm)["signature"]),
    ):
        feed(st, f"{P1}/alarm", forged)
        view = st.snapshot()[P1]
        assert view.alarm_active, forged  # the verified alarm stays
        assert view.untrusted["alarm"].check == "INVALID"
    st.handle(f"{P1}/alarm", b"")  # deleting the retained alarm is no clearing either
    assert st.snapshot()[P1].alarm_active
    # a fake TATP alarm on a device without one, and a fake 'offline'
    feed(st, f"{P2}/info", info(genuine))
    feed(st, f"{P2}/alarm", forger.sign({"active": True, "scan_id": "x", "substance": "TATP"}))
    feed(st, f"{P1}/status", forger.sign({"state": "offline"}))
    st.handle(f"{P1}/status", b"offline")  # a bare string: shown, untrusted
    p1, p2 = st.snapshot()[P1], st.snapshot()[P2]
    assert not p2.alarm_active and p2.untrusted["alarm"].text == "alarm TATP (x)"
    assert p1.status == "online" and p1.untrusted["status"].text == "offline"
    assert p1.untrusted_count == 6 and p2.untrusted_count == 1
    text = render_text(st)
    assert "ALARM TATP (a1)" in text and "UNTRUSTED alarm TATP (x) (INVALID)" in text
    assert "UNTRUSTED offline (INVALID)" in text

    # the device's own signed clear does clear it, and ends the warning
    feed(st, f"{P1}/alarm", genuine.sign(cleared))
    assert not st.snapshot()[P1].alarm_active and "alarm" not in st.snapshot()[P1].untrusted


def test_state_before_the_first_info_is_checked_once_a_key_is_pinned() -> None:
    key, forger = DeviceKey.generate(), DeviceKey.generate()
    st = MonitorState()
    # retained messages come in any order: alarm, status and a result before info
    feed(st, f"{P1}/alarm", key.sign({"active": True, "scan_id": "a1", "substance": "TNT"}))
    feed(st, f"{P1}/status", forger.sign({"state": "online"}))
    feed(st, f"{P1}/scan/result", key.sign(result("r1")))
    view = st.snapshot()[P1]
    assert not view.alarm_active and view.untrusted["alarm"].check == "no key"
    assert view.signature == "no key" and "no key pinned" in render_text(st)
    feed(st, f"{P1}/info", info(key))
    view = st.snapshot()[P1]
    assert view.alarm_active and "alarm" not in view.untrusted
    assert view.signature == "valid"
    assert view.status is None and view.untrusted["status"].check == "INVALID"


def test_duplicates_are_counted_once() -> None:
    st = MonitorState()
    for _ in range(3):
        feed(st, f"{P1}/scan/result", result("dup"))
    v = st.snapshot()[P1]
    assert v.results == 1 and v.duplicates == 2
    assert v.signature == "no key"


def test_alarm_shown_until_cleared() -> None:
    key = DeviceKey.generate()
    st = MonitorState()
    feed(st, f"{P1}/info", info(key))
    feed(st, f"{P1}/alarm", key.sign({"active": True, "scan_id": "a1", "substance": "TNT"}))
    assert st.snapshot()[P1].alarm_active
    assert "ALARM TNT" in render_text(st)
    feed(st, f"{P1}/alarm", key.sign({"active": False, "scan_id": "a1"}))
    assert not st.snapshot()[P1].alarm_active
    assert "ALARM" not in render_text(st)


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
    key = DeviceKey.generate()
    st = MonitorState()
    feed(st, f"{P1}/info", info(key))
    health = {
        "uptime_s": 3600.0,
        "instrument_temperature_c": 31.5,
        "outbox": {"waiting": 7, "alarms_waiting": 1, "dropped": 0, "oldest_age_s": 2.0},
        "last_error": "instrument timeout",
    }
    feed(st, f"{P1}/health", key.sign(health))
    text = render_text(st)
    assert "T=31.5C" in text and "outbox=7" in text and "instrument timeout" in text
    assert "UNTRUSTED" not in text
    feed(st, f"{P1}/health", dict(health, last_error=None))  # unsigned: flagged, not used
    text = render_text(st)
    assert "instrument timeout" in text and "UNTRUSTED health (INVALID)" in text


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
            (f"{P1}/status", key.sign({"state": "online"})),
            (f"{P1}/info", info(key)),
            (
                f"{P1}/alarm",
                key.sign({"active": True, "scan_id": "a1", "substance": {"name": "TNT"}}),
            ),
            (f"{P2}/status", {"state": "offline"}),  # unsigned, no key pinned: shown flagged
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
    assert devs[P1].status == "online" and devs[P2].untrusted["status"].text == "offline"
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

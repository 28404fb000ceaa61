"""The persisted alarm (alarm.json): survives restarts, and damage never clears it silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.service.alarm import ALARM_FILE, ActiveAlarm, AlarmState

SUBSTANCE = {
    "name": "TNT",
    "category": "explosive",
    "family": None,
    "severity": "alarm",
    "cas": None,
}


def _raised(data_dir: Path) -> AlarmState:
    state = AlarmState(data_dir)
    state.raise_(ActiveAlarm("0c6f8a51-5c1e-4a41-9a51-8c1b1f0f3c11", SUBSTANCE, "alarm", "C-1"))
    return state


def test_an_alarm_survives_a_restart_and_an_ack_clears_it(tmp_path: Path) -> None:
    _raised(tmp_path)
    again = AlarmState(tmp_path)
    assert again.active is not None and again.active.substance == SUBSTANCE
    assert again.acknowledge(None) is not None
    assert AlarmState(tmp_path).active is None


@pytest.mark.parametrize("offset", [5, 40, 80, -20])
def test_a_damaged_alarm_file_keeps_an_alarm_on(tmp_path: Path, offset: int) -> None:
    _raised(tmp_path)
    path = tmp_path / ALARM_FILE
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x02  # one flipped bit anywhere: JSON broken or content changed
    path.write_bytes(bytes(raw))
    state = AlarmState(tmp_path)
    assert state.active is not None, "a damaged alarm file must not clear the alarm"
    assert state.active.severity == "alarm"
    if state.active.scan_id is None:  # the fail-safe alarm says why
        assert "damaged" in state.active.substance["name"]  # type: ignore[index]
        assert state.acknowledge(None) is not None and state.active is None


def test_a_file_from_before_the_checksum_is_still_read(tmp_path: Path) -> None:
    legacy = {"scan_id": "s-1", "substance": SUBSTANCE, "severity": "alarm", "consignment": None}
    (tmp_path / ALARM_FILE).write_text(json.dumps(legacy))
    assert AlarmState(tmp_path).active == ActiveAlarm(**legacy)  # type: ignore[arg-type]

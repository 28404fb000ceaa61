"""The console's compiled schema checks agree with jsonschema on the contract's schemas."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from helpers_mqtt import make_identification

from controlroom.contract import ContractViolation, check
from controlroom.web.vendor import VENDORED, mismatches
from edge.publish import messages
from edge.publish.signing import DeviceKey


def valid_result() -> dict[str, Any]:
    key = DeviceKey.generate()
    return key.sign(
        messages.result_payload(make_identification(3, alarm=True), device="d-1", post="p-1", seq=3)
    )


BREAKAGES = [
    ("confidence", 7),
    ("confidence", "high"),
    ("seq", 0),
    ("time", "yesterday"),
    ("status", "maybe"),
    ("device", "bad/device"),
    ("extra_member", 1),
    ("signature", {"alg": "RSA", "key_id": "0" * 16, "value": "A" * 86 + "=="}),
    ("substance", {"name": "x"}),
    ("hits", [{"name": "x"}]),
]


@pytest.mark.parametrize(("member", "value"), BREAKAGES)
def test_both_validators_refuse_a_broken_result(member: str, value: Any) -> None:
    body = copy.deepcopy(valid_result())
    body[member] = value
    with pytest.raises(jsonschema.ValidationError):
        messages.validate("scan-result", body)
    with pytest.raises(ContractViolation):
        check("scan-result", body)


def test_both_validators_accept_every_kind_the_device_builds() -> None:
    payloads = {
        "scan-result": valid_result(),
        "status": messages.status_payload("online", "d-1", "p-1"),
        "alarm": messages.alarm_payload("d-1", "p-1", active=False),
        "health": messages.health_payload(
            "d-1",
            "p-1",
            uptime_s=1.0,
            outbox={"waiting": 0, "alarms_waiting": 0, "dropped": 0, "oldest_age_s": None},
        ),
        "cmd-ack-response": messages.response_payload(
            "ack", "d-1", "p-1", result={"cleared": True, "scan_id": "abc"}
        ),
        "cmd-error-response": messages.response_payload(
            "nope", "d-1", "p-1", error=("unknown_command", "no such command")
        ),
    }
    for kind, body in payloads.items():
        messages.validate(kind, body)
        check(kind, body)


def test_missing_member_is_named() -> None:
    body = valid_result()
    del body["scan_id"]
    with pytest.raises(ContractViolation, match="scan_id"):
        check("scan-result", body)


def test_vendored_front_end_files_match_their_pins() -> None:
    assert set(VENDORED) == {"htmx-2.0.11.min.js", "htmx-ext-sse-2.2.4.min.js"}
    assert mismatches() == []

"""One command contract: the pydantic models are the source, the shipped request schemas are
generated from them, and the registry names every command once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from edge.publish import messages
from edge.service.commands.contract import (
    COMMANDS,
    CommandRejected,
    parse_request,
    request_schema,
    request_schema_path,
    served,
)

ROOT = Path(__file__).resolve().parents[2]

#: Request bodies per command, good and bad: the shipped schema and the model must agree on
#: every one (the generator rewrites optional keys, so this is what proves it right).
BODIES: dict[str, list[object]] = {
    "scan": [
        {"consignment": "MSKU 1234567"},
        {},
        {"consignment": ""},
        {"consignment": "A" * 65},
        {"consignment": None},
        {"consignment": 7},
        {"consignment": "x", "extra": 1},
        {"consignment": "x", "request_id": "req-1"},
        {"consignment": "x", "request_id": ""},
        {"consignment": "x", "request_id": "r" * 65},
        {"consignment": "x", "request_id": "a/b"},
        {"consignment": "x", "request_id": None},
        {"consignment": "x", "request_id": 7},
    ],
    "ack": [
        {},
        {"scan_id": "s-1", "operator": "officer 7"},
        {"scan_id": "a/../b"},
        {"scan_id": 42},
        {"scan_id": None},
        {"operator": "o" * 65},
        {"operator": None},
        {"who": "x"},
    ],
    "background": [{}, {"x": 1}, {"consignment": "C"}],
    "get_spectrum": [
        {"scan_id": "s-1"},
        {"scan_id": "s-1", "kind": "raw"},
        {"scan_id": "s-1", "kind": "processed"},
        {},
        {"scan_id": "s-1", "kind": "all"},
        {"scan_id": "s-1", "kind": None},
        {"scan_id": ""},
        {"scan_id": "x" * 65},
    ],
    "replay": [
        {"from_seq": 1, "to_seq": 1},
        {"from_seq": 7, "to_seq": 500},
        {},
        {"from_seq": 1},
        {"from_seq": 0, "to_seq": 3},
        {"from_seq": "1", "to_seq": 3},
        {"from_seq": 1.5, "to_seq": 3},
        {"from_seq": True, "to_seq": 3},
        {"from_seq": 1, "to_seq": 2, "x": 1},
        {"from_seq": None, "to_seq": 2},
    ],
    "ping": [{}, {"nonce": "n-1"}, {"nonce": None}, {"nonce": "n" * 65}, {"extra": 1}],
    "update": [
        {"repository": "/media/usb/repo"},
        {"repository": "https://laptop.local:8080/", "target": "app/spectra_edge-0.2.0.tar"},
        {"repository": "/r", "target": "library/lib-2026.12.1.tar"},
        {},
        {"repository": "relative"},
        {"repository": "/r", "target": None},
        {"repository": "/r", "target": "firmware/x"},
        {"repository": "/r x"},
        {"repository": "/" + "r" * 600},
        {"repository": "/r", "force": True},
    ],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_shipped_request_schema_is_generated_from_the_model(name: str) -> None:
    shipped = json.loads(request_schema_path(name).read_text("utf-8"))
    assert shipped == request_schema(name), "run scripts/gen_command_schemas.py"
    jsonschema.Draft202012Validator.check_schema(shipped)
    assert messages.schema(f"cmd-{name}-request") == shipped  # what the contract loads


def test_generator_script_check_passes_on_the_shipped_files() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_command_schemas.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_every_command_has_a_request_and_a_response_schema_and_nothing_else_does() -> None:
    requests = {k[len("cmd-") : -len("-request")] for k in messages.KINDS if k.endswith("-request")}
    responses = {
        k[len("cmd-") : -len("-response")]
        for k in messages.KINDS
        if k.startswith("cmd-") and k.endswith("-response")
    }
    assert requests == set(COMMANDS)
    assert responses == set(COMMANDS) | {"error"}


def test_bodies_are_judged_alike_by_the_schema_and_the_model() -> None:
    assert set(BODIES) == set(COMMANDS)
    for name, bodies in BODIES.items():
        validator = jsonschema.Draft202012Validator(messages.schema(f"cmd-{name}-request"))
        for body in bodies:
            by_schema = validator.is_valid(body)
            try:
                parse_request(name, json.dumps(body).encode())
                by_model = True
            except CommandRejected as err:
                assert err.code == "bad_request", (name, body, err.code)
                by_model = False
            assert by_schema == by_model, (name, body)
    # and the corpus is not trivially one-sided
    assert any(
        not jsonschema.Draft202012Validator(request_schema("ping")).is_valid(b)
        for b in BODIES["ping"]
    )


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"from_seq": 5, "to_seq": 4}', "below from_seq"),
        (b'{"from_seq": 1, "to_seq": 1001}', "at most 1000"),
    ],
)
def test_replay_range_is_ordered_and_bounded(body: bytes, why: str) -> None:
    with pytest.raises(CommandRejected, match=why) as info:
        parse_request("replay", body)
    assert info.value.code == "bad_request"
    assert parse_request("replay", b'{"from_seq": 1, "to_seq": 1000}')


def test_optional_means_absent_never_null() -> None:
    with pytest.raises(CommandRejected, match="null is not allowed") as info:
        parse_request("ping", b'{"nonce": null}')
    assert info.value.code == "bad_request"
    assert parse_request("ping", b"{}").nonce is None  # type: ignore[attr-defined]


def test_parse_order_and_codes() -> None:
    codes = []
    for name, payload in [
        ("ping", b"{" + b" " * 5000 + b"}"),
        ("reboot", b"{}"),
        ("ping", b"{nope"),
        ("ping", b"[]"),
        ("ping", b'{"x": 1}'),
    ]:
        with pytest.raises(CommandRejected) as info:
            parse_request(name, payload)
        codes.append(info.value.code)
    assert codes == ["too_large", "unknown_command", "bad_json", "bad_json", "bad_request"]


def test_served_keeps_registry_order_and_refuses_strangers() -> None:
    assert served(["ping", "scan"]) == ("scan", "ping")
    assert served(list(COMMANDS)) == tuple(COMMANDS)
    with pytest.raises(ValueError, match="reboot"):
        served(["ping", "reboot"])

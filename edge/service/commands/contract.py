"""The remote-command contract: one registry of commands and their request models.

The pydantic models are the source. Each shipped request schema,
``edge/publish/schemas/cmd-<name>-request.json``, is generated from its model by
``scripts/gen_command_schemas.py`` (a test checks the shipped files are what it writes), the
topic list and ``info.commands`` come from :data:`COMMANDS`, and a request body is validated
once, by its model (:func:`parse_request`).

A key that may be left out is never ``null``: optional means absent, in the schema and in
the model alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from edge.errors import CommandError
from edge.ota.request import REPOSITORY_PATTERN, TARGET_PATTERN

#: Largest request payload accepted, bytes.
MAX_PAYLOAD_BYTES = 4096
#: Longest response topic accepted from a request, characters.
MAX_RESPONSE_TOPIC = 256
#: Longest correlation data echoed, bytes (longer is dropped, the response still sent).
MAX_CORRELATION_BYTES = 256
#: Deepest nesting of arrays/objects accepted in a request body (deeper: ``bad_json``).
MAX_JSON_DEPTH = 16
#: Longest seq range one ``replay`` request may name (the control room asks in parts).
MAX_REPLAY_SPAN = 1000

#: Error codes of the contract (``error.code`` in every ``cmd-*-response`` schema).
ErrorCode = Literal[
    "bad_json",
    "bad_request",
    "unknown_command",
    "too_large",
    "rate_limited",
    "busy",
    "not_found",
    "failed",
]


class CommandRejected(CommandError):
    """A request refused (before or by its handler); ``code`` says why (an :data:`ErrorCode`)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code: ErrorCode = code
        super().__init__(message)


# -- request models ---------------------------------------------------------------------

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class CommandArgs(BaseModel):
    """Base of every command's arguments: strict types, unknown keys and nulls rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(str(k) for k, v in data.items() if v is None)
            if nulls:
                raise ValueError(f"null is not allowed (leave the key out): {', '.join(nulls)}")
        return data


class ScanArgs(CommandArgs):
    """Take a scan now, as if the officer pressed the button."""

    consignment: str = Field(
        min_length=1, max_length=64, description="Consignment/container reference, in the result."
    )
    request_id: str | None = Field(
        None,
        pattern=_ID,
        description=(
            "Client-chosen id of this request: a request with an id already seen is never "
            "run again, it is answered with the first one's response."
        ),
    )


class AckArgs(CommandArgs):
    """Acknowledge the active alarm (of scan scan_id when given)."""

    scan_id: str | None = Field(None, pattern=_ID, description="Scan whose alarm is acknowledged.")
    operator: str | None = Field(None, max_length=64, description="Who acknowledged it.")


class BackgroundArgs(CommandArgs):
    """Take a new background (the crystal must be clean)."""


class GetSpectrumArgs(CommandArgs):
    """A stored scan's spectrum, for reach-back by a chemist."""

    scan_id: str = Field(pattern=_ID, description="Scan to return.")
    kind: Literal["raw", "processed"] = Field(
        "processed", description="processed: absorbance on the grid; raw: sample counts."
    )


class ReplayArgs(CommandArgs):
    """Send archived results from_seq..to_seq again, as published, flagged historical."""

    from_seq: int = Field(ge=1, description="First seq to resend.")
    to_seq: int = Field(ge=1, description="Last seq to resend (at most 1000 after from_seq).")

    @model_validator(mode="after")
    def _bounded(self) -> ReplayArgs:
        if self.to_seq < self.from_seq:
            raise ValueError("to_seq must not be below from_seq")
        if self.to_seq - self.from_seq + 1 > MAX_REPLAY_SPAN:
            raise ValueError(f"at most {MAX_REPLAY_SPAN} seqs per request")
        return self


class UpdateArgs(CommandArgs):
    """Install a signed update from a repository; progress and outcome go to ota/state."""

    repository: str = Field(
        pattern=REPOSITORY_PATTERN,
        max_length=512,
        description="TUF repository: an absolute directory on the device (USB stick) or an "
        "http(s) URL. Its content is trusted only through the device's root metadata.",
    )
    target: str | None = Field(
        None,
        pattern=TARGET_PATTERN,
        description="Only this target (e.g. app/spectra_edge-0.2.0.tar); absent: whatever "
        "is newer than what runs.",
    )


class PingArgs(CommandArgs):
    """Liveness: answers with uptime and version, echoing nonce."""

    nonce: str | None = Field(None, max_length=64, description="Echoed in the response.")


#: The registry: every command of the contract and the model of its arguments, in the order
#: ``info.commands`` lists them.
COMMANDS: Final[Mapping[str, type[CommandArgs]]] = {
    "scan": ScanArgs,
    "ack": AckArgs,
    "background": BackgroundArgs,
    "get_spectrum": GetSpectrumArgs,
    "replay": ReplayArgs,
    "ping": PingArgs,
    "update": UpdateArgs,
}


def served(names: Mapping[str, object] | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """*names* in registry order; :class:`ValueError` for a name the contract does not know."""
    unknown = set(names) - set(COMMANDS)
    if unknown:
        raise ValueError(f"not commands of the contract: {sorted(unknown)}")
    return tuple(name for name in COMMANDS if name in names)


def json_depth(payload: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in *payload* outside strings (a linear scan, so a
    hostile body is measured before any recursive parser sees it)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def parse_request(name: str, payload: bytes, max_payload: int = MAX_PAYLOAD_BYTES) -> CommandArgs:
    """Validate one request body for command *name*, once, by its model.

    Raises :class:`CommandRejected` with code too_large, unknown_command, bad_json or
    bad_request (checked in that order).
    """
    if len(payload) > max_payload:
        raise CommandRejected("too_large", f"payload of {len(payload)} bytes exceeds {max_payload}")
    model = COMMANDS.get(name)
    if model is None:
        raise CommandRejected("unknown_command", f"unknown command {name[:64]!r}")
    depth = json_depth(payload)
    if depth > MAX_JSON_DEPTH:
        raise CommandRejected("bad_json", f"nested {depth} deep, at most {MAX_JSON_DEPTH}")
    try:
        body = json.loads(payload.decode("utf-8")) if payload.strip() else {}
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise CommandRejected("bad_json", f"not JSON: {str(err)[:200]}") from err
    if not isinstance(body, dict):
        raise CommandRejected("bad_json", "request must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
            for e in err.errors()[:5]
        )
        raise CommandRejected("bad_request", problems[:300]) from err


# -- the JSON Schemas generated from the models -----------------------------------------

#: Where the shipped request schemas live.
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "publish" / "schemas"


class _ContractSchema(GenerateJsonSchema):
    """The models' JSON Schema as the contract states it: optional keys are absent, never
    null (so ``X | None = None`` is just X, without a null default); no per-field titles."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        out = super().default_schema(schema)
        if out.get("default", 0) is None:
            del out["default"]
        return out

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def request_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of command *name*'s request body, from its model."""
    model = COMMANDS[name]
    generated = model.model_json_schema(schema_generator=_ContractSchema)
    doc = generated.pop("description", "").strip()
    generated.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://spectra-edge.invalid/schemas/cmd-{name}-request.json",
        "title": f"cmd/{name} request",
        "description": (
            f"Request body of cmd/{name}. {doc} Reply goes to cmd/{name}/response (only "
            f"there) with the request's correlation data."
        ),
        **generated,
    }


def request_schema_text(name: str) -> str:
    """:func:`request_schema` as the shipped file's text (2-space indent, final newline)."""
    return json.dumps(request_schema(name), indent=2) + "\n"


def request_schema_path(name: str) -> Path:
    """The shipped request schema file of command *name*."""
    return SCHEMA_DIR / f"cmd-{name}-request.json"

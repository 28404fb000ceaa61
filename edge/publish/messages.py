"""Message payloads of the MQTT contract and their JSON Schemas (draft 2020-12).

Each message kind has a schema in ``edge/publish/schemas/<kind>.json``; the builders here
produce plain dicts that validate against them (tests check every published message).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Final

from edge import __version__
from edge.identify.result import Identification
from edge.store.timesource import time_source

SCHEMA_VERSION: Final = 1

#: Message kinds with a schema file (``edge/publish/schemas/<kind>.json``): state, results,
#: and a request and a response schema per remote command.
KINDS: Final = tuple(
    sorted(
        entry.name.removesuffix(".json")
        for entry in resources.files("edge.publish.schemas").iterdir()
        if entry.name.endswith(".json")
    )
)


def utc_now() -> str:
    """Current time, RFC 3339 UTC with milliseconds and a 'Z' suffix."""
    return rfc3339(datetime.now(UTC))


def rfc3339(when: datetime) -> str:
    """*when* (timezone-aware) as RFC 3339 UTC with milliseconds, 'Z' suffix."""
    # isoformat is several times faster than strftime and truncates to ms the same way
    return when.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def new_scan_id() -> str:
    """A fresh unique scan id (UUID4, 36 characters)."""
    return str(uuid.uuid4())


@cache
def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of message *kind* (see :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    text = resources.files("edge.publish.schemas").joinpath(f"{kind}.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator(kind: str) -> Any:
    import jsonschema  # imported lazily: the device hot path never validates

    cls = jsonschema.Draft202012Validator
    return cls(schema(kind), format_checker=cls.FORMAT_CHECKER)


def validate(kind: str, payload: Any) -> None:
    """Raise ``jsonschema.ValidationError`` when *payload* does not match *kind*'s schema."""
    _validator(kind).validate(payload)


def _header(device: str, post: str, time: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "device": device, "post": post}
    if time is not None:
        out["time"] = time
    return out


def status_payload(
    state: str,
    device: str,
    post: str,
    *,
    with_time: bool = True,
    reason: str | None = None,
) -> dict[str, Any]:
    """``status`` message; the last will is built with ``with_time=False``. *reason* says
    why the device is in ``maintenance`` (``instrument_fault``, ``disk_full``)."""
    out = _header(device, post, utc_now() if with_time else None)
    out["state"] = state
    if reason:
        out["reason"] = reason
    return out


def versions_of(identification: Identification | None = None) -> dict[str, str]:
    """App version plus whatever model/library versions the identification carries."""
    out = {"app": __version__}
    if identification is not None:
        out.update({str(k): str(v) for k, v in identification.versions.items()})
    return out


def info_payload(
    device: str,
    post: str,
    *,
    prefix: str,
    public_key: Mapping[str, str],
    versions: Mapping[str, str] | None = None,
    instrument: Mapping[str, Any] | None = None,
    commands: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``info`` message: identity, versions, signing public key."""
    out = _header(device, post, utc_now())
    out.update(
        prefix=prefix,
        versions=dict(versions or versions_of()),
        instrument=dict(instrument) if instrument is not None else None,
        public_key=dict(public_key),
        commands=list(commands),
    )
    return out


def health_payload(
    device: str,
    post: str,
    *,
    uptime_s: float,
    outbox: Mapping[str, Any],
    instrument_temperature_c: float | None = None,
    background_age_s: float | None = None,
    last_error: str | None = None,
    disk_free_bytes: int | None = None,
) -> dict[str, Any]:
    """``health`` message. *outbox*: waiting, alarms_waiting, dropped, oldest_age_s."""
    out = _header(device, post, utc_now())
    out.update(
        uptime_s=max(0.0, float(uptime_s)),
        instrument_temperature_c=instrument_temperature_c,
        background_age_s=background_age_s,
        last_error=last_error,
        disk_free_bytes=disk_free_bytes,
        outbox=dict(outbox),
    )
    return out


def alarm_payload(
    device: str,
    post: str,
    *,
    active: bool,
    scan_id: str | None = None,
    substance: Mapping[str, Any] | None = None,
    severity: str | None = None,
    consignment: str | None = None,
    acknowledged_by: str | None = None,
) -> dict[str, Any]:
    """``alarm`` message: the active alarm, or cleared (``active=False``)."""
    out = _header(device, post, utc_now())
    out.update(
        active=active,
        scan_id=scan_id,
        substance=dict(substance) if substance is not None else None,
        severity=severity,
        consignment=consignment,
        acknowledged_by=acknowledged_by,
    )
    return out


def is_alarm(identification: Identification) -> bool:
    """True when a result raises an alarm (never dropped from the outbox).

    The result's own severity decides: the verdict raises ``alarm`` only for a threat named
    on its own calibrated evidence (:mod:`edge.identify.verdict`); an unconfirmed threat
    component listed in a mixture, or the nearest substance of an inconclusive answer, makes
    it ``warn`` at most.
    """
    return identification.severity == "alarm"


def result_payload(
    identification: Identification,
    *,
    device: str,
    post: str,
    seq: int,
    scan_id: str | None = None,
    time: str | None = None,
    consignment: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Unsigned ``scan/result`` payload (sign it with :meth:`DeviceKey.sign`)."""
    out = _header(device, post, time or utc_now())
    body = identification.to_dict()
    body["versions"] = versions_of(identification)
    out.update(body)
    out.update(
        scan_id=scan_id or new_scan_id(),
        seq=int(seq),
        consignment=consignment,
        historical=False,
        time_source=time_source(),
    )
    if extra:
        out["extra"] = dict(extra)
    return out


def response_payload(
    command: str,
    device: str,
    post: str,
    *,
    result: Mapping[str, Any] | None = None,
    error: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Response to ``cmd/<command>``: ``ok`` with *result*, or an *error* ``(code, message)``."""
    if (result is None) == (error is None):
        raise ValueError("give exactly one of result or error")
    out = _header(device, post, utc_now())
    out["command"] = command
    out["ok"] = error is None
    if error is None:
        out["result"] = dict(result or {})
    else:
        out["error"] = {"code": error[0], "message": error[1]}
    return out


def response_kind(command: str) -> str:
    """Schema kind of a response to *command*."""
    kind = f"cmd-{command}-response"
    return kind if kind in KINDS else "cmd-error-response"


#: Members of the updater's ota/state.json that ``ota/state`` carries (beyond state and time).
OTA_STATE_FIELDS: Final = ("kind", "version", "target", "reason", "code", "deferred", "running")


def ota_state_payload(
    device: str, post: str, state: Mapping[str, Any], installed: Mapping[str, str | None]
) -> dict[str, Any]:
    """``ota/state`` (unsigned) from the updater's *state* document (``ota/state.json``; an
    empty one is ``idle``) and the versions *installed*. ``time`` is when the updater entered
    the state, so a republished state signs to the same bytes."""
    out = _header(device, post, str(state.get("time") or utc_now()))
    out["state"] = state.get("state", "idle")
    for key in OTA_STATE_FIELDS:
        value = state.get(key)
        if key == "deferred":
            if value is not None:
                out[key] = bool(value)
        elif key in ("version", "reason") or value is not None:
            out[key] = None if value is None else str(value)
    out["installed"] = {k: v for k, v in installed.items() if k in ("app", "library", "model")}
    out["installed"].setdefault("app", __version__)
    return out

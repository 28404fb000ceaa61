"""Operator actions that change state: each one is written to the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from sqlalchemy import select, update

from controlroom import audit
from controlroom.alarms_view import alarm_dict
from controlroom.audit import utcnow
from controlroom.auth import Identity
from controlroom.commands import new_correlation
from controlroom.db.schema import Alarm, Result
from controlroom.errors import ControlRoomError
from controlroom.keys import register_key
from controlroom.web.context import ConsoleContext


def acknowledge(ctx: ConsoleContext, who: Identity, alarm_id: int) -> dict[str, Any]:
    """Send ``ack`` for alarm *alarm_id* to its device (the caller checked the role).

    The alarm becomes ``ack_sent``; only the device's answer makes it ``acknowledged``.
    """
    corr = new_correlation()
    with ctx.db.session() as s:
        alarm = s.get(Alarm, alarm_id)
        if alarm is None:
            raise HTTPException(404, f"no alarm {alarm_id}")
        if alarm.state not in ("open", "ack_sent"):
            return alarm_dict(alarm)
        alarm.state = "ack_sent"
        alarm.ack_requested_by = who.username
        alarm.ack_requested_at = utcnow()
        alarm.ack_correlation = corr
        audit.append(
            s,
            actor=who.username,
            role=who.role,
            action="alarm_ack",
            target=alarm.scan_id,
            detail={"device": alarm.prefix, "correlation": corr},
        )
        prefix, scan_id = alarm.prefix, alarm.scan_id
    try:
        if ctx.commands is None:
            raise ControlRoomError("this console has no broker connection")
        ctx.commands.send(
            prefix, "ack", {"scan_id": scan_id, "operator": who.username}, correlation=corr
        )
    except ControlRoomError as err:
        with ctx.db.session() as s:
            s.execute(
                update(Alarm)
                .where(Alarm.id == alarm_id, Alarm.ack_correlation == corr)
                .values(state="open", note=f"ack not sent: {err}"[:300])
            )
            audit.append(
                s,
                actor=who.username,
                role=who.role,
                action="alarm_ack",
                target=scan_id,
                outcome="failed",
                detail={"error": str(err)},
            )
        raise HTTPException(503, f"ack not sent: {err}") from err
    with ctx.db.session() as s:
        alarm = s.get(Alarm, alarm_id)
        assert alarm is not None
        sig = s.execute(
            select(Result.signature_state).where(Result.scan_id == alarm.scan_id)
        ).scalar_one_or_none()
        return alarm_dict(alarm, sig)


def decide_key(ctx: ConsoleContext, who: Identity, key_row_id: int, decision: str) -> None:
    """Approve or reject a device key; results signed by it are re-checked."""
    from controlroom.db.schema import DeviceKey
    from controlroom.keys import KeyRegistry

    if decision not in ("approved", "rejected"):
        raise HTTPException(400, "decision must be approved or rejected")
    with ctx.db.session() as s:
        row = s.get(DeviceKey, key_row_id)
        if row is None:
            raise HTTPException(404, f"no key {key_row_id}")
        register_key(s, row.prefix, row.public_key, state=decision, by=who.username)
        audit.append(
            s,
            actor=who.username,
            role=who.role,
            action={"approved": "key_approve", "rejected": "key_reject"}[decision],
            target=row.prefix,
            detail={"key_id": row.key_id},
        )
        registry = KeyRegistry()
        registry.load(s)
        recheck_results(s, registry, row.prefix, row.key_id)


def recheck_results(s: Any, registry: Any, prefix: str, key_id: str) -> int:
    """Recompute the signature state of *prefix*'s results naming *key_id*; returns changes."""
    import json

    changed = 0
    for r in s.execute(
        select(Result).where(Result.prefix == prefix, Result.key_id == key_id)
    ).scalars():
        state, _ = registry.signature_state(prefix, json.loads(r.payload))
        if state != r.signature_state:
            r.signature_state = state
            changed += 1
    return changed

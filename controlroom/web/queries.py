"""Read-side queries shared by the pages, the JSON API and the CSV export."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from controlroom.alarms_view import alarm_dict
from controlroom.db.schema import Alarm, Device, DeviceKey, Result, SeqGap

SEVERITIES = ("alarm", "warn", "info")


@dataclass(frozen=True)
class ResultFilter:
    """Search criteria; empty fields do not filter."""

    date_from: date | None = None
    date_to: date | None = None
    post: str = ""
    device: str = ""
    substance: str = ""
    category: str = ""
    severity: str = ""
    consignment: str = ""
    signature: str = ""

    @classmethod
    def from_params(cls, params: Any) -> ResultFilter:
        """From query parameters (unknown keys ignored, bad dates raise ValueError)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = (params.get(f.name) or "").strip()
            if not raw:
                continue
            values[f.name] = date.fromisoformat(raw) if f.name.startswith("date_") else raw[:200]
        return cls(**values)

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        """*stmt* with these criteria as WHERE clauses."""
        if self.date_from:
            stmt = stmt.where(Result.time >= datetime.combine(self.date_from, time()))
        if self.date_to:
            end = datetime.combine(self.date_to, time()) + timedelta(days=1)
            stmt = stmt.where(Result.time < end)
        for col, value in (
            (Result.post, self.post),
            (Result.device, self.device),
            (Result.severity, self.severity),
            (Result.category, self.category),
            (Result.signature_state, self.signature),
        ):
            if value:
                stmt = stmt.where(col == value)
        if self.substance:
            stmt = stmt.where(func.lower(Result.substance).contains(self.substance.lower()))
        if self.consignment:
            stmt = stmt.where(func.lower(Result.consignment).contains(self.consignment.lower()))
        return stmt

    def query_string(self) -> str:
        """These criteria as a URL query string (for the export link)."""
        from urllib.parse import urlencode

        return urlencode(
            {f.name: str(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name)}
        )


RESULT_COLUMNS = (
    "id",
    "scan_id",
    "time",
    "post",
    "device",
    "seq",
    "consignment",
    "status",
    "substance",
    "category",
    "severity",
    "confidence",
    "signature_state",
    "historical",
    "received_at",
)


def result_dict(r: Result) -> dict[str, Any]:
    """The searchable columns of one result, JSON-friendly."""
    out = {c: getattr(r, c) for c in RESULT_COLUMNS}
    for c in ("time", "received_at"):
        out[c] = out[c].isoformat(timespec="milliseconds") + "Z"
    return out


def search_results(
    s: Session, flt: ResultFilter, *, limit: int = 200, after_id: int | None = None
) -> list[Result]:
    """Results matching *flt*, newest first (or, with *after_id*, those after it, oldest first)."""
    stmt = flt.apply(select(Result))
    if after_id is not None:
        stmt = stmt.where(Result.id > after_id).order_by(Result.id)
    else:
        stmt = stmt.order_by(Result.time.desc(), Result.id.desc())
    return list(s.execute(stmt.limit(limit)).scalars())


def latest_result_id(s: Session) -> int:
    """The highest result row id (0 when empty)."""
    return int(s.execute(select(func.coalesce(func.max(Result.id), 0))).scalar_one())


def _untrusted(signature_state: str | None) -> str | None:
    """The signature state of a state message when it is not trusted, else None."""
    return None if signature_state in (None, "valid") else signature_state


def devices_overview(s: Session) -> list[dict[str, Any]]:
    """Every device with status, last seen, health, key state, result count and gaps."""
    stats = {
        p: (n, last)
        for p, n, last in s.execute(
            select(Result.prefix, func.count(Result.id), func.max(Result.received_at)).group_by(
                Result.prefix
            )
        )
    }
    keys: dict[str, list[DeviceKey]] = {}
    for k in s.execute(select(DeviceKey).order_by(DeviceKey.first_seen)).scalars():
        keys.setdefault(k.prefix, []).append(k)
    gaps = dict(
        s.execute(
            select(SeqGap.prefix, func.count(SeqGap.id))
            .where(SeqGap.state.in_(("open", "lost")))
            .group_by(SeqGap.prefix)
        ).all()
    )
    out = []
    for d in s.execute(select(Device).order_by(Device.prefix)).scalars():
        n, last_result = stats.get(d.prefix, (0, None))
        health = json.loads(d.health) if d.health else None
        info = json.loads(d.info) if d.info else None
        alarm = json.loads(d.alarm) if d.alarm else None
        dev_keys = keys.get(d.prefix, [])
        announced = next((k for k in dev_keys if k.key_id == d.announced_key_id), None)
        last_seen = max((t for t in (d.last_seen, last_result) if t is not None), default=None)
        out.append(
            {
                "prefix": d.prefix,
                "post": d.post,
                "device": d.device,
                "status": d.status or "unknown",
                # None: stored before signatures were checked (migration 0002)
                "status_untrusted": _untrusted(d.status_signature),
                "alarm_untrusted": _untrusted(d.alarm_signature),
                "last_seen": last_seen.isoformat(timespec="seconds") + "Z" if last_seen else None,
                "results": n,
                "health": health,
                "update_state": (health or {}).get("update") or (info or {}).get("update"),
                "versions": (info or {}).get("versions"),
                # d.alarm is the last validly signed alarm (an untrusted one is not stored there)
                "alarm_active": bool(alarm and alarm.get("active")),
                "key_state": announced.state if announced else ("none" if not dev_keys else "?"),
                "announced_key_id": d.announced_key_id,
                "key_changed": announced is not None
                and announced.state == "pending"
                and any(k.state == "approved" for k in dev_keys),
                "gaps": int(gaps.get(d.prefix, 0)),
            }
        )
    return out


def alarms_list(s: Session, *, open_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
    """Alarms, newest first, with the signature state of the result that raised them."""
    stmt = select(Alarm, Result.signature_state).outerjoin(Result, Result.scan_id == Alarm.scan_id)
    if open_only:
        stmt = stmt.where(Alarm.state.in_(("open", "ack_sent")))
    rows = s.execute(stmt.order_by(Alarm.raised_at.desc(), Alarm.id.desc()).limit(limit)).all()
    return [alarm_dict(a, sig) for a, sig in rows]

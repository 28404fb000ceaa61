"""The append-only audit log of operator actions, chained by SHA-256.

Every entry's ``hash`` is SHA-256 over the previous entry's hash and the entry's own fields in
canonical JSON, so editing, deleting or inserting a row breaks the chain from that row on:
:func:`verify_chain` finds the first broken entry. The database refuses UPDATE and DELETE on the
table (triggers, see the initial migration); the chain catches what gets around them (someone
with the database owner's rights).

Appends are serialised through the one-row ``audit_head`` table: an append updates it first,
which takes the row lock (PostgreSQL) or the write lock (SQLite) before reading the previous
hash, so two console processes never chain to the same entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controlroom.db.schema import AuditEntry, AuditHead

#: The hash the first entry chains to.
GENESIS = "0" * 64


def utcnow() -> datetime:
    """Now, naive UTC with millisecond precision (what the database stores)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def entry_hash(
    prev_hash: str,
    *,
    entry_id: int,
    at: datetime,
    actor: str,
    role: str | None,
    action: str,
    target: str | None,
    outcome: str,
    detail: str,
) -> str:
    """SHA-256 (hex) chaining one entry to *prev_hash*."""
    body = json.dumps(
        {
            "id": entry_id,
            "at": at.isoformat(timespec="milliseconds"),
            "actor": actor,
            "role": role,
            "action": action,
            "target": target,
            "outcome": outcome,
            "detail": detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + body.encode("utf-8")).hexdigest()


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    role: str | None = None,
    target: str | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry inside *session*'s transaction (committed with it)."""
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_id=AuditHead.last_id))
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    entry_id = head.last_id + 1
    at = utcnow()
    detail_text = json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), default=str)
    digest = entry_hash(
        head.hash,
        entry_id=entry_id,
        at=at,
        actor=actor,
        role=role,
        action=action,
        target=target,
        outcome=outcome,
        detail=detail_text,
    )
    entry = AuditEntry(
        id=entry_id,
        at=at,
        actor=actor,
        role=role,
        action=action,
        target=target,
        outcome=outcome,
        detail=detail_text,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(entry)
    head.last_id = entry_id
    head.hash = digest
    session.flush()
    return entry


@dataclass(frozen=True)
class ChainReport:
    """The outcome of :func:`verify_chain`."""

    entries: int
    ok: bool
    first_bad_id: int | None = None
    problem: str | None = None


def verify_chain(session: Session) -> ChainReport:
    """Recompute the chain over every entry; report the first entry that does not verify."""
    prev = GENESIS
    expected_id = 1
    n = 0
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
    for e in rows:
        n += 1
        if e.id != expected_id:
            return ChainReport(n, False, e.id, f"entry {expected_id} is missing")
        if e.prev_hash != prev:
            return ChainReport(n, False, e.id, "does not chain to the previous entry")
        digest = entry_hash(
            prev,
            entry_id=e.id,
            at=e.at,
            actor=e.actor,
            role=e.role,
            action=e.action,
            target=e.target,
            outcome=e.outcome,
            detail=e.detail,
        )
        if digest != e.hash:
            return ChainReport(n, False, e.id, "contents changed after it was written")
        prev = e.hash
        expected_id += 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.last_id != expected_id - 1 or head.hash != prev):
        return ChainReport(n, False, expected_id, "the last entries were removed")
    return ChainReport(n, True)

"""One alarm as the pages and the API show it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlroom.db.schema import Alarm


def _iso(t: datetime | None) -> str | None:
    return t.isoformat(timespec="milliseconds") + "Z" if t else None


def alarm_dict(a: Alarm, signature_state: str | None = None) -> dict[str, Any]:
    """JSON-friendly view of alarm *a*; ``acknowledged`` only once the device confirmed."""
    return {
        "id": a.id,
        "scan_id": a.scan_id,
        "prefix": a.prefix,
        "raised_at": _iso(a.raised_at),
        "substance": a.substance,
        "consignment": a.consignment,
        "state": a.state,
        "acknowledged": a.state == "acknowledged",
        "ack_requested_by": a.ack_requested_by,
        "ack_requested_at": _iso(a.ack_requested_at),
        "confirmed_at": _iso(a.confirmed_at),
        "confirmed_by": a.confirmed_by,
        "note": a.note,
        "signature_state": signature_state,
    }

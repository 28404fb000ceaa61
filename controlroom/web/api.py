"""The JSON API under ``/api/``, behind the same log-in as the pages.

Scripts log in through ``POST /login`` like a browser and keep the cookie; state-changing
calls send the session's CSRF token (``GET /api/session``) as ``X-CSRF-Token``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy import select

from controlroom.audit import verify_chain
from controlroom.auth import Identity
from controlroom.db.schema import Result
from controlroom.web.actions import acknowledge
from controlroom.web.context import ConsoleContext
from controlroom.web.pages import _filter
from controlroom.web.queries import alarms_list, devices_overview, result_dict, search_results
from controlroom.web.security import csrf_checked, current, require

router = APIRouter(prefix="/api")


def _ctx(request: Request) -> ConsoleContext:
    ctx: ConsoleContext = request.app.state.ctx
    return ctx


@router.get("/session")
def session_info(who: Identity = Depends(current)) -> dict[str, str]:
    """The caller's name, role and CSRF token."""
    return {"username": who.username, "role": who.role, "csrf_token": who.csrf}


@router.get("/results")
def api_results(
    request: Request,
    limit: int = 100,
    after_id: int | None = None,
    who: Identity = Depends(require("viewer")),
) -> list[dict[str, Any]]:
    """Results matching the search parameters (as ``/search``), newest first."""
    flt = _filter(request)
    with _ctx(request).db.session() as s:
        rows = search_results(s, flt, limit=max(1, min(limit, 5000)), after_id=after_id)
        return [result_dict(r) for r in rows]


@router.get("/results/{scan_id}")
def api_result(
    request: Request, scan_id: str, who: Identity = Depends(require("viewer"))
) -> dict[str, Any]:
    """One result with its full payload as received."""
    with _ctx(request).db.session() as s:
        r = s.execute(select(Result).where(Result.scan_id == scan_id)).scalar_one_or_none()
        if r is None:
            raise HTTPException(404, f"no scan {scan_id[:64]!r}")
        return result_dict(r) | {"payload": json.loads(r.payload)}


@router.get("/devices")
def api_devices(
    request: Request, who: Identity = Depends(require("viewer"))
) -> list[dict[str, Any]]:
    """Every device with its live state."""
    with _ctx(request).db.session() as s:
        return devices_overview(s)


@router.get("/alarms")
def api_alarms(
    request: Request, open_only: bool = False, who: Identity = Depends(require("viewer"))
) -> list[dict[str, Any]]:
    """Alarms, newest first."""
    with _ctx(request).db.session() as s:
        return alarms_list(s, open_only=open_only)


@router.post("/alarms/{alarm_id}/ack")
def api_ack(
    request: Request,
    alarm_id: int,
    _csrf: Identity = Depends(csrf_checked),
    who: Identity = Depends(require("supervisor", action="alarm_ack")),
) -> dict[str, Any]:
    """Acknowledge an alarm (supervisor); the answer shows ``ack_sent`` until the device
    confirms."""
    return acknowledge(_ctx(request), who, alarm_id)


@router.get("/audit/verify")
def api_audit_verify(
    request: Request, who: Identity = Depends(require("supervisor"))
) -> dict[str, Any]:
    """Check the audit log's hash chain."""
    with _ctx(request).db.session() as s:
        r = verify_chain(s)
    return {"entries": r.entries, "ok": r.ok, "first_bad_id": r.first_bad_id, "problem": r.problem}

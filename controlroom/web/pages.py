"""The console's pages: log-in, overview, devices, live results, alarms, scans, search."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select

from controlroom import audit
from controlroom.auth import Identity, ThrottledError, authenticate, end_session, start_session
from controlroom.commands import new_correlation
from controlroom.db.schema import Result, Spectrum
from controlroom.errors import ControlRoomError
from controlroom.web.actions import acknowledge
from controlroom.web.context import ConsoleContext
from controlroom.web.plot import spectrum_svg
from controlroom.web.queries import (
    RESULT_COLUMNS,
    SEVERITIES,
    ResultFilter,
    alarms_list,
    devices_overview,
    latest_result_id,
    result_dict,
    search_results,
)
from controlroom.web.reference import reference_spectrum
from controlroom.web.security import COOKIE, csrf_checked, current, require
from controlroom.web.templating import page

router = APIRouter()


def _ctx(request: Request) -> ConsoleContext:
    ctx: ConsoleContext = request.app.state.ctx
    return ctx


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


# -- log-in ------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    """The log-in form (public)."""
    return page(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login", response_model=None)
def login(
    request: Request,
    username: str = Form(..., max_length=64),
    password: str = Form(..., max_length=256),
    next: str = Form("/"),
) -> Response:
    """Check the credentials (throttled), start a session, go to *next*."""
    ctx = _ctx(request)
    client = request.client.host if request.client else "?"
    try:
        with ctx.db.session() as s:
            user = authenticate(s, username, password, client)
            if user is None:
                audit.append(
                    s,
                    actor=username[:64],
                    action="login",
                    outcome="denied",
                    detail={"client": client},
                )
            else:
                token, _csrf = start_session(s, user)
                audit.append(s, actor=user.username, role=user.role, action="login")
    except ThrottledError as err:
        refused = page(request, "login.html", 429, next=_safe_next(next), error=str(err))
        refused.headers["Retry-After"] = str(err.retry_after_s)
        return refused
    if user is None:
        error = "wrong user name or password"
        return page(request, "login.html", 401, next=_safe_next(next), error=error)
    resp: Response = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=ctx.secure_cookies,
        max_age=8 * 3600,
    )
    return resp


@router.post("/logout", response_model=None)
def logout(request: Request, who: Identity = Depends(csrf_checked)) -> Response:
    """End the session."""
    with _ctx(request).db.session() as s:
        end_session(s, who.session_hash)
        audit.append(s, actor=who.username, role=who.role, action="logout")
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


# -- overview, devices, live results -----------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, who: Identity = Depends(require("viewer"))) -> HTMLResponse:
    """Devices, open alarms and the live feed on one screen."""
    with _ctx(request).db.session() as s:
        return page(
            request,
            "overview.html",
            devices=devices_overview(s),
            alarms=alarms_list(s, open_only=True),
            results=search_results(s, ResultFilter(), limit=25),
            after=latest_result_id(s),
        )


@router.get("/devices", response_class=HTMLResponse)
def devices(request: Request, who: Identity = Depends(require("viewer"))) -> HTMLResponse:
    """Every device: status, last seen, health, update state, key."""
    with _ctx(request).db.session() as s:
        return page(request, "devices.html", devices=devices_overview(s))


@router.get("/devices/table", response_class=HTMLResponse)
def devices_table(request: Request, who: Identity = Depends(require("viewer"))) -> HTMLResponse:
    """The devices table alone (htmx refreshes it)."""
    with _ctx(request).db.session() as s:
        return page(request, "_devices_table.html", devices=devices_overview(s))


@router.get("/results", response_class=HTMLResponse)
def results(request: Request, who: Identity = Depends(require("viewer"))) -> HTMLResponse:
    """The live results feed."""
    with _ctx(request).db.session() as s:
        return page(
            request,
            "results.html",
            results=search_results(s, ResultFilter(), limit=50),
            after=latest_result_id(s),
        )


# -- alarms ------------------------------------------------------------------------------


@router.get("/alarms", response_class=HTMLResponse)
def alarms(request: Request, who: Identity = Depends(require("viewer"))) -> HTMLResponse:
    """The alarm queue (open first) and the recent acknowledged ones."""
    with _ctx(request).db.session() as s:
        return page(request, "alarms.html", alarms=alarms_list(s))


@router.get("/alarms/table", response_class=HTMLResponse)
def alarms_table(request: Request, who: Identity = Depends(require("viewer"))) -> HTMLResponse:
    """The alarm table alone (htmx refreshes it every second)."""
    with _ctx(request).db.session() as s:
        return page(request, "_alarms_table.html", alarms=alarms_list(s))


@router.post("/alarms/{alarm_id}/ack", response_class=HTMLResponse)
def ack_alarm(
    request: Request,
    alarm_id: int,
    _csrf: Identity = Depends(csrf_checked),
    who: Identity = Depends(require("supervisor", action="alarm_ack")),
) -> HTMLResponse:
    """A supervisor acknowledges an alarm: ``ack`` goes to the device (audited)."""
    acknowledge(_ctx(request), who, alarm_id)
    with _ctx(request).db.session() as s:
        return page(request, "_alarms_table.html", alarms=alarms_list(s))


# -- scans -------------------------------------------------------------------------------


def _result_or_404(ctx: ConsoleContext, scan_id: str) -> tuple[Result, dict[str, Any]]:
    with ctx.db.session() as s:
        r = s.execute(select(Result).where(Result.scan_id == scan_id)).scalar_one_or_none()
    if r is None:
        raise HTTPException(404, f"no scan {scan_id[:64]!r}")
    return r, json.loads(r.payload)


@router.get("/scans/{scan_id}", response_class=HTMLResponse)
def scan_page(
    request: Request, scan_id: str, who: Identity = Depends(require("viewer"))
) -> HTMLResponse:
    """One scan: plot, hits, mixture, signature, consignment."""
    r, body = _result_or_404(_ctx(request), scan_id)
    return page(request, "scan.html", r=r, body=body)


def _spectrum(ctx: ConsoleContext, scan_id: str) -> Spectrum | None:
    with ctx.db.session() as s:
        return s.get(Spectrum, scan_id)


@router.get("/scans/{scan_id}/plot", response_class=HTMLResponse)
async def scan_plot(
    request: Request, scan_id: str, who: Identity = Depends(require("viewer"))
) -> HTMLResponse:
    """The spectrum against the top library hit; asks the device (``get_spectrum``) once."""
    ctx = _ctx(request)
    r, body = await asyncio.to_thread(_result_or_404, ctx, scan_id)
    spec = await asyncio.to_thread(_spectrum, ctx, scan_id)
    problem = None
    if spec is None and ctx.commands is not None:
        try:
            await asyncio.to_thread(
                ctx.commands.send,
                r.prefix,
                "get_spectrum",
                {"scan_id": scan_id, "kind": "processed"},
                correlation=new_correlation(),
                expiry_s=60,
            )
        except ControlRoomError as err:
            problem = f"request not sent: {err}"
        deadline = time.monotonic() + ctx.spectrum_wait_s
        while problem is None and spec is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            spec = await asyncio.to_thread(_spectrum, ctx, scan_id)
    if spec is None:
        problem = problem or "the device did not send the spectrum (offline, or scan pruned)"
        return page(request, "_plot.html", svg=None, problem=problem, r=r)
    hits = body.get("hits") or []
    top = hits[0]["name"] if hits else None
    ref = reference_spectrum(ctx.library, top) if top else None
    svg = spectrum_svg(
        json.loads(spec.x),
        json.loads(spec.y),
        label=f"scan {scan_id[:8]} ({spec.y_unit or 'y'})",
        reference=(ref[0], ref[1], f"library: {top}") if ref else None,
    )
    note = None if ref or not top else f"no reference spectrum of {top!r} in the console library"
    return page(request, "_plot.html", svg=svg, problem=note, r=r)


@router.get("/scans/{scan_id}/report", response_class=HTMLResponse)
def scan_report(
    request: Request, scan_id: str, who: Identity = Depends(require("operator"))
) -> HTMLResponse:
    """A printable report of one scan for the case file (print CSS; the browser saves PDF)."""
    ctx = _ctx(request)
    r, body = _result_or_404(ctx, scan_id)
    with ctx.db.session() as s:
        audit.append(s, actor=who.username, role=who.role, action="report", target=scan_id)
    spec = _spectrum(ctx, scan_id)
    svg = None
    if spec is not None:
        hits = body.get("hits") or []
        ref = reference_spectrum(ctx.library, hits[0]["name"]) if hits else None
        svg = spectrum_svg(
            json.loads(spec.x),
            json.loads(spec.y),
            label=f"scan {scan_id[:8]}",
            reference=(ref[0], ref[1], f"library: {hits[0]['name']}") if ref else None,
        )
    return page(request, "report.html", r=r, body=body, svg=svg)


# -- search and export -------------------------------------------------------------------


def _filter(request: Request) -> ResultFilter:
    try:
        return ResultFilter.from_params(request.query_params)
    except ValueError as err:
        raise HTTPException(400, f"bad search: {err}") from err


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, who: Identity = Depends(require("viewer"))) -> HTMLResponse:
    """Search by time, post, device, substance, category, severity, consignment."""
    flt = _filter(request)
    with _ctx(request).db.session() as s:
        rows = search_results(s, flt, limit=500)
    return page(
        request, "search.html", flt=flt, rows=rows, severities=SEVERITIES, query=flt.query_string()
    )


@router.get("/search/export.csv")
def export_csv(
    request: Request, who: Identity = Depends(require("operator", action="export"))
) -> StreamingResponse:
    """The search's results as CSV (every match, not only the first page); audited."""
    flt = _filter(request)
    ctx = _ctx(request)
    with ctx.db.session() as s:
        rows = [result_dict(r) for r in search_results(s, flt, limit=1_000_000)]
        audit.append(
            s,
            actor=who.username,
            role=who.role,
            action="export",
            detail={"query": flt.query_string(), "rows": len(rows)},
        )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(RESULT_COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    return StreamingResponse(
        iter([buf.getvalue()]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="spectra-results.csv"'},
    )


@router.get("/me")
def me(who: Identity = Depends(current)) -> dict[str, str]:
    """Who is logged in (for scripts and tests)."""
    return {"username": who.username, "role": who.role}

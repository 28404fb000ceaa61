"""Administration: device keys (approve, reject, register), users, the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from controlroom import audit
from controlroom.audit import verify_chain
from controlroom.auth import ROLES, AuthError, Identity, create_user
from controlroom.db.schema import AuditEntry, DeviceKey, User
from controlroom.keys import KeyRegistry, register_key
from controlroom.web.actions import decide_key, recheck_results
from controlroom.web.context import ConsoleContext
from controlroom.web.security import csrf_checked, require
from controlroom.web.templating import page
from edge.errors import EdgeError

router = APIRouter()


def _ctx(request: Request) -> ConsoleContext:
    ctx: ConsoleContext = request.app.state.ctx
    return ctx


@router.get("/admin/keys", response_class=HTMLResponse)
def keys_page(request: Request, who: Identity = Depends(require("admin"))) -> HTMLResponse:
    """Every device key and its state; pending ones first."""
    with _ctx(request).db.session() as s:
        rows = list(
            s.execute(
                select(DeviceKey).order_by(DeviceKey.state.desc(), DeviceKey.prefix)
            ).scalars()
        )
    return page(request, "keys.html", keys=rows)


@router.post("/admin/keys/{key_row_id}/{decision}")
def decide(
    request: Request,
    key_row_id: int,
    decision: str,
    _csrf: Identity = Depends(csrf_checked),
    who: Identity = Depends(require("admin", action="key_decision")),
) -> RedirectResponse:
    """Approve or reject one key (``decision``: approve | reject)."""
    states = {"approve": "approved", "reject": "rejected"}
    if decision not in states:
        raise HTTPException(404, "approve or reject")
    decide_key(_ctx(request), who, key_row_id, states[decision])
    return RedirectResponse("/admin/keys", status_code=303)


@router.post("/admin/keys")
def register(
    request: Request,
    prefix: str = Form(..., max_length=200),
    public_key: str = Form(..., max_length=100),
    _csrf: Identity = Depends(csrf_checked),
    who: Identity = Depends(require("admin", action="key_register")),
) -> RedirectResponse:
    """Register a device's public key out of band (approved at once)."""
    with _ctx(request).db.session() as s:
        try:
            row = register_key(s, prefix.strip(), public_key, state="approved", by=who.username)
        except (EdgeError, ValueError) as err:
            raise HTTPException(400, f"not an Ed25519 public key: {err}") from err
        audit.append(
            s,
            actor=who.username,
            role=who.role,
            action="key_register",
            target=row.prefix,
            detail={"key_id": row.key_id},
        )
        registry = KeyRegistry()
        registry.load(s)
        recheck_results(s, registry, row.prefix, row.key_id)
    return RedirectResponse("/admin/keys", status_code=303)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, who: Identity = Depends(require("admin"))) -> HTMLResponse:
    """Users and their roles."""
    with _ctx(request).db.session() as s:
        rows = list(s.execute(select(User).order_by(User.username)).scalars())
    return page(request, "users.html", users=rows, roles=ROLES, error=None)


@router.post("/admin/users", response_model=None)
def add_user(
    request: Request,
    username: str = Form(..., max_length=64),
    password: str = Form(..., max_length=256),
    role: str = Form(...),
    _csrf: Identity = Depends(csrf_checked),
    who: Identity = Depends(require("admin", action="user_add")),
) -> HTMLResponse | RedirectResponse:
    """Create a user."""
    try:
        with _ctx(request).db.session() as s:
            create_user(s, username, password, role)
            audit.append(
                s,
                actor=who.username,
                role=who.role,
                action="user_add",
                target=username,
                detail={"role": role},
            )
    except AuthError as err:
        with _ctx(request).db.session() as s:
            rows = list(s.execute(select(User).order_by(User.username)).scalars())
        return page(request, "users.html", 400, users=rows, roles=ROLES, error=str(err))
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/disable")
def disable_user(
    request: Request,
    user_id: int,
    _csrf: Identity = Depends(csrf_checked),
    who: Identity = Depends(require("admin", action="user_disable")),
) -> RedirectResponse:
    """Disable a user (their sessions stop working at once)."""
    with _ctx(request).db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            raise HTTPException(404, f"no user {user_id}")
        if user.id == who.user_id:
            raise HTTPException(400, "you cannot disable yourself")
        user.disabled = True
        audit.append(
            s, actor=who.username, role=who.role, action="user_disable", target=user.username
        )
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, who: Identity = Depends(require("supervisor"))) -> HTMLResponse:
    """The audit log, newest first, with the hash chain checked."""
    with _ctx(request).db.session() as s:
        report = verify_chain(s)
        rows = list(
            s.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(500)).scalars()
        )
    return page(request, "audit.html", entries=rows, chain=report)

"""Access control of the web console: every route refuses an anonymous request.

:class:`AuthMiddleware` (pure ASGI) resolves the session cookie before any route runs. A
request without a valid session gets ``401`` on ``/api/`` and ``/events/``, and a redirect
to ``/login`` elsewhere, except for :data:`PUBLIC_PATHS` (the log-in form and the static
files it needs). Routes then ask for a role with :func:`require` and for a CSRF token on
every state-changing request with :func:`csrf_checked`.
"""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any, Final
from urllib.parse import quote

import anyio
from fastapi import Depends, HTTPException, Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from controlroom import audit
from controlroom.auth import Identity, csrf_ok, has_role, identify
from controlroom.web.context import ConsoleContext

COOKIE: Final = "spectra_session"
#: Paths served without a session: the log-in form and its static files.
PUBLIC_PATHS: Final = ("/login",)
PUBLIC_PREFIXES: Final = ("/static/",)
API_PREFIXES: Final = ("/api/", "/events/")


def is_public(path: str) -> bool:
    """Whether *path* is served to anonymous requests."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class AuthMiddleware:
    """Attach the caller's :class:`Identity` to ``scope["state"]``; refuse anonymous ones."""

    def __init__(self, app: ASGIApp, ctx: ConsoleContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = None
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(value.decode("latin-1"))
                except Exception:  # a malformed cookie header is simply no session
                    continue
                if COOKIE in jar:
                    token = jar[COOKIE].value
        identity = await anyio.to_thread.run_sync(self._identify, token) if token else None
        scope.setdefault("state", {})["identity"] = identity
        path = scope.get("path", "")
        if identity is None and not is_public(path):
            if path.startswith(API_PREFIXES):
                response: Any = JSONResponse({"detail": "log in first"}, status_code=401)
            else:
                response = RedirectResponse(f"/login?next={quote(path)}", status_code=303)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _identify(self, token: str) -> Identity | None:
        with self.ctx.db.session() as s:
            return identify(s, token)


def current(request: Request) -> Identity:
    """The logged-in identity (the middleware guarantees one on non-public routes)."""
    identity = getattr(request.state, "identity", None)
    if identity is None:
        raise HTTPException(401, "log in first")
    return identity


def require(role: str, action: str | None = None) -> Callable[[Request], Identity]:
    """A dependency: the caller must have at least *role*; a refusal of a named *action* is
    written to the audit log."""

    def dependency(request: Request) -> Identity:
        who = current(request)
        if not has_role(who.role, role):
            if action is not None:
                ctx: ConsoleContext = request.app.state.ctx
                with ctx.db.session() as s:
                    audit.append(
                        s,
                        actor=who.username,
                        role=who.role,
                        action=action,
                        target=request.url.path,
                        outcome="denied",
                        detail={"needs": role},
                    )
            raise HTTPException(403, f"{action or 'this'} needs the {role} role")
        return who

    return dependency


async def csrf_checked(request: Request, who: Identity = Depends(current)) -> Identity:
    """A dependency for state-changing routes: the session's CSRF token must come along, as
    the ``X-CSRF-Token`` header (htmx, API) or the ``csrf_token`` form field."""
    presented = request.headers.get("x-csrf-token")
    if presented is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        presented = value if isinstance(value, str) else None
    if not csrf_ok(who, presented):
        raise HTTPException(403, "missing or wrong CSRF token")
    return who

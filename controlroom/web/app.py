"""The web console's FastAPI app: pages, JSON API, live feed, behind one log-in.

``create_app(ctx)`` builds it; ``controlroom.service`` runs it under uvicorn beside the
ingester. Routes: ``pages`` (HTML), ``admin`` (keys, users, audit), ``api`` (JSON under
``/api/``), ``events`` (server-sent events). :mod:`controlroom.web.security` guards them all.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import Response
from starlette.routing import Mount

from controlroom.web import admin, api, events, pages
from controlroom.web.context import ConsoleContext
from controlroom.web.security import AuthMiddleware
from controlroom.web.templating import templates
from controlroom.web.vendor import STATIC


def create_app(ctx: ConsoleContext) -> FastAPI:
    """The console app over *ctx*."""
    app = FastAPI(
        title="spectra-edge control room",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ctx = ctx
    app.add_middleware(AuthMiddleware, ctx=ctx)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (pages, admin, api, events):
        app.include_router(module.router)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith(("/api/", "/events/")) or request.headers.get("hx-request"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return HTMLResponse(
            _render_error(templates, request, exc.status_code, str(exc.detail)),
            status_code=exc.status_code,
        )

    return app


def _render_error(t: Jinja2Templates, request: Request, status: int, detail: str) -> str:
    return t.get_template("error.html").render(
        request=request, who=getattr(request.state, "identity", None), status=status, detail=detail
    )


def route_table(app: FastAPI) -> list[tuple[str, frozenset[str]]]:
    """Every ``(path, methods)`` the app serves, through included routers; mounts have no
    methods. Tests use it so that no route escapes the access-control checks."""
    out: list[tuple[str, frozenset[str]]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:  # FastAPI >= 0.120 keeps included routers as such
                walk(list(inner.routes), prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute):
                out.append((prefix + route.path, frozenset(route.methods or ())))
            elif isinstance(route, Mount):
                out.append((prefix + route.path, frozenset()))
            else:
                raise TypeError(f"route of unknown type {route!r}")

    walk(list(app.routes), "")
    return out

"""The Jinja2 templates and the helpers every page uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from controlroom.auth import has_role
from controlroom.web.vendor import sri

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
templates.env.globals.update(sri=sri, has_role=has_role)


def page(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Render template *name* with the caller's identity as ``who``."""
    values.setdefault("who", getattr(request.state, "identity", None))
    return templates.TemplateResponse(request, name, values, status_code=status_code)

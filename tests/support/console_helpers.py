"""Helpers for web-console tests: users, a logged-in HTTP client."""

from __future__ import annotations

import re
from typing import Any

from controlroom.auth import create_user
from controlroom.db import Database

PASSWORD = "correct horse battery"
ROLES = ("viewer", "operator", "supervisor", "admin")


def add_users(db: Database) -> None:
    """One user per role, named after it, all with :data:`PASSWORD`."""
    with db.session() as s:
        for role in ROLES:
            create_user(s, role, PASSWORD, role)


def login(client: Any, username: str, password: str = PASSWORD) -> str:
    """Log *client* (starlette TestClient or httpx) in; returns the session's CSRF token."""
    r = client.post(
        "/login",
        data={"username": username, "password": password, "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    token = client.get("/api/session").json()["csrf_token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{20,}", token)
    return str(token)

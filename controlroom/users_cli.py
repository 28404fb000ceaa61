"""Creating console users from the command line (the first admin, a forgotten password)."""

from __future__ import annotations

from controlroom import audit
from controlroom.auth import create_user
from controlroom.db import open_database


def add_user(db_url: str, username: str, password: str, role: str) -> None:
    """Add a user to the console database at *db_url* (migrating it first); audited."""
    db = open_database(db_url)
    try:
        with db.session() as s:
            create_user(s, username, password, role)
            audit.append(
                s, actor="command line", action="user_add", target=username, detail={"role": role}
            )
    finally:
        db.close()

"""Alembic environment: runs on the connection :func:`controlroom.db.migrate` hands over."""

from __future__ import annotations

from alembic import context

from controlroom.db.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through controlroom.db.migrate
    raise RuntimeError("run migrations through controlroom.db.migrate(url)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

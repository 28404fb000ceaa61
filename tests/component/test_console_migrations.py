"""The Alembic migrations build exactly the schema the SQLAlchemy models describe (SQLite and
PostgreSQL): a model changed without a migration, or a migration that drifts from the models,
fails here rather than on a deployed console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from console_db import database_url

from controlroom.db import create_db_engine, migrate
from controlroom.db.schema import Base


def drift(url: str, metadata: sa.MetaData) -> list[Any]:
    """Differences between the database at *url*, migrated to head, and *metadata*."""
    engine = create_db_engine(url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
    finally:
        engine.dispose()
    return [d for d in diff if "alembic_version" not in repr(d)]  # alembic's own table


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrated_schema_matches_the_models(kind: str, tmp_path: Path) -> None:
    with database_url(kind, tmp_path) as url:
        diff = drift(url, Base.metadata)
    assert diff == [], "\n".join(repr(d) for d in diff)


def test_the_comparison_sees_a_model_the_migrations_lack(tmp_path: Path) -> None:
    """The check can fail: a column added to a copy of the models shows up as drift."""
    changed = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["alarms"].append_column(sa.Column("escalated_to", sa.String(64)))
    with database_url("sqlite", tmp_path) as url:
        diff = drift(url, changed)
    assert any("escalated_to" in repr(d) for d in diff), diff

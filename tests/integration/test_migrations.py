"""Each service's Alembic history builds exactly its models (`alembic check`), up and down."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from services.followup import MIGRATIONS as FOLLOWUP
from services.intake import MIGRATIONS as INTAKE
from services.routing import MIGRATIONS as ROUTING
from shared.db.migrate import alembic_config, check
from shared.testing.plugin import DatabaseFactory

MIGRATIONS = pytest.mark.parametrize(
    "migrations", [INTAKE, ROUTING, FOLLOWUP], ids=["intake", "routing", "followup"]
)


@MIGRATIONS
def test_migrations_match_the_models(
    database_factory: DatabaseFactory, backend: str, migrations: Path
) -> None:
    url = database_factory.create(migrations, backend)
    check(migrations, url)  # raises when a model change has no migration


@MIGRATIONS
def test_migrations_downgrade_to_nothing_and_back(
    database_factory: DatabaseFactory, backend: str, migrations: Path
) -> None:
    url = database_factory.create(migrations, backend)
    cfg = alembic_config(migrations, url)
    command.downgrade(cfg, "base")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    assert all(t.startswith("alembic_version") for t in inspect(engine).get_table_names())
    engine.dispose()
    command.upgrade(cfg, "head")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    assert {"outbox", "inbox"} <= set(inspect(engine).get_table_names())
    engine.dispose()


@MIGRATIONS
@pytest.mark.parametrize("table", ["outbox", "inbox"])
def test_bus_tables_are_in_the_history(
    database_factory: DatabaseFactory, backend: str, table: str, migrations: Path
) -> None:
    url = database_factory.create(migrations, backend)
    engine = create_engine(url)
    assert table in inspect(engine).get_table_names()
    engine.dispose()

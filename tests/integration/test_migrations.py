"""Each service's Alembic history builds exactly its models (`alembic check`), up and down."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from services.intake import MIGRATIONS
from shared.db.migrate import alembic_config, check
from shared.testing.plugin import DatabaseFactory


def test_intake_migrations_match_the_models(
    database_factory: DatabaseFactory, backend: str
) -> None:
    url = database_factory.create(MIGRATIONS, backend)
    check(MIGRATIONS, url)  # raises when a model change has no migration


def test_intake_migrations_downgrade_to_nothing_and_back(
    database_factory: DatabaseFactory, backend: str
) -> None:
    url = database_factory.create(MIGRATIONS, backend)
    cfg = alembic_config(MIGRATIONS, url)
    command.downgrade(cfg, "base")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    assert set(inspect(engine).get_table_names()) <= {"alembic_version_intake"}
    engine.dispose()
    command.upgrade(cfg, "head")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    assert {"complaints", "customers", "outbox", "inbox"} <= set(inspect(engine).get_table_names())
    engine.dispose()


@pytest.mark.parametrize("table", ["outbox", "inbox"])
def test_bus_tables_are_in_the_history(
    database_factory: DatabaseFactory, backend: str, table: str
) -> None:
    url = database_factory.create(MIGRATIONS, backend)
    engine = create_engine(url)
    assert table in inspect(engine).get_table_names()
    engine.dispose()

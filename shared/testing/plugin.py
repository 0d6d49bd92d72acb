"""pytest plugin: a Tansu broker per session, migrated SQLite/PostgreSQL databases per test.

Enable with `pytest_plugins = ["shared.testing.plugin"]`. With CI=true an unreachable
PostgreSQL fails the run instead of skipping its tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from shared.db.migrate import upgrade
from shared.testing.broker import TansuBroker

PG_ADMIN_URL = os.environ.get(
    "CLOSELOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "postgresql")


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


class DatabaseFactory:
    """Builds each database by running the service's migrations once, then clones it per test."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._templates: dict[tuple[Path, str], str] = {}
        self._created: list[str] = []
        self._pg_error: str | bool | None = False  # False = not probed yet

    def _require_pg(self) -> None:
        if self._pg_error is False:
            self._pg_error = _pg_reachable()
        if self._pg_error:
            msg = f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {self._pg_error}"
            if os.environ.get("CI") == "true":
                pytest.fail(msg + " (CI=true: PostgreSQL tests are mandatory)", pytrace=False)
            pytest.skip(msg)

    def _admin(self) -> Engine:
        return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def _pg_url(self, name: str) -> str:
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def _template(self, migrations: Path, backend: str) -> str:
        key = (migrations, backend)
        if key not in self._templates:
            tag = f"{migrations.parent.name}_{uuid.uuid4().hex[:8]}"
            if backend == "sqlite":
                path = self._workdir / f"template_{tag}.db"
                upgrade(migrations, f"sqlite:///{path}")
                self._templates[key] = str(path)
            else:
                name = f"cl_tpl_{tag}"
                engine = self._admin()
                with engine.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                engine.dispose()
                self._created.append(name)
                upgrade(migrations, self._pg_url(name))
                self._templates[key] = name
        return self._templates[key]

    def create(self, migrations: Path, backend: str) -> str:
        """A fresh, migrated database URL for one test."""
        if backend == "postgresql":
            self._require_pg()
        template = self._template(migrations, backend)
        if backend == "sqlite":
            path = self._workdir / f"{uuid.uuid4().hex}.db"
            shutil.copyfile(template, path)
            return f"sqlite:///{path}"
        name = f"cl_{uuid.uuid4().hex[:16]}"
        engine = self._admin()
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        engine.dispose()
        self._created.append(name)
        return self._pg_url(name)

    def drop_all(self) -> None:
        if not any(True for _ in self._created):
            return
        engine = self._admin()
        with engine.connect() as conn:
            for name in reversed(self._created):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """One in-memory broker for the session; tests isolate themselves with a topic prefix."""
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with TansuBroker(log_path=log) as b:
        yield b


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test's own, so tests sharing the broker never see each other."""
    return f"t{uuid.uuid4().hex[:12]}."

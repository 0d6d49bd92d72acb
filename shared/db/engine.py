"""Engine and session factories for SQLite (WAL, foreign keys) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, pool_size: int = 10, echo: bool = False, pooled: bool = True) -> Engine:
    """An engine configured for the URL's database; `pooled=False` keeps no connections."""
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if not pooled:
        kwargs["poolclass"] = NullPool
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    if pooled:
        # No pre-ping: it costs a round trip per checkout on the hot path. Connections are
        # recycled instead, and a connection that died is discarded on its first error.
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself so `BEGIN IMMEDIATE` can take the write lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers queue on the database lock at BEGIN instead of failing on upgrade (SQLITE_BUSY).
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"

"""The floor: the least an intake endpoint can do, to compare the real service against.

One `POST /floor/complaints` that validates the body with the service's own Pydantic model
(`ComplaintIn`), writes one complaint row and one outbox row in one transaction with the raw
driver, and answers 201. No auth, no ORM, no repeat counting, no timeline, no middleware.

- PostgreSQL: asyncpg pool, `async def` endpoint.
- SQLite: sqlite3, one connection per worker thread (WAL, `synchronous=NORMAL`,
  `BEGIN IMMEDIATE`, as the service configures it), sync `def` endpoint.

It uses its own tables (`floor_complaints`, `floor_outbox`), created on start-up when missing.
Run it with `uvicorn --factory bench.floor:create_app`; `BENCH_FLOOR_URL` names the database
(`postgresql://...` or `sqlite:///path`), `BENCH_FLOOR_POOL` the asyncpg pool size (10).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.intake.schemas import ComplaintIn

URL_ENV = "BENCH_FLOOR_URL"
POOL_ENV = "BENCH_FLOOR_POOL"
PATH = "/floor/complaints"
CLIENT_ID = "bench"
TOPIC = "closeloop.complaints"
EVENT_TYPE = "closeloop.complaint.received.v1"

PG_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS floor_complaints (
        id uuid PRIMARY KEY,
        client_id text NOT NULL,
        customer_ref text NOT NULL,
        external_ref text,
        channel text NOT NULL,
        summary text NOT NULL,
        description text,
        product text,
        category text,
        touchpoint text,
        severity text NOT NULL,
        language text,
        occurred_at timestamptz,
        received_at timestamptz NOT NULL,
        metadata jsonb NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS floor_outbox (
        seq bigserial PRIMARY KEY,
        event_id text NOT NULL UNIQUE,
        topic text NOT NULL,
        key text,
        event_type text NOT NULL,
        payload text NOT NULL,
        created_at timestamptz NOT NULL,
        sent_at timestamptz
    )
    """,
)

SQLITE_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS floor_complaints (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        customer_ref TEXT NOT NULL,
        external_ref TEXT,
        channel TEXT NOT NULL,
        summary TEXT NOT NULL,
        description TEXT,
        product TEXT,
        category TEXT,
        touchpoint TEXT,
        severity TEXT NOT NULL,
        language TEXT,
        occurred_at TEXT,
        received_at TEXT NOT NULL,
        metadata TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS floor_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        key TEXT,
        event_type TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        sent_at TEXT
    )
    """,
)

PG_INSERT_COMPLAINT = """
    INSERT INTO floor_complaints (id, client_id, customer_ref, external_ref, channel, summary,
        description, product, category, touchpoint, severity, language, occurred_at,
        received_at, metadata)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
"""
PG_INSERT_OUTBOX = """
    INSERT INTO floor_outbox (event_id, topic, key, event_type, payload, created_at)
    VALUES ($1, $2, $3, $4, $5, $6)
"""


def _sqlite_sql(pg_sql: str, n: int) -> str:
    sql = pg_sql
    for i in range(n, 0, -1):  # $15 before $1
        sql = sql.replace(f"${i}", "?")
    return sql


SQLITE_INSERT_COMPLAINT = _sqlite_sql(PG_INSERT_COMPLAINT, 15)
SQLITE_INSERT_OUTBOX = _sqlite_sql(PG_INSERT_OUTBOX, 6)


def _payload(complaint_id: uuid.UUID, body: ComplaintIn, now: datetime) -> str:
    """The event body, about what the service puts in its outbox."""
    data: dict[str, Any] = {
        "complaint_id": str(complaint_id),
        "client_id": CLIENT_ID,
        "received_at": now.isoformat(),
        **body.model_dump(mode="json"),
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _created(complaint_id: uuid.UUID, body: ComplaintIn) -> JSONResponse:
    return JSONResponse(
        {"id": str(complaint_id), "status": "received", "customer": {"ref": body.customer.ref}},
        status_code=201,
        headers={"Location": f"{PATH}/{complaint_id}"},
    )


def _complaint_values(complaint_id: uuid.UUID, body: ComplaintIn, now: datetime) -> tuple[Any, ...]:
    return (
        complaint_id,
        CLIENT_ID,
        body.customer.ref,
        body.external_ref,
        body.channel,
        body.summary,
        body.description,
        body.product,
        body.category,
        body.touchpoint,
        body.severity,
        body.language,
        body.occurred_at,
        now,
        json.dumps(body.metadata, separators=(",", ":"), ensure_ascii=False),
    )


def _postgres_app(url: str, pool_size: int) -> FastAPI:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(url, min_size=pool_size, max_size=pool_size)
        async with pool.acquire() as conn:
            for ddl in PG_SCHEMA:
                await conn.execute(ddl)
        state["pool"] = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="intake floor (asyncpg)", lifespan=lifespan)

    @app.post(PATH, status_code=201)
    async def post_complaint(body: ComplaintIn) -> JSONResponse:
        complaint_id = uuid.uuid4()
        now = datetime.now(UTC)
        async with state["pool"].acquire() as conn, conn.transaction():
            await conn.execute(PG_INSERT_COMPLAINT, *_complaint_values(complaint_id, body, now))
            await conn.execute(
                PG_INSERT_OUTBOX,
                str(uuid.uuid4()),
                TOPIC,
                body.customer.ref,
                EVENT_TYPE,
                _payload(complaint_id, body, now),
                now,
            )
        return _created(complaint_id, body)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _sqlite_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _sqlite_app(path: str) -> FastAPI:
    local = threading.local()

    def connection() -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = _sqlite_connect(path)
            local.conn = conn
        return conn

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        conn = _sqlite_connect(path)
        for ddl in SQLITE_SCHEMA:
            conn.execute(ddl)
        conn.close()
        yield

    app = FastAPI(title="intake floor (sqlite3)", lifespan=lifespan)

    @app.post(PATH, status_code=201)
    def post_complaint(body: ComplaintIn) -> JSONResponse:
        complaint_id = uuid.uuid4()
        now = datetime.now(UTC)
        values = list(_complaint_values(complaint_id, body, now))
        values[0] = str(complaint_id)
        values[12] = body.occurred_at.isoformat() if body.occurred_at else None
        values[13] = now.isoformat()
        conn = connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(SQLITE_INSERT_COMPLAINT, values)
            conn.execute(
                SQLITE_INSERT_OUTBOX,
                (
                    str(uuid.uuid4()),
                    TOPIC,
                    body.customer.ref,
                    EVENT_TYPE,
                    _payload(complaint_id, body, now),
                    now.isoformat(),
                ),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return _created(complaint_id, body)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def create_app() -> FastAPI:
    """The floor app for `BENCH_FLOOR_URL` (uvicorn `--factory bench.floor:create_app`)."""
    url = os.environ[URL_ENV]
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres_app(url, int(os.environ.get(POOL_ENV, "10")))
    if url.startswith("sqlite:///"):
        return _sqlite_app(url.removeprefix("sqlite:///"))
    raise ValueError(f"{URL_ENV} must be postgresql://... or sqlite:///path, got {url!r}")

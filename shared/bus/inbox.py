"""Inbox: the events a consumer group has handled, recorded in the same transaction as effects."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shared.db.types import UTCDateTime


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer_group", String(128), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(255), nullable=False),
        Column("handled_at", UTCDateTime, nullable=False),
    )


def record(
    session: Session, table: Table, group: str, event_id: str, event_type: str, at: datetime
) -> bool:
    """Insert the inbox row; False when this group already handled the event."""
    values = {
        "consumer_group": group,
        "event_id": event_id,
        "event_type": event_type,
        "handled_at": at,
    }
    dialect = session.get_bind().dialect.name
    ins = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    # RETURNING, not rowcount: psycopg 3 reports -1 for INSERT ... ON CONFLICT DO NOTHING.
    stmt = ins.values(**values).on_conflict_do_nothing().returning(table.c.event_id)
    return session.execute(stmt).first() is not None

"""Transactional outbox: events are rows written in the same transaction as the state change."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
)
from sqlalchemy.orm import Session

from shared.clock import Clock
from shared.db.types import JSONType, UTCDateTime
from shared.events.envelope import Envelope
from shared.events.models import EventModel

# SQLite only auto-increments an INTEGER PRIMARY KEY.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table in a service's metadata; `seq` gives the publication order."""
    table = Table(
        "outbox",
        metadata,
        Column("seq", _SEQ, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", String(255), nullable=False),
        Column("key", String(255), nullable=True),
        Column("event_type", String(255), nullable=False),
        Column("headers", JSONType, nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("sent_at", UTCDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
    )
    Index(
        "ix_outbox_unsent",
        table.c.seq,
        postgresql_where=table.c.sent_at.is_(None),
        sqlite_where=table.c.sent_at.is_(None),
    )
    Index("ix_outbox_sent_at", table.c.sent_at)
    return table


class OutboxWriter:
    """Adds events to the outbox inside the caller's transaction (never talks to Kafka)."""

    def __init__(self, session: Session, table: Table, source: str, clock: Clock) -> None:
        self._session = session
        self._table = table
        self._source = source
        self._clock = clock

    def add(
        self,
        event: EventModel,
        *,
        topic: str,
        key: str | uuid.UUID,
        subject: str | None = None,
        correlationid: str | uuid.UUID | None = None,
        causationid: str | None = None,
    ) -> Envelope:
        """Queue one event for publication once the transaction commits."""
        envelope = self.envelope(
            event, key=key, subject=subject, correlationid=correlationid, causationid=causationid
        )
        self.add_envelope(envelope, topic)
        return envelope

    def envelope(
        self,
        event: EventModel,
        *,
        key: str | uuid.UUID,
        subject: str | None = None,
        correlationid: str | uuid.UUID | None = None,
        causationid: str | None = None,
    ) -> Envelope:
        """The envelope `add` would queue, for callers that queue many with `add_many`."""
        return Envelope.new(
            source=self._source,
            data=event,
            time=self._clock.now(),
            key=str(key),
            subject=subject,
            correlationid=str(correlationid) if correlationid is not None else None,
            causationid=causationid,
        )

    def add_envelope(self, envelope: Envelope, topic: str) -> None:
        self.add_many([(envelope, topic)])

    def add_many(self, items: list[tuple[Envelope, str]]) -> None:
        """Queue several envelopes with one INSERT (batch intake)."""
        if not items:
            return
        now = self._clock.now()
        self._session.execute(
            insert(self._table),
            [
                {
                    "event_id": env.id,
                    "topic": topic,
                    "key": env.key,
                    "event_type": env.type,
                    "headers": [[k, v.decode()] for k, v in env.headers()],
                    "payload": json.dumps(env.data, separators=(",", ":"), ensure_ascii=False),
                    "created_at": now,
                    "attempts": 0,
                }
                for env, topic in items
            ],
        )

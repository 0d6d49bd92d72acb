"""Followup tables: loops, the complaints joined to them, promises, timeline and notes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.bus.inbox import inbox_table
from shared.bus.outbox import outbox_table
from shared.db.base import new_metadata
from shared.db.types import JSONType, UTCDateTime


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType}


OUTBOX = outbox_table(Base.metadata)
INBOX = inbox_table(Base.metadata)


class Loop(Base):
    """The follow-up unit: one customer, one journey, one owner, any number of complaints."""

    __tablename__ = "loops"
    __table_args__ = (
        Index("ix_loops_customer_journey", "customer_id", "journey_key", "status"),
        Index("ix_loops_owner_status", "owner_key", "status"),
        Index("ix_loops_journey_status", "journey_key", "status"),
        Index("ix_loops_next_due_at", "next_due_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    complaint_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # the complaint that opened it
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    journey_key: Mapped[str] = mapped_column(String(100))
    journey_name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(100))
    owner_key: Mapped[str] = mapped_column(String(100))
    owner_name: Mapped[str] = mapped_column(String(200))
    journey_manager: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(10))
    contacts: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    resolution_code: Mapped[str | None] = mapped_column(String(100))
    root_cause: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    # Earliest due time of a promise still to keep; the queue is sorted by it.
    next_due_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class LoopComplaint(Base):
    """A complaint belongs to exactly one loop (the first opened it, repeats joined it)."""

    __tablename__ = "loop_complaints"

    complaint_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    loop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loops.id"), index=True)
    joined_at: Mapped[datetime]


class Promise(Base):
    __tablename__ = "promises"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    loop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loops.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    made_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    kept_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)  # of the last renegotiation or cancellation


class TimelineEntry(Base):
    __tablename__ = "timeline"
    __table_args__ = (Index("ix_timeline_loop_at", "loop_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    loop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loops.id"))
    at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict[str, Any]]
    by: Mapped[str | None] = mapped_column(String(200))


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    loop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loops.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]

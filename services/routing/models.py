"""Routing tables: catalog versions, availability, assignments (with the workload read model)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, Uuid
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


class CatalogVersion(Base):
    """Every apply of the catalog is a new version; assignments record the one they used."""

    __tablename__ = "catalog_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]]
    applied_at: Mapped[datetime]
    applied_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str | None] = mapped_column(Text)


class OwnerAvailability(Base):
    """Operational, not versioned with the catalog: who is away, until when, and who stands in."""

    __tablename__ = "owner_availability"

    owner_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    away_from: Mapped[datetime | None]
    away_until: Mapped[datetime | None]
    delegate: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(200))


class Assignment(Base):
    """Complaint -> journey, stage, owner, with why. `open` + `weight` feed the workload model."""

    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_owner_open", "owner_key", "open"),
        Index("ix_assignments_customer_journey", "customer_id", "journey_key", "open"),
        Index("ix_assignments_assigned_at", "assigned_at"),
    )

    complaint_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client_id: Mapped[str] = mapped_column(String(200))
    journey_key: Mapped[str] = mapped_column(String(100))
    journey_name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(100))
    owner_key: Mapped[str] = mapped_column(String(100))
    owner_name: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(10))
    rule_key: Mapped[str | None] = mapped_column(String(100))
    catalog_version: Mapped[int] = mapped_column(Integer)
    explanation: Mapped[dict[str, Any]]
    facts: Mapped[dict[str, Any]]  # the complaint as routing saw it (dry-runs replay these)
    assigned_at: Mapped[datetime]
    open: Mapped[bool] = mapped_column(Boolean, default=True)
    weight: Mapped[float] = mapped_column(Float)
    loop_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    history: Mapped[dict[str, Any]]  # {"reassignments": [...]}


class RoundRobinCursor(Base):
    __tablename__ = "round_robin_cursors"

    journey_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_owner: Mapped[str] = mapped_column(String(100))

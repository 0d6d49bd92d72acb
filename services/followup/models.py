"""Followup tables: loops and their promises, timeline and notes; the SLA and escalation
configuration; and the scheduler's due targets, alerts and alert deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
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
        # Journey metrics read loops opened, and closed, within a period.
        Index("ix_loops_journey_opened", "journey_key", "opened_at"),
        Index("ix_loops_closed_at", "closed_at"),
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
    # SLA clocks count from here: the opening, or the latest reopening.
    sla_started_at: Mapped[datetime | None]
    # Waiting on the customer stops the SLA clock: the open pause, and every closed one.
    paused_since: Mapped[datetime | None]
    pauses: Mapped[list[list[str]]] = mapped_column(JSONType, default=list)
    confirmed_at: Mapped[datetime | None]
    csat: Mapped[int | None] = mapped_column(Integer)  # the customer's score after closure
    updated_at: Mapped[datetime]


class LoopComplaint(Base):
    """A complaint belongs to exactly one loop (the first opened it, repeats joined it)."""

    __tablename__ = "loop_complaints"

    complaint_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    loop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loops.id"), index=True)
    joined_at: Mapped[datetime]


class Promise(Base):
    __tablename__ = "promises"
    # The promise-kept rate reads promises due within a period.
    __table_args__ = (Index("ix_promises_due_at", "due_at"),)

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


# --- configuration: calendars, SLA policies, ladders, channels, the resolution taxonomy -------


class CalendarRow(Base):
    """Business hours in a time zone; `weekly` maps "0".."6" (Monday first) to [opens, closes]."""

    __tablename__ = "calendars"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tz: Mapped[str] = mapped_column(String(64))
    weekly: Mapped[dict[str, Any]]
    country: Mapped[str | None] = mapped_column(String(10))
    subdivision: Mapped[str | None] = mapped_column(String(10))
    holidays: Mapped[list[str]] = mapped_column(JSONType)  # ISO dates off work
    working_days: Mapped[list[str]] = mapped_column(JSONType)  # ISO dates worked after all
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class SlaPolicyRow(Base):
    """Business minutes allowed per journey x severity; "*" matches any journey or severity."""

    __tablename__ = "sla_policies"
    __table_args__ = (UniqueConstraint("journey_key", "severity"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    journey_key: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(10))
    calendar_key: Mapped[str] = mapped_column(ForeignKey("calendars.key"))
    acknowledge_minutes: Mapped[int] = mapped_column(Integer)
    first_promise_minutes: Mapped[int] = mapped_column(Integer)
    resolve_minutes: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class LadderRow(Base):
    """Escalation levels of a journey ("*" = every journey without its own), sorted by offset.

    A level is {"offset_minutes", "audience", "channel"}; audience is "owner", "journey_manager",
    "person:<key>" or "role:<name>", channel a notification channel key.
    """

    __tablename__ = "escalation_ladders"

    journey_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    levels: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class ChannelRow(Base):
    """Where alerts go: a signed webhook, an SMTP server or a Slack-compatible chat webhook."""

    __tablename__ = "notification_channels"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]]
    enabled: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class TaxonomyEntry(Base):
    """Allowed resolution codes and root causes (kind), so reports group like with like."""

    __tablename__ = "taxonomy"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))


# --- the scheduler's work: due targets, alerts and their deliveries ---------------------------


class DueTarget(Base):
    """One thing that falls due on a loop: a promise or an SLA target, with its ladder progress.

    `next_fire_at` is the next instant the scheduler must look at it (the due time itself, or the
    next unfired ladder level); None when nothing is pending. The scheduler's cost follows the
    partial index on it, so it grows with what is due, not with what is open.
    """

    __tablename__ = "due_targets"
    __table_args__ = (
        UniqueConstraint("loop_id", "target"),
        Index(
            "ix_due_targets_next_fire_at",
            "next_fire_at",
            postgresql_where=text("next_fire_at IS NOT NULL"),
            sqlite_where=text("next_fire_at IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    loop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loops.id"), index=True)
    target: Mapped[str] = mapped_column(String(60))  # "promise:<id>" or "sla:<name>"
    promise_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    due_at: Mapped[datetime | None]  # None while the loop waits on the customer
    breached: Mapped[bool] = mapped_column(Boolean)  # the due time passed and was handled
    next_level: Mapped[int] = mapped_column(Integer)  # ladder levels below it have fired
    next_fire_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]  # kept, cancelled, met or otherwise no longer owed
    updated_at: Mapped[datetime]


class Alert(Base):
    """A ladder level that fired for one target and due time; unique, so never fired twice."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("target_id", "due_at", "level"),
        Index("ix_alerts_journey_fired", "journey_key", "fired_at"),
        Index("ix_alerts_owner_fired", "owner_key", "fired_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    target_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("due_targets.id"))
    loop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loops.id"), index=True)
    complaint_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    journey_key: Mapped[str] = mapped_column(String(100))
    owner_key: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(60))
    promise_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    due_at: Mapped[datetime]
    level: Mapped[int] = mapped_column(Integer)  # 1-based, as people count
    offset_minutes: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # reminder | overdue | sla_breach
    audience: Mapped[str] = mapped_column(String(200))  # resolved, e.g. "manager:mgr-cards"
    channel: Mapped[str] = mapped_column(String(100))
    fired_at: Mapped[datetime]
    late_by_seconds: Mapped[int] = mapped_column(Integer)
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(200))


class Delivery(Base):
    """Sending one alert over its channel; retried with back-off until sent or given up."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        Index(
            "ix_alert_deliveries_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("next_attempt_at IS NOT NULL"),
            sqlite_where=text("next_attempt_at IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id"), index=True)
    channel_key: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class DeliveryAttempt(Base):
    __tablename__ = "alert_delivery_attempts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_deliveries.id"), index=True)
    at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class ComplaintCopy(Base):
    """What an owner needs to see of a complaint, copied from `complaint.received` (intake owns
    the complaint; followup keeps this copy for the console and the queue's search)."""

    __tablename__ = "complaint_copies"
    __table_args__ = (
        Index("ix_complaint_copies_customer_ref", "customer_ref"),
        Index("ix_complaint_copies_external_ref", "external_ref"),
    )

    complaint_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    customer_ref: Mapped[str] = mapped_column(String(200))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    customer_tier: Mapped[str | None] = mapped_column(String(50))
    channel: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    external_ref: Mapped[str | None] = mapped_column(String(200))
    product: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(10))
    received_at: Mapped[datetime]
    contacts_30d: Mapped[int] = mapped_column(Integer)

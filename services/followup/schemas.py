"""Request and response bodies of the followup API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PromiseIn(Strict):
    text: str = Field(min_length=1, max_length=2000)
    due_at: AwareDatetime = Field(description="When the promise is due; must be in the future.")


class RenegotiateIn(Strict):
    due_at: AwareDatetime = Field(description="The new due time; must be in the future.")
    reason: str = Field(min_length=1, max_length=2000)


class CancelIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class NoteIn(Strict):
    text: str = Field(min_length=1, max_length=10_000)


class ResolveIn(Strict):
    resolution_code: str = Field(min_length=1, max_length=100)
    root_cause: str = Field(min_length=1, max_length=2000)
    summary: str = Field(min_length=1, max_length=10_000)


class PromiseOut(BaseModel):
    id: uuid.UUID
    loop_id: uuid.UUID
    text: str
    due_at: datetime
    status: str
    made_by: str
    created_at: datetime
    kept_at: datetime | None = None
    reason: str | None = None


class TimelineOut(BaseModel):
    at: datetime
    type: str
    detail: dict[str, Any]
    by: str | None = None


class NoteOut(BaseModel):
    id: uuid.UUID
    loop_id: uuid.UUID
    text: str
    by: str
    at: datetime


class LoopSummary(BaseModel):
    id: uuid.UUID
    complaint_id: uuid.UUID
    complaint_ids: list[uuid.UUID]
    customer_id: uuid.UUID
    journey: dict[str, str]
    stage: str
    owner: dict[str, str]
    journey_manager: str | None = None
    status: str
    severity: str
    contacts: int
    opened_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    next_due_at: datetime | None = Field(
        None, description="The earliest promise or SLA target still owed."
    )
    waiting_since: datetime | None = Field(
        None, description="Waiting on the customer since then; the SLA clock is stopped."
    )
    overdue: bool = Field(description="Something still owed (promise or SLA target) is past due.")


class SlaTargetOut(BaseModel):
    target: str = Field(description="acknowledge, first_promise or resolve.")
    due_at: datetime | None = Field(description="None while waiting on the customer.")
    state: str = Field(description="pending, paused, met or missed.")
    settled_at: datetime | None = None


class LoopOut(LoopSummary):
    resolution_code: str | None = None
    root_cause: str | None = None
    summary: str | None = None
    allowed_actions: list[str]
    sla: list[SlaTargetOut]
    promises: list[PromiseOut]
    timeline: list[TimelineOut]
    notes: list[NoteOut]


class LoopPage(BaseModel):
    items: list[LoopSummary]
    next_cursor: str | None = None


class DeliveryOut(BaseModel):
    channel: str
    status: str = Field(description="pending, sent or failed (after the last retry).")
    attempts: int
    last_error: str | None = None
    sent_at: datetime | None = None


class AlertOut(BaseModel):
    id: uuid.UUID
    loop_id: uuid.UUID
    complaint_id: uuid.UUID
    journey: str
    owner: str
    target: str = Field(description='"promise:<id>" or "sla:acknowledge|first_promise|resolve".')
    promise_id: uuid.UUID | None = None
    kind: str = Field(description="reminder (before due), overdue (a promise) or sla_breach.")
    level: int = Field(description="Ladder level, 1 = the earliest.")
    offset_minutes: int
    audience: str
    channel: str
    due_at: datetime
    fired_at: datetime
    late_by_seconds: int = Field(description="How long after the level's time it fired.")
    delivery: DeliveryOut | None = None
    acked_at: datetime | None = None
    acked_by: str | None = None


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None = None


class WaitIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)

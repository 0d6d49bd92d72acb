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
    next_due_at: datetime | None = None
    overdue: bool = Field(description="A promise still to keep is past due.")


class LoopOut(LoopSummary):
    resolution_code: str | None = None
    root_cause: str | None = None
    summary: str | None = None
    allowed_actions: list[str]
    promises: list[PromiseOut]
    timeline: list[TimelineOut]
    notes: list[NoteOut]


class LoopPage(BaseModel):
    items: list[LoopSummary]
    next_cursor: str | None = None

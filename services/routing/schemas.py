"""Request and response bodies of the routing API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Candidate(BaseModel):
    owner: str
    chosen: bool
    reason: str
    open_loops: int
    capacity: int


class Explanation(BaseModel):
    rule: str | None
    rule_reason: str
    owner_reason: str
    candidates: list[Candidate]
    over_capacity: bool = False
    catalog_version: int


class AssignmentOut(BaseModel):
    complaint_id: uuid.UUID
    customer_id: uuid.UUID
    journey: dict[str, str]
    stage: str
    owner: dict[str, str]
    severity: str
    rule: str | None
    catalog_version: int
    explanation: Explanation
    assigned_at: datetime
    open: bool
    loop_id: uuid.UUID | None = None
    reassignments: list[dict[str, Any]] = Field(default_factory=list)


class ReassignIn(Strict):
    owner: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=500)


class HandoverIn(Strict):
    to: str | None = Field(None, max_length=100, description="Default: re-select in each team.")


class HandoverOut(BaseModel):
    moved: list[AssignmentOut]


class AvailabilityIn(Strict):
    away_from: AwareDatetime | None = None
    away_until: AwareDatetime | None = None
    delegate: str | None = Field(None, max_length=100)


class AvailabilityOut(BaseModel):
    owner: str
    away_from: datetime | None = None
    away_until: datetime | None = None
    delegate: str | None = None
    away_now: bool


class CatalogApplied(BaseModel):
    version: int


class DryRunIn(Strict):
    catalog: dict[str, Any] | None = Field(None, description="A whole candidate catalog.")
    rules: list[dict[str, Any]] | None = Field(
        None, description="Or only candidate rules, tried with the current journeys and owners."
    )
    complaints: list[dict[str, Any]] | None = Field(
        None, description="Complaint bodies to route; default: the last N received."
    )
    last: int | None = Field(None, ge=1, le=10_000)

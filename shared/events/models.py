"""One frozen Pydantic model per event type and version: the contract between services.

Additive optional fields keep the version; a breaking change adds `...V2`, registers it and an
upcaster from V1 in `registry.py`, and commits the regenerated schemas.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Channel = Literal["phone", "email", "chat", "social", "web", "survey", "store", "letter", "other"]
Severity = Literal["low", "medium", "high", "critical"]


class EventModel(BaseModel):
    """Base of every event body. Unknown fields are ignored so producers may add fields."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    name: ClassVar[str]
    version: ClassVar[int]

    @classmethod
    def type_name(cls) -> str:
        """The CloudEvents `type`, e.g. `closeloop.complaint.received.v1`."""
        return f"closeloop.{cls.name}.v{cls.version}"

    @property
    def ce_type(self) -> str:
        return self.type_name()


class Ref(BaseModel):
    """A catalog object by key with its display name."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    key: str
    name: str | None = None


class CustomerRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    ref: str
    name: str | None = None
    tier: str | None = None


class RepeatContact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    count_30d: int
    is_repeat: bool


# --- complaints (intake) ---------------------------------------------------------------------


class ComplaintReceivedV1(EventModel):
    name, version = "complaint.received", 1
    complaint_id: uuid.UUID
    client_id: str
    customer_id: uuid.UUID
    customer: CustomerRef
    channel: Channel
    summary: str
    description: str | None = None
    external_ref: str | None = None
    product: str | None = None
    category: str | None = None
    touchpoint: str | None = None
    severity: Severity = "medium"
    language: str | None = None
    occurred_at: AwareDatetime | None = None
    received_at: AwareDatetime
    promised_callback_by: AwareDatetime | None = Field(
        None, description="The front line's promise made during the contact."
    )
    repeat_contact: RepeatContact
    metadata: dict[str, Any] = Field(default_factory=dict)
    redelivery: int = Field(
        0, description="0 first time; >0 when the reconciliation sweep re-emitted it."
    )


class ComplaintConfirmedV1(EventModel):
    name, version = "complaint.confirmed", 1
    complaint_id: uuid.UUID
    client_id: str
    customer_id: uuid.UUID
    resolved: bool
    csat: int | None = Field(None, ge=1, le=5)
    comment: str | None = None
    confirmed_at: AwareDatetime


# --- assignments (routing) -------------------------------------------------------------------


class ComplaintAssignedV1(EventModel):
    name, version = "complaint.assigned", 1
    complaint_id: uuid.UUID
    customer_id: uuid.UUID
    journey: Ref
    stage: str
    owner: Ref
    severity: Severity = "medium"
    rule: str | None = None
    catalog_version: int | None = None
    assigned_at: AwareDatetime
    journey_manager: str | None = Field(None, description="Who hears about this journey's alerts.")
    over_capacity: bool = Field(
        False, description="Every candidate was at capacity; the journey manager is told."
    )
    promised_callback_by: AwareDatetime | None = Field(
        None, description="The front line's promise, carried over from complaint.received."
    )


class ComplaintReassignedV1(EventModel):
    name, version = "complaint.reassigned", 1
    complaint_id: uuid.UUID
    customer_id: uuid.UUID
    journey: Ref
    stage: str
    owner: Ref
    previous_owner: Ref | None = None
    reason: str | None = None
    by: str | None = None
    reassigned_at: AwareDatetime


# --- loops (followup) ------------------------------------------------------------------------


class LoopEvent(EventModel):
    """Fields every loop event carries; `complaint_ids` lists every complaint joined to it."""

    loop_id: uuid.UUID
    complaint_id: uuid.UUID
    customer_id: uuid.UUID
    complaint_ids: list[uuid.UUID] = Field(default_factory=list)
    at: AwareDatetime


class LoopOpenedV1(LoopEvent):
    name, version = "loop.opened", 1
    journey: Ref
    stage: str
    owner: Ref
    severity: Severity = "medium"


class LoopAcknowledgedV1(LoopEvent):
    name, version = "loop.acknowledged", 1
    by: str | None = None


class PromiseMadeV1(LoopEvent):
    name, version = "promise.made", 1
    promise_id: uuid.UUID
    text: str
    due_at: AwareDatetime
    made_by: str | None = None


class PromiseKeptV1(LoopEvent):
    name, version = "promise.kept", 1
    promise_id: uuid.UUID


class PromiseOverdueV1(LoopEvent):
    name, version = "promise.overdue", 1
    promise_id: uuid.UUID
    due_at: AwareDatetime
    late_by_seconds: int = 0


class PromiseRenegotiatedV1(LoopEvent):
    name, version = "promise.renegotiated", 1
    promise_id: uuid.UUID
    due_at: AwareDatetime
    previous_due_at: AwareDatetime | None = None
    reason: str | None = None


class PromiseCancelledV1(LoopEvent):
    name, version = "promise.cancelled", 1
    promise_id: uuid.UUID
    reason: str | None = None


class LoopEscalatedV1(LoopEvent):
    name, version = "loop.escalated", 1
    target: str
    level: int
    audience: str
    late_by_seconds: int = 0


class LoopResolvedV1(LoopEvent):
    name, version = "loop.resolved", 1
    resolution_code: str
    root_cause: str | None = None
    summary: str | None = None
    by: str | None = None


class LoopClosedV1(LoopEvent):
    name, version = "loop.closed", 1
    reason: str | None = None


class LoopReopenedV1(LoopEvent):
    name, version = "loop.reopened", 1
    reason: str | None = None


ALL_EVENTS: tuple[type[EventModel], ...] = (
    ComplaintReceivedV1,
    ComplaintConfirmedV1,
    ComplaintAssignedV1,
    ComplaintReassignedV1,
    LoopOpenedV1,
    LoopAcknowledgedV1,
    PromiseMadeV1,
    PromiseKeptV1,
    PromiseOverdueV1,
    PromiseRenegotiatedV1,
    PromiseCancelledV1,
    LoopEscalatedV1,
    LoopResolvedV1,
    LoopClosedV1,
    LoopReopenedV1,
)

"""Request and response bodies of the intake API."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.events.models import Channel, Severity

MAX_METADATA_BYTES = 4096


class Strict(BaseModel):
    """Unknown fields are rejected with a 422 naming them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerIn(Strict):
    ref: str = Field(min_length=1, max_length=200, description="The caller's customer id.")
    name: str | None = Field(None, max_length=200)
    email: str | None = Field(
        None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="Contact e-mail."
    )
    phone: str | None = Field(None, max_length=40, pattern=r"^\+?[0-9 ()./-]{5,40}$")
    tier: str | None = Field(None, max_length=50)


class ComplaintIn(Strict):
    channel: Channel
    customer: CustomerIn
    summary: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=20_000)
    external_ref: str | None = Field(None, min_length=1, max_length=200)
    product: str | None = Field(None, max_length=200)
    category: str | None = Field(None, max_length=200)
    touchpoint: str | None = Field(None, max_length=200)
    severity: Severity = "medium"
    language: str | None = Field(
        None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="BCP 47 tag, e.g. en-GB."
    )
    occurred_at: AwareDatetime | None = None
    promised_callback_by: AwareDatetime | None = Field(
        None, description="A callback promised by the front line during the contact."
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="At most 4 KB as JSON.")

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
        return value


class BatchIn(Strict):
    # Items are validated one by one in the service so that one bad item fails alone.
    items: list[dict[str, Any]] = Field(min_length=1)


class RepeatContactOut(BaseModel):
    count_30d: int
    is_repeat: bool


class CustomerOut(BaseModel):
    ref: str
    name: str | None = None
    tier: str | None = None


class JourneyOut(BaseModel):
    key: str
    name: str | None = None
    stage: str | None = None


class OwnerOut(BaseModel):
    key: str
    name: str | None = None


class PromiseOut(BaseModel):
    id: uuid.UUID
    text: str
    due_at: datetime
    status: str


class TimelineOut(BaseModel):
    at: datetime
    type: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ComplaintOut(BaseModel):
    id: uuid.UUID
    status: str
    customer_id: uuid.UUID
    customer: CustomerOut
    channel: str
    summary: str
    description: str | None = None
    external_ref: str | None = None
    product: str | None = None
    category: str | None = None
    touchpoint: str | None = None
    severity: str
    language: str | None = None
    occurred_at: datetime | None = None
    received_at: datetime
    promised_callback_by: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    repeat_contact: RepeatContactOut
    journey: JourneyOut | None = None
    owner: OwnerOut | None = None
    loop_id: uuid.UUID | None = None
    promises: list[PromiseOut] = Field(default_factory=list)
    timeline: list[TimelineOut] | None = None
    updated_at: datetime


class ComplaintPage(BaseModel):
    items: list[ComplaintOut]
    next_cursor: str | None = None


class BatchItemResult(BaseModel):
    index: int
    status: int
    id: uuid.UUID | None = None
    location: str | None = None
    problem: dict[str, Any] | None = None


class BatchOut(BaseModel):
    accepted: int
    rejected: int
    results: list[BatchItemResult]


class ConfirmationIn(Strict):
    resolved: bool
    csat: int | None = Field(None, ge=1, le=5)
    comment: str | None = Field(None, max_length=2000)


class ConfirmationOut(BaseModel):
    id: uuid.UUID
    complaint_id: uuid.UUID
    resolved: bool
    csat: int | None = None
    comment: str | None = None
    confirmed_at: datetime


WebhookEvent = Literal["complaint.status_changed", "complaint.promise_changed"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = ("complaint.status_changed", "complaint.promise_changed")


class SubscriptionIn(Strict):
    url: AnyHttpUrl
    secret: str | None = Field(
        None, min_length=16, max_length=200, description="HMAC key; generated when omitted."
    )
    events: list[WebhookEvent] = Field(default_factory=lambda: list(WEBHOOK_EVENTS), min_length=1)
    description: str | None = Field(None, max_length=500)


class DeliveryOut(BaseModel):
    id: uuid.UUID
    complaint_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None = None
    active: bool
    created_at: datetime
    secret: str | None = Field(None, description="Only in the creation response, when generated.")
    recent_deliveries: list[DeliveryOut] | None = None


class SubscriptionPage(BaseModel):
    items: list[SubscriptionOut]

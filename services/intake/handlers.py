"""Keeps each complaint's live status, journey, owner, promises and timeline current from the
assignment and loop events, and queues status-change webhooks."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from services.intake import domain
from services.intake.models import Complaint, ComplaintPromise, TimelineEntry, WebhookDelivery
from services.intake.service import IntakeUnitOfWork
from shared.clock import Clock
from shared.db.uow import UnitOfWork
from shared.events.envelope import Envelope
from shared.events.models import (
    ComplaintAssignedV1,
    ComplaintReassignedV1,
    EventModel,
    LoopEscalatedV1,
    LoopEvent,
    LoopOpenedV1,
    PromiseMadeV1,
    PromiseOverdueV1,
    PromiseRenegotiatedV1,
)
from shared.ids import new_id

log = logging.getLogger(__name__)

_TIMELINE_FIELDS = (
    "by",
    "reason",
    "resolution_code",
    "root_cause",
    "summary",
    "level",
    "target",
    "audience",
    "late_by_seconds",
    "text",
    "made_by",
)


class ReadModelHandlers:
    """One handler for every assignment and loop event intake cares about."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def handlers(self) -> dict[str, Any]:
        names = [
            "complaint.assigned",
            "complaint.reassigned",
            "loop.opened",
            "loop.acknowledged",
            "promise.made",
            "promise.kept",
            "promise.overdue",
            "promise.renegotiated",
            "promise.cancelled",
            "loop.escalated",
            "loop.resolved",
            "loop.closed",
            "loop.reopened",
        ]
        return dict.fromkeys(names, self.apply)

    def apply(self, uow: UnitOfWork, envelope: Envelope, event: EventModel) -> None:
        assert isinstance(uow, IntakeUnitOfWork)
        ids = _complaint_ids(event)
        complaints = uow.repo.get_many(ids)
        if not complaints:
            log.warning("event for unknown complaint ignored", extra={"event_id": envelope.id})
            return
        for complaint in complaints:
            self._apply_one(uow, envelope, event, complaint)

    def _apply_one(
        self, uow: IntakeUnitOfWork, envelope: Envelope, event: EventModel, c: Complaint
    ) -> None:
        now = self._clock.now()
        name = event.name
        before = c.status
        if isinstance(event, ComplaintAssignedV1 | ComplaintReassignedV1 | LoopOpenedV1):
            c.journey_key, c.journey_name = event.journey.key, event.journey.name
            c.stage = event.stage
            c.owner_key, c.owner_name = event.owner.key, event.owner.name
        if isinstance(event, LoopEvent):
            c.loop_id = event.loop_id
        c.status = domain.status_after(c.status, name)
        promise_changed = self._apply_promise(uow, event, c, now)
        c.updated_at = now
        uow.session.add(
            TimelineEntry(
                id=new_id(),
                complaint_id=c.id,
                at=envelope.time,
                type=name,
                detail=_detail(event),
                event_id=envelope.id,
            )
        )
        if c.status != before:
            self._notify(uow, c, "complaint.status_changed", {"previous_status": before}, now)
        elif promise_changed:
            self._notify(uow, c, "complaint.promise_changed", {"event": name}, now)

    def _apply_promise(
        self, uow: IntakeUnitOfWork, event: EventModel, c: Complaint, now: Any
    ) -> bool:
        status = domain.PROMISE_STATUS.get(event.name)
        if status is None:
            return False
        promise_id: uuid.UUID = getattr(event, "promise_id")  # noqa: B009 - every promise event
        promise = uow.repo.promise(c.id, promise_id)
        if isinstance(event, PromiseMadeV1):
            if promise is None:
                uow.session.add(
                    ComplaintPromise(
                        complaint_id=c.id,
                        promise_id=promise_id,
                        text=event.text,
                        due_at=event.due_at,
                        status=status,
                        made_by=event.made_by,
                        updated_at=now,
                    )
                )
            return True
        if promise is None:
            log.warning("event for unknown promise ignored", extra={"promise_id": str(promise_id)})
            return False
        promise.status = status
        promise.updated_at = now
        if isinstance(event, PromiseRenegotiatedV1 | PromiseOverdueV1):
            promise.due_at = event.due_at
        return True

    def _notify(
        self, uow: IntakeUnitOfWork, c: Complaint, event_type: str, extra: dict[str, Any], now: Any
    ) -> None:
        subs = [s for s in uow.repo.subscriptions(c.client_id) if event_type in s.events["types"]]
        if not subs:
            return
        promises = uow.repo.promises_for([c.id])[c.id]
        payload = {
            "type": event_type,
            "complaint_id": str(c.id),
            "external_ref": c.external_ref,
            "status": c.status,
            **extra,
            "journey": {"key": c.journey_key, "name": c.journey_name, "stage": c.stage}
            if c.journey_key
            else None,
            "owner": {"key": c.owner_key, "name": c.owner_name} if c.owner_key else None,
            "promises": [
                {
                    "id": str(p.promise_id),
                    "text": p.text,
                    "due_at": p.due_at.isoformat(),
                    "status": p.status,
                }
                for p in promises
            ],
            "occurred_at": now.isoformat(),
        }
        for sub in subs:
            uow.session.add(
                WebhookDelivery(
                    id=new_id(),
                    subscription_id=sub.id,
                    complaint_id=c.id,
                    event_type=event_type,
                    payload=payload,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )


def _complaint_ids(event: EventModel) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = [getattr(event, "complaint_id")]  # noqa: B009 - on every event handled
    if isinstance(event, LoopEvent):
        ids += [i for i in event.complaint_ids if i not in ids]
    return ids


def _detail(event: EventModel) -> dict[str, Any]:
    data = event.model_dump(mode="json")
    detail = {k: data[k] for k in _TIMELINE_FIELDS if data.get(k) is not None}
    if isinstance(event, ComplaintAssignedV1 | ComplaintReassignedV1 | LoopOpenedV1):
        detail.update(journey=event.journey.key, stage=event.stage, owner=event.owner.key)
    if isinstance(event, PromiseMadeV1 | PromiseRenegotiatedV1 | PromiseOverdueV1):
        detail["due_at"] = data["due_at"]
    if isinstance(event, LoopEscalatedV1):
        detail["level"] = event.level
    return detail

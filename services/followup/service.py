"""Followup use cases: loops opened, joined and reopened by events; owners working them."""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.followup.config import FollowupSettings
from services.followup.domain import (
    SLA_TARGETS,
    IllegalTransition,
    LoopAction,
    LoopStatus,
    PromiseAction,
    PromiseStatus,
    allowed_actions,
    next_promise_status,
    next_status,
)
from services.followup.models import (
    OUTBOX,
    ComplaintCopy,
    DueTarget,
    Loop,
    LoopComplaint,
    Note,
    Promise,
    TaxonomyEntry,
    TimelineEntry,
)
from services.followup.repository import FollowupRepository
from services.followup.schemas import (
    LoopOut,
    LoopPage,
    LoopSummary,
    NoteOut,
    PromiseOut,
    SlaTargetOut,
    TimelineOut,
)
from services.followup.targets import LoopTargets, promise_target, sla_target
from shared.auth import Principal
from shared.bus.outbox import OutboxWriter
from shared.clock import Clock
from shared.db.uow import UnitOfWork
from shared.errors import InvalidTransition, NotFound, Unprocessable
from shared.events import topics
from shared.events.envelope import Envelope
from shared.events.models import (
    ComplaintAssignedV1,
    ComplaintConfirmedV1,
    ComplaintReassignedV1,
    ComplaintReceivedV1,
    EventModel,
    LoopAcknowledgedV1,
    LoopClosedV1,
    LoopOpenedV1,
    LoopReopenedV1,
    LoopResolvedV1,
    PromiseCancelledV1,
    PromiseKeptV1,
    PromiseMadeV1,
    PromiseRenegotiatedV1,
    Ref,
)
from shared.ids import new_id
from shared.logging import correlated

log = logging.getLogger(__name__)

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
FRONT_LINE = "front-line"


class FollowupUnitOfWork(UnitOfWork):
    def __init__(self, session_factory: Any, clock: Clock, source: str) -> None:
        super().__init__(session_factory)
        self._clock = clock
        self._source = source

    def __enter__(self) -> FollowupUnitOfWork:
        super().__enter__()
        self.repo = FollowupRepository(self.session)
        self.targets = LoopTargets(self.session)
        self.outbox = OutboxWriter(self.session, OUTBOX, self._source, self._clock)
        return self


@contextmanager
def _transitions() -> Iterator[None]:
    """The domain's IllegalTransition as the API's 409 problem."""
    try:
        yield
    except IllegalTransition as exc:
        raise InvalidTransition(
            str(exc), machine=exc.machine, current=exc.current, action=exc.action
        ) from exc


def _loop_next(loop: Loop, action: LoopAction) -> LoopStatus:
    status: LoopStatus = loop.status  # type: ignore[assignment]
    return next_status(status, action)


def _promise_next(promise: Promise, action: PromiseAction) -> PromiseStatus:
    status: PromiseStatus = promise.status  # type: ignore[assignment]
    return next_promise_status(status, action)


def _higher(a: str, b: str) -> str:
    return a if SEVERITY_RANK.get(a, 1) >= SEVERITY_RANK.get(b, 1) else b


class FollowupService:
    def __init__(
        self,
        uow_factory: Callable[[], FollowupUnitOfWork],
        clock: Clock,
        settings: FollowupSettings,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._settings = settings
        self._topic = settings.topic(topics.LOOPS)

    # --- events in ---------------------------------------------------------------------------
    def on_assigned(self, uow: FollowupUnitOfWork, envelope: Envelope, event: EventModel) -> None:
        """complaint.assigned -> a new loop, a join of the customer's loop, or a reopen."""
        assert isinstance(event, ComplaintAssignedV1)
        if uow.repo.loop_of_complaint(event.complaint_id) is not None:
            return  # re-announced assignment: the complaint already has its loop
        now = self._clock.now()
        loop = uow.repo.unclosed_loop(event.customer_id, event.journey.key)
        if loop is not None:
            self._join(uow, loop, event, envelope.id, now)
        else:
            since = now - timedelta(days=self._settings.reopen_window_days)
            loop = uow.repo.closed_since(event.customer_id, event.journey.key, since)
            if loop is not None:
                self._reopen_by_complaint(uow, loop, event, envelope.id, now)
            else:
                loop = self._open(uow, event, envelope.id, now)
        if event.promised_callback_by is not None:
            self._add_promise(
                uow,
                loop,
                "Call the customer back",
                event.promised_callback_by,
                FRONT_LINE,
                envelope.id,
                now,
            )

    def _open(
        self, uow: FollowupUnitOfWork, event: ComplaintAssignedV1, causation: str, now: datetime
    ) -> Loop:
        loop = Loop(
            id=new_id(),
            complaint_id=event.complaint_id,
            customer_id=event.customer_id,
            journey_key=event.journey.key,
            journey_name=event.journey.name or event.journey.key,
            stage=event.stage,
            owner_key=event.owner.key,
            owner_name=event.owner.name or event.owner.key,
            journey_manager=event.journey_manager,
            status="open",
            severity=event.severity,
            contacts=1,
            opened_at=now,
            sla_started_at=now,
            next_due_at=None,
            pauses=[],
            updated_at=now,
        )
        uow.session.add(loop)
        uow.session.flush()
        self._link(uow, loop, event.complaint_id, now)
        uow.targets.arm_sla(loop, now, since=now)
        self.record(
            uow,
            loop,
            "opened",
            {"complaint_id": str(event.complaint_id), "owner": event.owner.key},
            None,
            now,
        )
        self.emit(
            uow,
            loop,
            LoopOpenedV1(
                **self.common(uow, loop, now),
                journey=Ref(key=loop.journey_key, name=loop.journey_name),
                stage=loop.stage,
                owner=Ref(key=loop.owner_key, name=loop.owner_name),
                severity=event.severity,
            ),
            causation,
        )
        log.info("loop opened", extra={"loop_id": str(loop.id), "owner": loop.owner_key})
        return loop

    def _absorb(
        self, uow: FollowupUnitOfWork, loop: Loop, event: ComplaintAssignedV1, now: datetime
    ) -> None:
        """A further complaint belongs to this loop: one more contact, severity at its highest."""
        self._link(uow, loop, event.complaint_id, now)
        loop.contacts += 1
        severity = _higher(loop.severity, event.severity)
        if severity != loop.severity:
            loop.severity = severity
            uow.targets.rearm_open_sla(loop, now)  # a higher severity has tighter targets
        loop.updated_at = now

    def _join(
        self,
        uow: FollowupUnitOfWork,
        loop: Loop,
        event: ComplaintAssignedV1,
        causation: str,
        now: datetime,
    ) -> None:
        loop.status = _loop_next(loop, "join")
        self._absorb(uow, loop, event, now)
        self.record(
            uow,
            loop,
            "contact joined",
            {
                "complaint_id": str(event.complaint_id),
                "contacts": loop.contacts,
                "severity": loop.severity,
            },
            None,
            now,
        )
        if loop.status == "resolved":
            # The customer came back about it before confirming: it was not resolved after all.
            self._reopen(uow, loop, "the customer contacted us again", causation, now)

    def _reopen_by_complaint(
        self,
        uow: FollowupUnitOfWork,
        loop: Loop,
        event: ComplaintAssignedV1,
        causation: str,
        now: datetime,
    ) -> None:
        self._absorb(uow, loop, event, now)
        if loop.owner_key != event.owner.key:
            # Routing chose afresh; the loop follows its decision.
            self.record(
                uow,
                loop,
                "owner changed",
                {"from": loop.owner_key, "to": event.owner.key, "reason": "reopened"},
                None,
                now,
            )
            loop.owner_key, loop.owner_name = event.owner.key, event.owner.name or event.owner.key
        self._reopen(
            uow,
            loop,
            f"new complaint {event.complaint_id} within the reopen window",
            causation,
            now,
        )

    def _reopen(
        self, uow: FollowupUnitOfWork, loop: Loop, reason: str, causation: str | None, now: datetime
    ) -> None:
        loop.status = _loop_next(loop, "reopen")
        loop.updated_at = now
        loop.sla_started_at = now
        # The owner has to take it on again and resolve it afresh, against new SLA targets.
        uow.targets.arm_sla(loop, now, since=now, names=("acknowledge", "resolve"))
        self.record(uow, loop, "reopened", {"reason": reason}, None, now)
        self.emit(
            uow, loop, LoopReopenedV1(**self.common(uow, loop, now), reason=reason), causation
        )

    def on_received(self, uow: FollowupUnitOfWork, envelope: Envelope, event: EventModel) -> None:
        """complaint.received -> the copy the console shows (first delivery wins)."""
        assert isinstance(event, ComplaintReceivedV1)
        if uow.session.get(ComplaintCopy, event.complaint_id) is not None:
            return
        uow.session.add(
            ComplaintCopy(
                complaint_id=event.complaint_id,
                customer_id=event.customer_id,
                customer_ref=event.customer.ref,
                customer_name=event.customer.name,
                customer_tier=event.customer.tier,
                channel=event.channel,
                summary=event.summary,
                description=event.description,
                external_ref=event.external_ref,
                product=event.product,
                category=event.category,
                severity=event.severity,
                received_at=event.received_at,
                contacts_30d=event.repeat_contact.count_30d,
            )
        )

    def on_reassigned(self, uow: FollowupUnitOfWork, envelope: Envelope, event: EventModel) -> None:
        """complaint.reassigned -> the loop moves to the new owner."""
        assert isinstance(event, ComplaintReassignedV1)
        loop = uow.repo.loop_of_complaint(event.complaint_id, for_update=True)
        if loop is None:
            log.warning(
                "reassignment of a complaint without a loop",
                extra={"complaint_id": str(event.complaint_id)},
            )
            return
        if loop.owner_key == event.owner.key:
            return
        try:
            loop.status = _loop_next(loop, "reassign")
        except IllegalTransition:
            log.info("reassignment of a closed loop ignored", extra={"loop_id": str(loop.id)})
            return
        now = self._clock.now()
        self.record(
            uow,
            loop,
            "owner changed",
            {"from": loop.owner_key, "to": event.owner.key, "reason": event.reason},
            event.by,
            now,
        )
        loop.owner_key, loop.owner_name = event.owner.key, event.owner.name or event.owner.key
        loop.stage = event.stage
        loop.updated_at = now

    def on_confirmed(self, uow: FollowupUnitOfWork, envelope: Envelope, event: EventModel) -> None:
        """complaint.confirmed: resolved closes a resolved loop; not resolved reopens it."""
        assert isinstance(event, ComplaintConfirmedV1)
        loop = uow.repo.loop_of_complaint(event.complaint_id, for_update=True)
        if loop is None:
            log.warning(
                "confirmation of a complaint without a loop",
                extra={"complaint_id": str(event.complaint_id)},
            )
            return
        now = self._clock.now()
        detail = {
            "complaint_id": str(event.complaint_id),
            "resolved": event.resolved,
            "csat": event.csat,
            "comment": event.comment,
        }
        self.record(uow, loop, "customer confirmed", detail, None, now)
        loop.updated_at = now
        loop.confirmed_at = now
        if event.csat is not None:
            loop.csat = event.csat
        if event.resolved:
            if loop.status != "resolved":
                # Nothing to close (not resolved yet, or closed already): the timeline keeps it.
                return
            loop.status = _loop_next(loop, "close")
            loop.closed_at = now
            uow.targets.settle(loop, now)  # the customer is satisfied: nothing more is owed
            self.record(uow, loop, "closed", {"reason": "customer confirmed"}, None, now)
            self.emit(
                uow,
                loop,
                LoopClosedV1(**self.common(uow, loop, now), reason="customer confirmed"),
                envelope.id,
            )
        elif loop.status in ("resolved", "closed"):
            self._reopen(uow, loop, "the customer says it is not resolved", envelope.id, now)

    # --- owners working a loop ---------------------------------------------------------------
    def acknowledge(self, principal: Principal, loop_id: uuid.UUID) -> LoopOut:
        with self._uow() as uow, _transitions():
            loop = self._visible(uow, principal, loop_id)
            now = self._clock.now()
            loop.status = _loop_next(loop, "acknowledge")
            loop.acknowledged_at = now
            loop.updated_at = now
            uow.targets.settle(loop, now, sla_target("acknowledge"))
            self.record(uow, loop, "acknowledged", {}, principal.subject, now)
            self.emit(
                uow, loop, LoopAcknowledgedV1(**self.common(uow, loop, now), by=principal.subject)
            )
            out = self._out(uow, loop)
            uow.commit()
            return out

    def make_promise(
        self, principal: Principal, loop_id: uuid.UUID, text: str, due_at: datetime
    ) -> PromiseOut:
        now = self._clock.now()
        _future(due_at, now)
        with self._uow() as uow, _transitions():
            loop = self._visible(uow, principal, loop_id)
            promise = self._add_promise(uow, loop, text, due_at, principal.subject, None, now)
            out = _promise_out(promise)
            uow.commit()
            return out

    def _add_promise(
        self,
        uow: FollowupUnitOfWork,
        loop: Loop,
        text: str,
        due_at: datetime,
        made_by: str,
        causation: str | None,
        now: datetime,
    ) -> Promise:
        loop.status = _loop_next(loop, "make_promise")
        if loop.acknowledged_at is None:
            loop.acknowledged_at = now  # a promise to the customer implies acknowledgement
        promise = Promise(
            id=new_id(),
            loop_id=loop.id,
            text=text,
            due_at=due_at,
            status="pending",
            made_by=made_by,
            created_at=now,
        )
        uow.session.add(promise)
        uow.session.flush()
        uow.targets.settle(loop, now, sla_target("acknowledge"), sla_target("first_promise"))
        uow.targets.arm_promise(loop, promise, now)
        loop.updated_at = now
        self.record(
            uow,
            loop,
            "promise made",
            {"promise_id": str(promise.id), "text": text, "due_at": due_at.isoformat()},
            made_by,
            now,
        )
        self.emit(
            uow,
            loop,
            PromiseMadeV1(
                **self.common(uow, loop, now),
                promise_id=promise.id,
                text=text,
                due_at=due_at,
                made_by=made_by,
            ),
            causation,
        )
        return promise

    def keep_promise(self, principal: Principal, promise_id: uuid.UUID) -> PromiseOut:
        with self._uow() as uow, _transitions():
            promise, loop = self._visible_promise(uow, principal, promise_id)
            now = self._clock.now()
            loop.status = _loop_next(loop, "keep_promise")
            promise.status = _promise_next(promise, "keep")
            promise.kept_at = now
            uow.targets.settle(loop, now, promise_target(promise.id))
            loop.updated_at = now
            self.record(
                uow, loop, "promise kept", {"promise_id": str(promise.id)}, principal.subject, now
            )
            self.emit(
                uow, loop, PromiseKeptV1(**self.common(uow, loop, now), promise_id=promise.id)
            )
            out = _promise_out(promise)
            uow.commit()
            return out

    def renegotiate_promise(
        self, principal: Principal, promise_id: uuid.UUID, due_at: datetime, reason: str
    ) -> PromiseOut:
        now = self._clock.now()
        _future(due_at, now)
        with self._uow() as uow, _transitions():
            promise, loop = self._visible_promise(uow, principal, promise_id)
            _not_closed(loop, "renegotiate a promise of")
            promise.status = _promise_next(promise, "renegotiate")
            previous = promise.due_at
            promise.due_at, promise.reason = due_at, reason
            uow.targets.arm_promise(loop, promise, now)  # a new deal: its ladder starts over
            loop.updated_at = now
            self.record(
                uow,
                loop,
                "promise renegotiated",
                {
                    "promise_id": str(promise.id),
                    "due_at": due_at.isoformat(),
                    "previous_due_at": previous.isoformat(),
                    "reason": reason,
                },
                principal.subject,
                now,
            )
            self.emit(
                uow,
                loop,
                PromiseRenegotiatedV1(
                    **self.common(uow, loop, now),
                    promise_id=promise.id,
                    due_at=due_at,
                    previous_due_at=previous,
                    reason=reason,
                ),
            )
            out = _promise_out(promise)
            uow.commit()
            return out

    def cancel_promise(
        self, principal: Principal, promise_id: uuid.UUID, reason: str
    ) -> PromiseOut:
        with self._uow() as uow, _transitions():
            promise, loop = self._visible_promise(uow, principal, promise_id)
            _not_closed(loop, "cancel a promise of")
            now = self._clock.now()
            promise.status = _promise_next(promise, "cancel")
            promise.reason = reason
            uow.targets.settle(loop, now, promise_target(promise.id))
            loop.updated_at = now
            self.record(
                uow,
                loop,
                "promise cancelled",
                {"promise_id": str(promise.id), "reason": reason},
                principal.subject,
                now,
            )
            self.emit(
                uow,
                loop,
                PromiseCancelledV1(
                    **self.common(uow, loop, now), promise_id=promise.id, reason=reason
                ),
            )
            out = _promise_out(promise)
            uow.commit()
            return out

    def add_note(self, principal: Principal, loop_id: uuid.UUID, text: str) -> NoteOut:
        with self._uow() as uow, _transitions():
            loop = self._visible(uow, principal, loop_id)
            now = self._clock.now()
            loop.status = _loop_next(loop, "note")
            loop.updated_at = now
            note = Note(id=new_id(), loop_id=loop.id, text=text, by=principal.subject, at=now)
            uow.session.add(note)
            self.record(uow, loop, "note added", {"note_id": str(note.id)}, principal.subject, now)
            out = NoteOut(id=note.id, loop_id=loop.id, text=text, by=note.by, at=now)
            uow.commit()
            return out

    def resolve(
        self,
        principal: Principal,
        loop_id: uuid.UUID,
        resolution_code: str,
        root_cause: str,
        summary: str,
    ) -> LoopOut:
        with self._uow() as uow, _transitions():
            loop = self._visible(uow, principal, loop_id)
            _in_taxonomy(uow, resolution_code=resolution_code, root_cause=root_cause)
            now = self._clock.now()
            loop.status = _loop_next(loop, "resolve")
            if loop.paused_since is not None:
                self._end_pause(uow, loop, now)
            if loop.acknowledged_at is None:
                loop.acknowledged_at = now  # a first-contact fix needs no separate acknowledge
            loop.resolved_at = now
            uow.targets.settle(loop, now, *(sla_target(name) for name in SLA_TARGETS))
            loop.resolution_code = resolution_code
            loop.root_cause, loop.summary = root_cause, summary
            loop.updated_at = now
            self.record(
                uow,
                loop,
                "resolved",
                {"resolution_code": resolution_code, "root_cause": root_cause},
                principal.subject,
                now,
            )
            self.emit(
                uow,
                loop,
                LoopResolvedV1(
                    **self.common(uow, loop, now),
                    resolution_code=resolution_code,
                    root_cause=root_cause,
                    summary=summary,
                    by=principal.subject,
                ),
            )
            out = self._out(uow, loop)
            uow.commit()
            return out

    def wait_on_customer(self, principal: Principal, loop_id: uuid.UUID, reason: str) -> LoopOut:
        """The next step is the customer's: the SLA clock stops until `resume`."""
        with self._uow() as uow, _transitions():
            loop = self._visible(uow, principal, loop_id)
            if loop.status in ("resolved", "closed") or loop.paused_since is not None:
                current = "waiting on the customer" if loop.paused_since else loop.status
                raise IllegalTransition("loop", current, "wait on the customer")
            now = self._clock.now()
            loop.paused_since = now
            loop.updated_at = now
            uow.targets.pause(loop, now)
            self.record(
                uow, loop, "waiting on customer", {"reason": reason}, principal.subject, now
            )
            out = self._out(uow, loop)
            uow.commit()
            return out

    def resume(self, principal: Principal, loop_id: uuid.UUID) -> LoopOut:
        """The customer answered: the SLA clock runs again, the paused time not counted."""
        with self._uow() as uow, _transitions():
            loop = self._visible(uow, principal, loop_id)
            if loop.paused_since is None:
                raise IllegalTransition("loop", "not waiting on the customer", "resume")
            now = self._clock.now()
            self._end_pause(uow, loop, now)
            self.record(uow, loop, "customer replied", {}, principal.subject, now)
            out = self._out(uow, loop)
            uow.commit()
            return out

    def _end_pause(self, uow: FollowupUnitOfWork, loop: Loop, now: datetime) -> None:
        assert loop.paused_since is not None
        loop.pauses = [*loop.pauses, [loop.paused_since.isoformat(), now.isoformat()]]
        loop.paused_since = None
        loop.updated_at = now
        uow.targets.rearm_open_sla(loop, now)

    # --- reading -----------------------------------------------------------------------------
    def loop(self, principal: Principal, loop_id: uuid.UUID) -> LoopOut:
        with self._uow() as uow:
            return self._out(uow, self._visible(uow, principal, loop_id, for_update=False))

    def page(
        self,
        principal: Principal,
        *,
        owner: str | None = None,
        journey: str | None = None,
        status: str | None = None,
        overdue: bool = False,
        cursor: str | None = None,
        limit: int = 50,
    ) -> LoopPage:
        """Loops the caller may see, by next due time; `overdue` keeps those past due now."""
        journeys: list[str] | None = [journey] if journey is not None else None
        if principal.role == "owner":
            if owner is not None and owner != principal.subject:
                return LoopPage(items=[])
            owner = principal.subject
        elif principal.role == "manager":
            mine = set(principal.journeys)
            journeys = [j for j in (journeys or principal.journeys) if j in mine]
        now = self._clock.now()
        with self._uow() as uow:
            rows = uow.repo.page(
                owner=owner,
                journeys=journeys,
                status=status,
                overdue_at=now if overdue else None,
                after=_parse_cursor(cursor),
                limit=limit + 1,
            )
            more = len(rows) > limit
            rows = rows[:limit]
            ids = uow.repo.complaint_ids_for([r.id for r in rows])
            items = [_summary(r, ids[r.id], now) for r in rows]
            return LoopPage(items=items, next_cursor=_cursor(rows[-1]) if more else None)

    # --- helpers -----------------------------------------------------------------------------
    def _visible(
        self,
        uow: FollowupUnitOfWork,
        principal: Principal,
        loop_id: uuid.UUID,
        *,
        for_update: bool = True,
    ) -> Loop:
        loop = uow.repo.loop(loop_id, for_update=for_update)
        if loop is None or not _may_see(principal, loop):
            raise NotFound(f"no loop {loop_id}")
        return loop

    def _visible_promise(
        self, uow: FollowupUnitOfWork, principal: Principal, promise_id: uuid.UUID
    ) -> tuple[Promise, Loop]:
        promise = uow.repo.promise(promise_id)
        loop = uow.repo.loop(promise.loop_id, for_update=True) if promise is not None else None
        if promise is None or loop is None or not _may_see(principal, loop):
            raise NotFound(f"no promise {promise_id}")
        # Locked after its loop, so every writer takes the locks in the same order.
        uow.session.refresh(promise, with_for_update=True)
        return promise, loop

    def _link(
        self, uow: FollowupUnitOfWork, loop: Loop, complaint_id: uuid.UUID, now: datetime
    ) -> None:
        uow.session.add(LoopComplaint(complaint_id=complaint_id, loop_id=loop.id, joined_at=now))
        uow.session.flush()

    def record(
        self,
        uow: FollowupUnitOfWork,
        loop: Loop,
        type_: str,
        detail: dict[str, Any],
        by: str | None,
        now: datetime,
    ) -> None:
        uow.session.add(
            TimelineEntry(id=new_id(), loop_id=loop.id, at=now, type=type_, detail=detail, by=by)
        )

    def common(
        self,
        uow: FollowupUnitOfWork,
        loop: Loop,
        now: datetime,
        complaint_ids: list[uuid.UUID] | None = None,
    ) -> dict[str, Any]:
        """The fields every loop event carries (complaint ids read unless the caller has them)."""
        return {
            "loop_id": loop.id,
            "complaint_id": loop.complaint_id,
            "customer_id": loop.customer_id,
            "complaint_ids": uow.repo.complaint_ids(loop.id)
            if complaint_ids is None
            else complaint_ids,
            "at": now,
        }

    def envelope(self, uow: FollowupUnitOfWork, loop: Loop, event: EventModel) -> Envelope:
        """A loop event's envelope, for callers that queue many at once (the scheduler)."""
        return uow.outbox.envelope(
            event,
            key=loop.customer_id,
            subject=str(loop.id),
            correlationid=loop.complaint_id,
        )

    @property
    def topic(self) -> str:
        return self._topic

    def emit(
        self,
        uow: FollowupUnitOfWork,
        loop: Loop,
        event: EventModel,
        causation: str | None = None,
    ) -> None:
        with correlated(str(loop.complaint_id)):
            uow.outbox.add(
                event,
                topic=self._topic,
                key=loop.customer_id,
                subject=str(loop.id),
                correlationid=loop.complaint_id,
                causationid=causation,
            )

    def _out(self, uow: FollowupUnitOfWork, loop: Loop) -> LoopOut:
        uow.session.flush()
        now = self._clock.now()
        status: LoopStatus = loop.status  # type: ignore[assignment]
        return LoopOut(
            **_summary(loop, uow.repo.complaint_ids(loop.id), now).model_dump(),
            resolution_code=loop.resolution_code,
            root_cause=loop.root_cause,
            summary=loop.summary,
            allowed_actions=list(allowed_actions(status)),
            sla=[_target_out(t) for t in uow.targets.sla_of(loop)],
            promises=[_promise_out(p) for p in uow.repo.promises(loop.id)],
            timeline=[
                TimelineOut(at=t.at, type=t.type, detail=t.detail, by=t.by)
                for t in uow.repo.timeline(loop.id)
            ],
            notes=[
                NoteOut(id=n.id, loop_id=n.loop_id, text=n.text, by=n.by, at=n.at)
                for n in uow.repo.notes(loop.id)
            ],
        )


def _may_see(p: Principal, loop: Loop) -> bool:
    return (
        p.is_admin
        or (p.role == "manager" and loop.journey_key in p.journeys)
        or (p.role == "owner" and loop.owner_key == p.subject)
    )


def _in_taxonomy(uow: FollowupUnitOfWork, **values: str) -> None:
    """Each value must be a key of its taxonomy kind, once that kind has any entries."""
    errors = []
    for kind, value in values.items():
        keys = set(uow.session.scalars(select(TaxonomyEntry.key).where(TaxonomyEntry.kind == kind)))
        if keys and value not in keys:
            errors.append({"field": kind, "message": f"not in the taxonomy: {sorted(keys)}"})
    if errors:
        raise Unprocessable("resolution not in the taxonomy", errors=errors)


def _not_closed(loop: Loop, action: str) -> None:
    if loop.status == "closed":
        raise IllegalTransition("loop", loop.status, action)


def _future(due_at: datetime, now: datetime) -> None:
    if due_at <= now:
        raise Unprocessable(
            "due_at must be in the future",
            errors=[{"field": "due_at", "message": "must be in the future"}],
        )


def _target_out(t: DueTarget) -> SlaTargetOut:
    if t.breached:
        state = "missed"
    elif t.settled_at is not None:
        state = "met"
    elif t.due_at is None:
        state = "paused"
    else:
        state = "pending"
    return SlaTargetOut(
        target=t.target.removeprefix("sla:"), due_at=t.due_at, state=state, settled_at=t.settled_at
    )


def _promise_out(p: Promise) -> PromiseOut:
    return PromiseOut(
        id=p.id,
        loop_id=p.loop_id,
        text=p.text,
        due_at=p.due_at,
        status=p.status,
        made_by=p.made_by,
        created_at=p.created_at,
        kept_at=p.kept_at,
        reason=p.reason,
    )


def _summary(loop: Loop, complaint_ids: list[uuid.UUID], now: datetime) -> LoopSummary:
    return LoopSummary(
        id=loop.id,
        complaint_id=loop.complaint_id,
        complaint_ids=complaint_ids,
        customer_id=loop.customer_id,
        journey={"key": loop.journey_key, "name": loop.journey_name},
        stage=loop.stage,
        owner={"key": loop.owner_key, "name": loop.owner_name},
        journey_manager=loop.journey_manager,
        status=loop.status,
        severity=loop.severity,
        contacts=loop.contacts,
        opened_at=loop.opened_at,
        acknowledged_at=loop.acknowledged_at,
        resolved_at=loop.resolved_at,
        closed_at=loop.closed_at,
        next_due_at=loop.next_due_at,
        waiting_since=loop.paused_since,
        overdue=loop.next_due_at is not None and loop.next_due_at < now,
    )


def _cursor(loop: Loop) -> str:
    due = loop.next_due_at.isoformat() if loop.next_due_at is not None else ""
    return base64.urlsafe_b64encode(f"{due}|{loop.id}".encode()).decode()


def _parse_cursor(cursor: str | None) -> tuple[datetime | None, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        due, _, loop_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        at = datetime.fromisoformat(due) if due else None
        if at is not None and at.tzinfo is None:
            raise ValueError("naive cursor time")
        return at, uuid.UUID(loop_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Unprocessable(
            "cursor is not valid", errors=[{"field": "cursor", "message": "not a cursor"}]
        ) from exc

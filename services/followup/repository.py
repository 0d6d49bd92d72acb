"""Followup queries. Repositories may flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from services.followup.models import Loop, LoopComplaint, Note, Promise, TimelineEntry

# Promise statuses that still owe the customer something (renegotiated behaves like pending,
# an overdue promise can still be kept late).
OPEN_PROMISE_STATUSES = ("pending", "renegotiated", "overdue")


class FollowupRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def loop(self, loop_id: uuid.UUID, *, for_update: bool = False) -> Loop | None:
        q = select(Loop).where(Loop.id == loop_id)
        if for_update:
            q = q.with_for_update()
        return self.session.scalar(q)

    def loop_of_complaint(
        self, complaint_id: uuid.UUID, *, for_update: bool = False
    ) -> Loop | None:
        q = select(Loop).join(LoopComplaint, LoopComplaint.loop_id == Loop.id)
        q = q.where(LoopComplaint.complaint_id == complaint_id)
        if for_update:
            q = q.with_for_update(of=Loop)
        return self.session.scalar(q)

    def unclosed_loop(self, customer_id: uuid.UUID, journey: str) -> Loop | None:
        """The customer's loop on this journey that is not closed (there is at most one)."""
        return self.session.scalar(
            select(Loop)
            .where(
                Loop.customer_id == customer_id,
                Loop.journey_key == journey,
                Loop.status != "closed",
            )
            .order_by(Loop.opened_at.desc(), Loop.id.desc())
            .limit(1)
            .with_for_update()
        )

    def closed_since(self, customer_id: uuid.UUID, journey: str, since: datetime) -> Loop | None:
        """The customer's loop on this journey most recently closed at or after `since`."""
        return self.session.scalar(
            select(Loop)
            .where(
                Loop.customer_id == customer_id,
                Loop.journey_key == journey,
                Loop.status == "closed",
                Loop.closed_at >= since,
            )
            .order_by(Loop.closed_at.desc(), Loop.id.desc())
            .limit(1)
            .with_for_update()
        )

    def complaint_ids(self, loop_id: uuid.UUID) -> list[uuid.UUID]:
        return list(
            self.session.scalars(
                select(LoopComplaint.complaint_id)
                .where(LoopComplaint.loop_id == loop_id)
                .order_by(LoopComplaint.joined_at, LoopComplaint.complaint_id)
            )
        )

    def complaint_ids_for(self, loop_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        out: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in loop_ids}
        rows = self.session.execute(
            select(LoopComplaint.loop_id, LoopComplaint.complaint_id)
            .where(LoopComplaint.loop_id.in_(set(loop_ids)))
            .order_by(LoopComplaint.joined_at, LoopComplaint.complaint_id)
        )
        for loop_id, complaint_id in rows.all():
            out[loop_id].append(complaint_id)
        return out

    def promise(self, promise_id: uuid.UUID, *, for_update: bool = False) -> Promise | None:
        q = select(Promise).where(Promise.id == promise_id)
        if for_update:
            q = q.with_for_update()
        return self.session.scalar(q)

    def promises(self, loop_id: uuid.UUID) -> list[Promise]:
        return list(
            self.session.scalars(
                select(Promise)
                .where(Promise.loop_id == loop_id)
                .order_by(Promise.created_at, Promise.id)
            )
        )

    def timeline(self, loop_id: uuid.UUID) -> list[TimelineEntry]:
        return list(
            self.session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.loop_id == loop_id)
                .order_by(TimelineEntry.at, TimelineEntry.id)
            )
        )

    def notes(self, loop_id: uuid.UUID) -> list[Note]:
        return list(
            self.session.scalars(
                select(Note).where(Note.loop_id == loop_id).order_by(Note.at, Note.id)
            )
        )

    def page(
        self,
        *,
        owner: str | None,
        journeys: Sequence[str] | None,
        status: str | None,
        overdue_at: datetime | None,
        after: tuple[datetime | None, uuid.UUID] | None,
        limit: int,
    ) -> list[Loop]:
        """Loops by next due time (loops without one last), then id; keyset after `after`."""
        q = select(Loop)
        if owner is not None:
            q = q.where(Loop.owner_key == owner)
        if journeys is not None:
            q = q.where(Loop.journey_key.in_(journeys))
        if status is not None:
            q = q.where(Loop.status == status)
        if overdue_at is not None:
            # next_due_at is the earliest open promise, so it is past due iff one of them is.
            q = q.where(Loop.next_due_at < overdue_at)
        if after is not None:
            due, last_id = after
            if due is None:
                q = q.where(Loop.next_due_at.is_(None), Loop.id > last_id)
            else:
                q = q.where(
                    or_(
                        Loop.next_due_at > due,
                        and_(Loop.next_due_at == due, Loop.id > last_id),
                        Loop.next_due_at.is_(None),
                    )
                )
        q = q.order_by(Loop.next_due_at.asc().nulls_last(), Loop.id).limit(limit)
        return list(self.session.scalars(q))

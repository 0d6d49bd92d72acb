"""What the console's lists read: the same visibility rules as the API, plus search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from services.followup.models import ComplaintCopy, Loop
from shared.auth import Principal

OPEN_STATUSES = ("open", "acknowledged", "promised", "reopened")
DUE_SOON = timedelta(hours=2)


def visible(q: Select[Any], p: Principal) -> Select[Any]:
    """Owners their own loops, managers their journeys' loops, admins all (as the API)."""
    if p.is_admin:
        return q
    if p.role == "manager":
        return q.where(Loop.journey_key.in_(p.journeys))
    return q.where(Loop.owner_key == p.subject)


@dataclass(frozen=True)
class QueueRow:
    loop: Loop
    complaint: ComplaintCopy | None
    overdue: bool
    due_soon: bool


@dataclass(frozen=True)
class Queue:
    rows: list[QueueRow]
    open: int
    overdue: int
    due_soon: int
    journeys: list[str]


def queue(
    session: Session,
    principal: Principal,
    now: datetime,
    *,
    journey: str | None = None,
    status: str | None = None,
    severity: str | None = None,
    search: str | None = None,
    limit: int = 500,
) -> Queue:
    """Open loops by next due time (overdue first, none last), with the counts at the top."""
    base = visible(select(Loop), principal).where(Loop.status.in_(OPEN_STATUSES))
    mine = base.subquery()
    due = mine.c.next_due_at
    counts = session.execute(
        select(
            func.count(),
            func.count().filter(due < now),
            func.count().filter(due >= now, due < now + DUE_SOON),
        ).select_from(mine)
    ).one()
    journeys = sorted(session.scalars(select(func.distinct(mine.c.journey_key))).all())
    q = base
    if journey:
        q = q.where(Loop.journey_key == journey)
    if status:
        q = q.where(Loop.status == status)
    if severity:
        q = q.where(Loop.severity == severity)
    if search:
        like = f"%{search.strip().lower()}%"
        matching = select(ComplaintCopy.customer_id).where(
            or_(
                func.lower(ComplaintCopy.customer_ref).like(like),
                func.lower(ComplaintCopy.customer_name).like(like),
                func.lower(ComplaintCopy.external_ref).like(like),
            )
        )
        q = q.where(Loop.customer_id.in_(matching))
    q = q.order_by(Loop.next_due_at.is_(None), Loop.next_due_at, Loop.id).limit(limit)
    loops: list[Loop] = list(session.scalars(q))
    copies = {
        c.complaint_id: c
        for c in session.scalars(
            select(ComplaintCopy).where(
                ComplaintCopy.complaint_id.in_([loop.complaint_id for loop in loops])
            )
        )
    }
    rows = [
        QueueRow(
            loop=loop,
            complaint=copies.get(loop.complaint_id),
            overdue=loop.next_due_at is not None and loop.next_due_at < now,
            due_soon=loop.next_due_at is not None and now <= loop.next_due_at < now + DUE_SOON,
        )
        for loop in loops
    ]
    return Queue(
        rows=rows, open=counts[0], overdue=counts[1], due_soon=counts[2], journeys=journeys
    )

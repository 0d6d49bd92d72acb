"""A loop's due targets: its promises and SLA targets, armed, moved, paused and settled.

Every change to what a loop owes goes through here, in the transaction of that change, so the
scheduler's `next_fire_at` index is always exact and the loop's `next_due_at` (what queues sort
by) is the earliest thing still owed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.followup.domain import (
    SLA_TARGETS,
    Pause,
    SlaTarget,
    first_level_to_fire,
    next_check_at,
    sla_targets,
)
from services.followup.models import DueTarget, Loop, Promise
from services.followup.policy_lookup import PolicyLookup
from shared.ids import new_id


def promise_target(promise_id: object) -> str:
    return f"promise:{promise_id}"


def sla_target(name: SlaTarget) -> str:
    return f"sla:{name}"


class LoopTargets:
    """The due targets of loops, within one unit of work."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.lookup = PolicyLookup(session)

    def target(self, loop: Loop, name: str) -> DueTarget | None:
        return self._session.scalar(
            select(DueTarget).where(DueTarget.loop_id == loop.id, DueTarget.target == name)
        )

    def arm(
        self,
        loop: Loop,
        name: str,
        due_at: datetime | None,
        now: datetime,
        promise_id: object = None,
    ) -> DueTarget:
        """Set (or reset) a target to fall due at `due_at` (None: paused), its ladder from the
        start; reminders already past are skipped."""
        levels = self.lookup.ladder_for(loop.journey_key)
        row = self.target(loop, name)
        if row is None:
            row = DueTarget(id=new_id(), loop_id=loop.id, target=name, promise_id=promise_id)
            self._session.add(row)
        row.due_at = due_at
        row.breached = False
        row.settled_at = None
        row.next_level = 0 if due_at is None else first_level_to_fire(levels, due_at, now)
        row.next_fire_at = (
            None if due_at is None else next_check_at(levels, due_at, False, row.next_level)
        )
        row.updated_at = now
        return row

    def arm_promise(self, loop: Loop, promise: Promise, now: datetime) -> None:
        self.arm(loop, promise_target(promise.id), promise.due_at, now, promise_id=promise.id)
        self.refresh_next_due(loop)

    def settle(self, loop: Loop, now: datetime, *names: str) -> None:
        """Nothing more is owed on these targets (on every target without names): they leave
        the scheduler and the queue."""
        q = select(DueTarget).where(DueTarget.loop_id == loop.id, DueTarget.settled_at.is_(None))
        if names:
            q = q.where(DueTarget.target.in_(names))
        for row in self._session.scalars(q):
            row.settled_at = now
            row.next_fire_at = None
            row.updated_at = now
        self.refresh_next_due(loop)

    def arm_sla(
        self, loop: Loop, now: datetime, since: datetime, names: Iterable[SlaTarget] = SLA_TARGETS
    ) -> None:
        """Arm SLA targets counted from `since` under the loop's policy (none without one)."""
        found = self.lookup.sla_for(loop.journey_key, loop.severity)
        if found is None:
            return
        policy, calendar = found
        due = sla_targets(policy, calendar, since, _pauses(loop))
        for name in names:
            self.arm(loop, sla_target(name), due[name], now)
        self.refresh_next_due(loop)

    def rearm_open_sla(self, loop: Loop, now: datetime) -> None:
        """Recompute the SLA targets not yet met or missed (severity changed, pause ended)."""
        names = [
            name
            for name in SLA_TARGETS
            if (row := self.target(loop, sla_target(name))) is not None
            and row.settled_at is None
            and not row.breached
        ]
        if names:
            self.arm_sla(loop, now, loop.sla_started_at or loop.opened_at, names)

    def pause(self, loop: Loop, now: datetime) -> None:
        """Waiting on the customer: SLA targets not yet missed stop until the pause ends."""
        for row in self._open_sla(loop):
            if not row.breached:
                row.due_at = None
                row.next_fire_at = None
                row.updated_at = now
        self.refresh_next_due(loop)

    def refresh_next_due(self, loop: Loop) -> None:
        """The loop's next due time: the earliest target still owed."""
        self._session.flush()
        loop.next_due_at = self._session.scalar(
            select(DueTarget.due_at)
            .where(
                DueTarget.loop_id == loop.id,
                DueTarget.settled_at.is_(None),
                DueTarget.due_at.is_not(None),
            )
            .order_by(DueTarget.due_at)
            .limit(1)
        )

    def sla_of(self, loop: Loop) -> list[DueTarget]:
        """The loop's SLA targets in their natural order (acknowledge, first promise, resolve)."""
        rows = {
            r.target: r
            for r in self._session.scalars(
                select(DueTarget).where(
                    DueTarget.loop_id == loop.id, DueTarget.target.like("sla:%")
                )
            )
        }
        return [rows[sla_target(n)] for n in SLA_TARGETS if sla_target(n) in rows]

    def _open_sla(self, loop: Loop) -> list[DueTarget]:
        return list(
            self._session.scalars(
                select(DueTarget).where(
                    DueTarget.loop_id == loop.id,
                    DueTarget.target.like("sla:%"),
                    DueTarget.settled_at.is_(None),
                )
            )
        )


def _pauses(loop: Loop) -> list[Pause]:
    spans: list[Pause] = [
        (datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in loop.pauses
    ]
    if loop.paused_since is not None:
        spans.append((loop.paused_since, None))
    return spans

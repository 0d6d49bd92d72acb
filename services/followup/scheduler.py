"""The escalation scheduler: fires what has fallen due, each ladder level exactly once.

A tick claims due targets through the partial index on `next_fire_at` (so its cost follows what
is due, not what is open), together with their loops, FOR UPDATE SKIP LOCKED on PostgreSQL: any
number of replicas tick at once and each target is handled by exactly one of them, and a loop an
owner is working on right now is simply picked up by the next tick. SQLite has a single writer
(BEGIN IMMEDIATE), which gives the same guarantee on one machine.

For each target, in the claiming transaction: a promise past due becomes overdue
(`promise.overdue`), every ladder level whose time has come fires once as an alert (with how late
it is, so after downtime each missed level fires once instead of a storm), escalations are
emitted as `loop.escalated`, each alert gets a pending delivery, and the target's next check time
is moved on. The unique (target, due time, level) constraint makes a second firing impossible.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import Counter, Histogram
from sqlalchemy import select, text

from services.followup.domain import (
    LadderLevel,
    alert_kind,
    audience_of,
    due_levels,
    next_check_at,
    next_promise_status,
)
from services.followup.models import Alert, Delivery, DueTarget, Loop, Promise
from services.followup.service import FollowupService, FollowupUnitOfWork
from shared.clock import Clock
from shared.events.envelope import Envelope
from shared.events.models import EventModel, LoopEscalatedV1, PromiseOverdueV1
from shared.ids import new_id
from shared.logging import correlated

log = logging.getLogger(__name__)

ALERTS_FIRED = Counter(
    "closeloop_alerts_fired_total", "Ladder levels fired, by kind.", ["service", "kind"]
)
FIRE_LAG = Histogram(
    "closeloop_scheduler_fire_lag_seconds",
    "From a level's scheduled time to the tick that fired it.",
    ["service"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)


@dataclass(frozen=True)
class TickResult:
    targets: int
    alerts: int


class Scheduler:
    def __init__(
        self,
        uow_factory: Callable[[], FollowupUnitOfWork],
        clock: Clock,
        service: FollowupService,
        *,
        batch_size: int = 100,
        tick_budget_s: float = 5.0,
        service_name: str = "followup",
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._service = service
        self._batch = batch_size
        self._budget = tick_budget_s
        self._name = service_name

    def run_once(self) -> int:
        """One tick: batches until nothing more is due or the time budget is spent."""
        started = time.monotonic()
        handled = 0
        while True:
            result = self.tick()
            handled += result.targets
            if result.targets < self._batch or time.monotonic() - started > self._budget:
                return handled

    def tick(self) -> TickResult:
        """Claim one batch of due targets and fire what is due on them, in one transaction."""
        now = self._clock.now()
        with self._uow() as uow:
            if uow.session.get_bind().dialect.name == "postgresql":
                # An ordered scan of the partial index stops after one batch and marks entries
                # of fired targets dead as it passes; a bitmap scan (which the planner picks
                # when it expects fewer rows due than the batch) reads and sorts every due row.
                uow.session.execute(text("SET LOCAL enable_bitmapscan = off"))
            claimed = uow.session.execute(
                select(DueTarget, Loop)
                .join(Loop, Loop.id == DueTarget.loop_id)
                .where(DueTarget.next_fire_at <= now)
                .order_by(DueTarget.next_fire_at)
                .limit(self._batch)
                .with_for_update(skip_locked=True)
            ).all()
            # What the batch needs, read in a few statements instead of a few per target; no
            # autoflush, so each target's changes go out once, in batched statements, at commit.
            with uow.session.no_autoflush:
                batch = _Batch(
                    complaint_ids=uow.repo.complaint_ids_for([loop.id for _, loop in claimed]),
                    promises=_lock_breached_promises(uow, [t for t, _ in claimed], now),
                )
                alerts = 0
                for target, loop in claimed:
                    with correlated(str(loop.complaint_id)):
                        alerts += self._fire(uow, batch, target, loop, now)
                uow.outbox.add_many([(env, self._service.topic) for env in batch.events])
            uow.commit()
        return TickResult(targets=len(claimed), alerts=alerts)

    def _fire(
        self, uow: FollowupUnitOfWork, batch: _Batch, target: DueTarget, loop: Loop, now: datetime
    ) -> int:
        assert target.due_at is not None  # a paused target has no next_fire_at
        due = target.due_at
        levels = uow.targets.lookup.ladder_for(loop.journey_key)
        if not target.breached and due <= now:
            target.breached = True
            self._breach(uow, batch, target, loop, due, now)
        fired = set(range(target.next_level))
        ready = due_levels(levels, due, now, fired)
        for index, level, late_by in ready:
            self._alert(uow, batch, target, loop, index, level, len(levels), late_by, now)
            target.next_level = index + 1
        target.next_fire_at = next_check_at(levels, due, target.breached, target.next_level)
        target.updated_at = now
        return len(ready)

    def _breach(
        self,
        uow: FollowupUnitOfWork,
        batch: _Batch,
        target: DueTarget,
        loop: Loop,
        due: datetime,
        now: datetime,
    ) -> None:
        late_by = int((now - due).total_seconds())
        if target.promise_id is None:
            detail = {"target": target.target, "due_at": _iso(due)}
            self._service.record(uow, loop, "SLA target missed", detail, None, now)
            return
        promise = batch.promises.get(target.promise_id)
        if promise is None or promise.status not in ("pending", "renegotiated"):
            return
        promise.status = next_promise_status(promise.status, "mark_overdue")  # type: ignore[arg-type]
        self._service.record(
            uow,
            loop,
            "promise overdue",
            {"promise_id": str(promise.id), "due_at": _iso(due), "late_by_seconds": late_by},
            None,
            now,
        )
        batch.emit(
            self._service,
            uow,
            loop,
            PromiseOverdueV1(
                **self._service.common(uow, loop, now, batch.complaint_ids[loop.id]),
                promise_id=promise.id,
                due_at=due,
                late_by_seconds=late_by,
            ),
        )
        log.warning(
            "promise overdue",
            extra={"loop_id": str(loop.id), "promise_id": str(promise.id), "late_by_s": late_by},
        )

    def _alert(
        self,
        uow: FollowupUnitOfWork,
        batch: _Batch,
        target: DueTarget,
        loop: Loop,
        index: int,
        level: LadderLevel,
        of: int,
        late_by: int,
        now: datetime,
    ) -> None:
        assert target.due_at is not None
        kind = alert_kind(target.target, level.offset)
        audience = audience_of(level.audience, loop.owner_key, loop.journey_manager)
        alert = Alert(
            id=new_id(),
            target_id=target.id,
            loop_id=loop.id,
            complaint_id=loop.complaint_id,
            journey_key=loop.journey_key,
            owner_key=loop.owner_key,
            target=target.target,
            promise_id=target.promise_id,
            due_at=target.due_at,
            level=index + 1,
            offset_minutes=int(level.offset / timedelta(minutes=1)),
            kind=kind,
            audience=audience,
            channel=level.channel,
            fired_at=now,
            late_by_seconds=late_by,
        )
        uow.session.add(alert)
        uow.session.add(
            Delivery(
                id=new_id(),
                alert_id=alert.id,
                channel_key=level.channel,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        self._service.record(
            uow,
            loop,
            "alert fired",
            {
                "alert_id": str(alert.id),
                "kind": kind,
                "target": target.target,
                "level": alert.level,
                "of": of,
                "audience": audience,
                "channel": level.channel,
                "late_by_seconds": late_by,
            },
            None,
            now,
        )
        if kind != "reminder":
            batch.emit(
                self._service,
                uow,
                loop,
                LoopEscalatedV1(
                    **self._service.common(uow, loop, now, batch.complaint_ids[loop.id]),
                    target=target.target,
                    level=alert.level,
                    audience=audience,
                    late_by_seconds=late_by,
                ),
            )
        ALERTS_FIRED.labels(self._name, kind).inc()
        FIRE_LAG.labels(self._name).observe((now - (target.due_at + level.offset)).total_seconds())
        log.info(
            "alert fired",
            extra={
                "loop_id": str(loop.id),
                "target": target.target,
                "ladder_level": alert.level,  # "level" is the log level
                "kind": kind,
                "audience": audience,
                "late_by_s": late_by,
            },
        )


@dataclass
class _Batch:
    """What one tick read up front, and the events it queues for one outbox insert."""

    complaint_ids: dict[uuid.UUID, list[uuid.UUID]]
    promises: dict[uuid.UUID, Promise]
    events: list[Envelope] = field(default_factory=list)

    def emit(
        self, service: FollowupService, uow: FollowupUnitOfWork, loop: Loop, event: EventModel
    ) -> None:
        with correlated(str(loop.complaint_id)):
            self.events.append(service.envelope(uow, loop, event))


def _lock_breached_promises(
    uow: FollowupUnitOfWork, targets: list[DueTarget], now: datetime
) -> dict[uuid.UUID, Promise]:
    """The promises this tick turns overdue, locked in one statement (after their loops)."""
    ids = [
        t.promise_id
        for t in targets
        if t.promise_id is not None and not t.breached and t.due_at is not None and t.due_at <= now
    ]
    if not ids:
        return {}
    rows = uow.session.scalars(select(Promise).where(Promise.id.in_(ids)).with_for_update())
    return {p.id: p for p in rows}


def _iso(at: datetime) -> str:
    return at.isoformat()

"""Journey metrics: a few grouped SQL queries, rolled up in Python into journey, stage and owner
figures.

Definitions (every figure is attributed to the loop's current journey, stage and owner, and
restricted to the loops the caller may see; the period is [from, to)):

- volume: loops opened in the period; complaints = the sum of their contacts.
- time to acknowledge / resolve: `acknowledged_at - opened_at` and `resolved_at - opened_at` of
  the loops opened in the period that have got there (median and p90 in seconds, interpolated
  linearly between the closest ranks, as numpy's default). After a reopening
  the loop carries its latest acknowledgement and resolution, so those count.
- promises: a promise counts when it is due in the period, not cancelled, and decided: its due
  time has passed (`due_at < now`) or it is kept already. Kept on time = kept with
  `kept_at <= due_at` (the due time agreed last, after any renegotiation).
  kept_rate = kept on time / counted promises.
- overdue now: loops opened at any time, neither resolved nor closed, with `next_due_at < now`
  (a promise or SLA target past due) — a snapshot, not limited to the period.
- escalations: alerts of kind overdue or sla_breach fired in the period (one per ladder level).
- repeat-contact rate: loops opened in the period with contacts > 1 / loops opened in the period.
- CSAT after closure: mean and count of `csat` over loops closed in the period that have one.
- top root causes: the five most frequent root causes of loops opened in the period.

SQLite has no percentile function, so the durations are fetched (three timestamps per loop of
the period) and the percentiles computed here; the period is capped at `MAX_PERIOD` to keep that
bounded. Counts and sums are aggregated in SQL at the finest grain (journey x stage x owner) and
only added up here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from services.followup.metrics_schemas import (
    CsatOut,
    DurationOut,
    FiguresOut,
    GroupRowOut,
    JourneyFiguresOut,
    JourneyMetricsOut,
    MetricsGroup,
    OwnerFiguresOut,
    PromisesOut,
    RefOut,
    RepeatContactsOut,
    RootCauseOut,
    VolumeOut,
)
from services.followup.models import Alert, Loop, Promise
from services.followup.service import FollowupUnitOfWork
from shared.auth import Principal
from shared.clock import Clock
from shared.errors import Unprocessable

DEFAULT_PERIOD = timedelta(days=30)
MAX_PERIOD = timedelta(days=366)
TOP_ROOT_CAUSES = 5
ESCALATION_KINDS = ("overdue", "sla_breach")
DONE = ("resolved", "closed")

# --- pure arithmetic --------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), interpolating linearly between closest ranks; None if empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 3)


def rate(part: int, whole: int) -> float | None:
    """part / whole to four decimals; None when there is nothing to divide by."""
    if whole <= 0:
        return None
    return round(part / whole, 4)


def mean(total: float, count: int) -> float | None:
    """total / count to two decimals; None when count is 0."""
    if count <= 0:
        return None
    return round(total / count, 2)


def top(counts: Counter[str], n: int = TOP_ROOT_CAUSES) -> list[tuple[str, int]]:
    """The n most frequent keys, ties by key, so the answer does not depend on fetch order."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def period(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """[from, to) from the query: to defaults to now, from to 30 days before to (422 if empty)."""
    to = end if end is not None else now
    since = start if start is not None else to - DEFAULT_PERIOD
    if to <= since:
        # Name the field the caller gave: with only `from`, `to` is the (default) now.
        name, other = ("to", "from") if end is not None else ("from", "to (now)")
        raise Unprocessable(
            "to must be after from", errors=[{"field": name, "message": f"must be after {other}"}]
        )
    if to - since > MAX_PERIOD:
        raise Unprocessable(
            f"the period may span at most {MAX_PERIOD.days} days",
            errors=[{"field": "from", "message": f"at most {MAX_PERIOD.days} days before to"}],
        )
    return since, to


@dataclass
class Cell:
    """What is known about one group of loops; cells add up into coarser groups."""

    loops: int = 0
    complaints: int = 0
    repeat: int = 0
    overdue_now: int = 0
    csat_count: int = 0
    csat_total: int = 0
    promises_due: int = 0
    promises_kept: int = 0
    escalations: int = 0
    to_acknowledge: list[float] = field(default_factory=list)
    to_resolve: list[float] = field(default_factory=list)
    root_causes: Counter[str] = field(default_factory=Counter)

    def add(self, other: Cell) -> None:
        self.loops += other.loops
        self.complaints += other.complaints
        self.repeat += other.repeat
        self.overdue_now += other.overdue_now
        self.csat_count += other.csat_count
        self.csat_total += other.csat_total
        self.promises_due += other.promises_due
        self.promises_kept += other.promises_kept
        self.escalations += other.escalations
        self.to_acknowledge.extend(other.to_acknowledge)
        self.to_resolve.extend(other.to_resolve)
        self.root_causes.update(other.root_causes)


def _duration(values: Sequence[float]) -> DurationOut:
    return DurationOut(
        count=len(values), median_s=percentile(values, 50), p90_s=percentile(values, 90)
    )


def figures(cell: Cell) -> dict[str, Any]:
    """A cell's figures as the fields of `FiguresOut`."""
    return {
        "volume": VolumeOut(loops=cell.loops, complaints=cell.complaints),
        "time_to_acknowledge": _duration(cell.to_acknowledge),
        "time_to_resolve": _duration(cell.to_resolve),
        "promises": PromisesOut(
            due=cell.promises_due,
            kept_on_time=cell.promises_kept,
            kept_rate=rate(cell.promises_kept, cell.promises_due),
        ),
        "overdue_now": cell.overdue_now,
        "escalations": cell.escalations,
        "repeat_contacts": RepeatContactsOut(loops=cell.repeat, rate=rate(cell.repeat, cell.loops)),
        "csat": CsatOut(count=cell.csat_count, mean=mean(cell.csat_total, cell.csat_count)),
        "top_root_causes": [RootCauseOut(root_cause=k, count=n) for k, n in top(cell.root_causes)],
    }


Key = tuple[str, str, str]  # journey, stage, owner


def roll_up(
    cells: dict[Key, Cell], group: MetricsGroup, names: dict[tuple[str, str], str]
) -> tuple[list[JourneyFiguresOut], list[OwnerFiguresOut]]:
    """Finest-grain cells into journey totals with a row per stage or owner, and owner totals."""
    journeys: dict[str, Cell] = {}
    rows: dict[tuple[str, str], Cell] = {}
    owners: dict[str, Cell] = {}
    for (journey, stage, owner), cell in cells.items():
        journeys.setdefault(journey, Cell()).add(cell)
        rows.setdefault((journey, stage if group == "stage" else owner), Cell()).add(cell)
        owners.setdefault(owner, Cell()).add(cell)

    def name(kind: str, key: str) -> str:
        return names.get((kind, key), key)

    out = [
        JourneyFiguresOut(
            journey=RefOut(key=j, name=name("journey", j)),
            totals=FiguresOut(**figures(journeys[j])),
            rows=[
                GroupRowOut(
                    key=k, name=k if group == "stage" else name("owner", k), **figures(rows[(j, k)])
                )
                for jj, k in sorted(rows)
                if jj == j
            ],
        )
        for j in sorted(journeys)
    ]
    by_owner = [
        OwnerFiguresOut(owner=RefOut(key=o, name=name("owner", o)), **figures(owners[o]))
        for o in sorted(owners)
    ]
    return out, by_owner


# --- queries ----------------------------------------------------------------------------------


def _scope(p: Principal, journey: str | None) -> list[ColumnElement[bool]]:
    """The loops the caller may see (as `_may_see`), narrowed to one journey if asked."""
    conditions: list[ColumnElement[bool]] = []
    if journey is not None:
        conditions.append(Loop.journey_key == journey)
    if p.is_admin:
        return conditions
    if p.role == "manager":
        conditions.append(Loop.journey_key.in_(p.journeys))
    else:
        conditions.append(Loop.owner_key == p.subject)
    return conditions


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


_KEYS = (Loop.journey_key, Loop.stage, Loop.owner_key)
_NAMES = (func.max(Loop.journey_name), func.max(Loop.owner_name))


class MetricsQuery:
    """Journey metrics for a principal over a period, read in one unit of work."""

    def __init__(self, uow_factory: Callable[[], FollowupUnitOfWork], clock: Clock) -> None:
        self._uow = uow_factory
        self._clock = clock

    def journeys(
        self,
        principal: Principal,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        journey: str | None = None,
        group: MetricsGroup = "stage",
    ) -> JourneyMetricsOut:
        """Figures per journey (totals and a row per stage or owner) and per owner."""
        now = self._clock.now()
        since, to = period(start, end, now)
        with self._uow() as uow:
            cells, names = _collect(uow.session, _scope(principal, journey), since, to, now)
        journeys, by_owner = roll_up(cells, group, names)
        return JourneyMetricsOut(
            from_=since, to=to, as_of=now, group=group, journeys=journeys, by_owner=by_owner
        )


def _collect(
    session: Session,
    scope: list[ColumnElement[bool]],
    since: datetime,
    to: datetime,
    now: datetime,
) -> tuple[dict[Key, Cell], dict[tuple[str, str], str]]:
    cells: dict[Key, Cell] = {}
    names: dict[tuple[str, str], str] = {}

    def cell(row: Iterable[Any]) -> Cell:
        journey, stage, owner, *_ = row
        return cells.setdefault((journey, stage, owner), Cell())

    def name(row: Sequence[Any]) -> None:
        names.setdefault(("journey", row[0]), row[3])
        names.setdefault(("owner", row[2]), row[4])

    opened = and_(Loop.opened_at >= since, Loop.opened_at < to)
    overdue = and_(Loop.next_due_at < now, Loop.status.not_in(DONE))
    scored = and_(Loop.closed_at >= since, Loop.closed_at < to, Loop.csat.is_not(None))
    loops = session.execute(
        select(
            *_KEYS,
            *_NAMES,
            _count_if(opened),
            func.sum(case((opened, Loop.contacts), else_=0)),
            _count_if(and_(opened, Loop.contacts > 1)),
            _count_if(overdue),
            _count_if(scored),
            func.sum(case((scored, Loop.csat), else_=0)),
        )
        .where(*scope, or_(opened, overdue, scored))
        .group_by(*_KEYS)
    )
    for row in loops:
        name(row)
        c = cell(row)
        c.loops, c.complaints, c.repeat, c.overdue_now, c.csat_count, c.csat_total = (
            int(v) for v in row[5:]
        )

    # The durations, for percentiles (bounded by the loops of one period, see the module doc).
    durations = session.execute(
        select(*_KEYS, Loop.opened_at, Loop.acknowledged_at, Loop.resolved_at).where(
            *scope,
            opened,
            or_(Loop.acknowledged_at.is_not(None), Loop.resolved_at.is_not(None)),
        )
    )
    for row in durations:
        c = cell(row)
        opened_at, acknowledged_at, resolved_at = row[3:]
        if acknowledged_at is not None:
            c.to_acknowledge.append((acknowledged_at - opened_at).total_seconds())
        if resolved_at is not None:
            c.to_resolve.append((resolved_at - opened_at).total_seconds())

    causes = session.execute(
        select(*_KEYS, Loop.root_cause, func.count())
        .where(*scope, opened, Loop.root_cause.is_not(None))
        .group_by(*_KEYS, Loop.root_cause)
    )
    for row in causes:
        cell(row).root_causes[str(row[3])] += int(row[4])

    decided = and_(
        Promise.due_at >= since,
        Promise.due_at < to,
        Promise.status != "cancelled",
        or_(Promise.due_at < now, Promise.status == "kept"),
    )
    on_time = and_(Promise.status == "kept", Promise.kept_at <= Promise.due_at)
    promises = session.execute(
        select(*_KEYS, *_NAMES, func.count(), _count_if(on_time))
        .select_from(Promise)
        .join(Loop, Loop.id == Promise.loop_id)
        .where(*scope, decided)
        .group_by(*_KEYS)
    )
    for row in promises:
        name(row)
        c = cell(row)
        c.promises_due, c.promises_kept = int(row[5]), int(row[6])

    alerts = session.execute(
        select(*_KEYS, *_NAMES, func.count())
        .select_from(Alert)
        .join(Loop, Loop.id == Alert.loop_id)
        .where(
            *scope,
            Alert.kind.in_(ESCALATION_KINDS),
            Alert.fired_at >= since,
            Alert.fired_at < to,
        )
        .group_by(*_KEYS)
    )
    for row in alerts:
        name(row)
        cell(row).escalations = int(row[5])
    return cells, names

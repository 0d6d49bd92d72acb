"""Pure follow-up rules: business-time arithmetic on calendars, SLA targets, the loop and promise
state machines and the escalation ladder. No I/O here: no database, web, broker or wall clock.

Business time is counted in real elapsed time (UTC instants) inside the working periods of a
calendar. A period is given in local wall-clock time and turned into real instants with one rule:
a wall-clock boundary is the *first instant at which the local clock reads that time or later*.

- Ambiguous times (clocks go back and read a time twice) take the first reading (``fold=0``): a
  period starting or ending at 01:30 on the fall-back night starts or ends at the earlier 01:30,
  and a period running through the repeated hour is an hour longer in real time.
- Nonexistent times (clocks jump forward over them) take the instant of the jump: a boundary at
  01:30 in a 01:00-02:00 gap is the instant the clocks jumped (02:00 after the jump), and a period
  running through the gap is an hour shorter in real time.

The rule is monotonic, so consecutive periods (e.g. 00:00-00:00 every day) tile with neither gap
nor overlap on any day.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

# --- calendars -------------------------------------------------------------------------------

Period = tuple[time, time]
Pause = tuple[datetime, datetime | None]

# How far ahead add_business_time looks for working time before giving up (a little over two
# years, so a once-a-year working day is still found).
SEARCH_HORIZON_DAYS = 732

_ONE_DAY = timedelta(days=1)
_MICROSECOND = timedelta(microseconds=1)
_FOREVER = datetime.max.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=64)
def _check_holiday_source(country: str, subdivision: str | None) -> None:
    """Raise ValueError unless the holidays package knows the country and subdivision."""
    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError as exc:  # the package's "no such country/subdivision"
        raise ValueError(str(exc)) from exc


@functools.lru_cache(maxsize=512)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """The public holidays (observed days included) of one country and year."""
    # Building a holidays object is slow; a calendar asks for the same year thousands of times.
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


@dataclass(frozen=True)
class Calendar:
    """Business hours: a time zone, weekly periods, public holidays by country and custom dates.

    ``weekly`` maps a weekday (0 = Monday) to its periods ``(opens, closes)`` in local wall-clock
    time. A period whose ``closes`` is at or before ``opens`` is overnight and runs into the next
    day (22:00-06:00); ``(00:00, 00:00)`` is a whole day.

    A period belongs to the day it *starts*: on a holiday no period starts, but an overnight
    period that started the evening before runs to its end. ``extra_working_days`` makes a
    holiday (public or custom) a working day again; it never adds hours to a day without periods.
    """

    tz: str
    weekly: Mapping[int, Sequence[Period]]
    country: str | None = None
    subdivision: str | None = None
    extra_holidays: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.tz!r}") from exc
        weekly: dict[int, list[Period]] = {}
        for day, periods in self.weekly.items():
            if day not in range(7):
                raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), not {day!r}")
            for period in periods:
                if len(period) != 2 or not all(isinstance(t, time) for t in period):
                    raise ValueError(f"a period is (opens, closes) as two times, not {period!r}")
                if any(t.tzinfo is not None for t in period):
                    raise ValueError("period times are local wall-clock times, without tzinfo")
            if periods:
                weekly[day] = sorted((opens, closes) for opens, closes in periods)
        if not weekly:
            raise ValueError("a calendar needs at least one working period in the week")
        if self.subdivision is not None and self.country is None:
            raise ValueError("a holiday subdivision needs a country")
        if self.country is not None:
            _check_holiday_source(self.country, self.subdivision)
        # Frozen: normalised copies go in through object.__setattr__.
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "weekly", weekly)
        object.__setattr__(self, "extra_holidays", frozenset(self.extra_holidays))
        object.__setattr__(self, "extra_working_days", frozenset(self.extra_working_days))

    @classmethod
    def always(cls, tz: str = "UTC") -> Calendar:
        """A 24/7 calendar without holidays."""
        return cls(tz=tz, weekly={day: [(time(0), time(0))] for day in range(7)})

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def is_holiday(self, day: date) -> bool:
        """True when no period starts on this local date because it is a holiday."""
        if day in self.extra_working_days:
            return False
        if day in self.extra_holidays:
            return True
        return self.country is not None and day in _public_holidays(
            self.country, self.subdivision, day.year
        )


class ClockPaused(Exception):
    """The business clock is stopped by an open-ended pause before the duration ran out."""

    def __init__(self, since: datetime, remaining: timedelta) -> None:
        super().__init__(f"business clock paused since {since.isoformat()}, {remaining} left")
        self.since = since
        self.remaining = remaining


def _as_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _wall_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The first instant at which the wall clock in `zone` reads `day` `at` or later."""
    local = datetime.combine(day, at, tzinfo=zone)  # fold=0: the first of two readings
    instant = local.astimezone(UTC)
    back = instant.astimezone(zone)
    if back.date() == day and back.time() == at:
        return instant
    # The clocks jumped over this reading. fold=1 reads it with the offset after the jump, which
    # lands before the jump; fold=0 with the offset before it, which lands after. The jump is the
    # first instant carrying the later offset: bisect for it (offsets change on whole seconds).
    before = local.replace(fold=1).astimezone(UTC)
    after = instant
    offset_after = after.astimezone(zone).utcoffset()
    while after - before > _MICROSECOND:
        middle = before + (after - before) // 2
        if middle.astimezone(zone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return after


def _raw_windows(cal: Calendar, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
    """Working periods of the local days first..last as UTC intervals, ordered by start."""
    # Every period of day d starts no later than day d+1's midnight, and periods within a day are
    # sorted, so starts come out in order across days (overnight periods may still overlap).
    zone = cal.zone
    day = first
    while day <= last:
        periods = cal.weekly.get(day.weekday())
        if periods and not cal.is_holiday(day):
            for opens, closes in periods:
                start = _wall_to_utc(day, opens, zone)
                end = _wall_to_utc(day if closes > opens else day + _ONE_DAY, closes, zone)
                if end > start:  # a period inside a DST gap has no real time at all
                    yield start, end
        day += _ONE_DAY


def _windows(
    cal: Calendar, start: datetime, last_day: date, end: datetime | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """Disjoint, ordered working intervals within [start, end), from local days up to last_day."""
    # Begin a day early: an overnight period from the evening before may still be running.
    first_day = start.astimezone(cal.zone).date() - _ONE_DAY
    covered = start
    for s, e in _raw_windows(cal, first_day, last_day):
        if end is not None and s >= end:
            return
        s = max(s, covered)
        if end is not None:
            e = min(e, end)
        if e > s:
            yield s, e
            covered = e


def _normalise_pauses(pauses: Iterable[Pause]) -> list[tuple[datetime, datetime]]:
    spans: list[tuple[datetime, datetime]] = []
    for since, until in pauses:
        a = _as_utc(since, "pause start")
        b = _FOREVER if until is None else _as_utc(until, "pause end")
        if b < a:
            raise ValueError(f"pause ends before it starts: {since.isoformat()} > {until}")
        if b > a:
            spans.append((a, b))
    spans.sort()
    merged: list[tuple[datetime, datetime]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _without_pauses(
    windows: Iterable[tuple[datetime, datetime]], pauses: Sequence[tuple[datetime, datetime]]
) -> Iterator[tuple[datetime, datetime]]:
    for ws, we in windows:
        cursor = ws
        for pa, pb in pauses:
            if pb <= cursor:
                continue
            if pa >= we:
                break
            if pa > cursor:
                yield cursor, pa
            cursor = max(cursor, pb)
            if cursor >= we:
                break
        if cursor < we:
            yield cursor, we


def add_business_time(
    cal: Calendar, start: datetime, duration: timedelta, pauses: Iterable[Pause] = ()
) -> datetime:
    """The earliest instant (UTC) by which `duration` of business time has elapsed since `start`.

    Counting starts at `start`, or at the next opening when `start` is outside working hours;
    time inside `pauses` ((since, until) with until None for "still paused") does not count.
    Raises ClockPaused when an open-ended pause stops the clock first, and ValueError when the
    calendar has no working time within SEARCH_HORIZON_DAYS.
    """
    origin = _as_utc(start, "start")
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    if not duration:
        return origin
    spans = _normalise_pauses(pauses)
    last_day = origin.astimezone(cal.zone).date() + timedelta(days=SEARCH_HORIZON_DAYS)
    remaining = duration
    for ws, we in _without_pauses(_windows(cal, origin, last_day), spans):
        if remaining <= we - ws:
            return ws + remaining
        remaining -= we - ws
    horizon = _wall_to_utc(last_day + _ONE_DAY, time(0), cal.zone)
    open_pause = next((a for a, b in spans if b == _FOREVER and a < horizon), None)
    if open_pause is not None:
        raise ClockPaused(open_pause, remaining)
    raise ValueError(
        f"calendar has less than {duration} of business time within {SEARCH_HORIZON_DAYS} days"
    )


def business_time_between(
    cal: Calendar, start: datetime, end: datetime, pauses: Iterable[Pause] = ()
) -> timedelta:
    """Business time elapsed from `start` to `end`, pauses excluded; negative if end < start."""
    a, b = _as_utc(start, "start"), _as_utc(end, "end")
    if b < a:
        return -business_time_between(cal, end, start, pauses)
    last_day = b.astimezone(cal.zone).date()
    total = timedelta(0)
    for ws, we in _without_pauses(_windows(cal, a, last_day, b), _normalise_pauses(pauses)):
        total += we - ws
    return total


# --- SLA policies ----------------------------------------------------------------------------

SlaTarget = Literal["acknowledge", "first_promise", "resolve"]
SLA_TARGETS: tuple[SlaTarget, ...] = get_args(SlaTarget)


@dataclass(frozen=True)
class SlaPolicy:
    """Per journey x severity: how much business time each step may take from the loop opening."""

    acknowledge_within: timedelta
    first_promise_within: timedelta
    resolve_within: timedelta

    def __post_init__(self) -> None:
        durations = (self.acknowledge_within, self.first_promise_within, self.resolve_within)
        if any(d < timedelta(0) for d in durations):
            raise ValueError("SLA durations must not be negative")

    def within(self, target: SlaTarget) -> timedelta:
        """The business time allowed for one target."""
        return {
            "acknowledge": self.acknowledge_within,
            "first_promise": self.first_promise_within,
            "resolve": self.resolve_within,
        }[target]


def sla_targets(
    policy: SlaPolicy, cal: Calendar, opened_at: datetime, pauses: Iterable[Pause] = ()
) -> dict[SlaTarget, datetime | None]:
    """Due instants (UTC) of every SLA target of a loop opened at `opened_at`.

    A target is None while an open-ended pause (waiting on the customer) has stopped its clock:
    it has no due time until the pause ends and the targets are recomputed.
    """
    spans = list(pauses)
    due: dict[SlaTarget, datetime | None] = {}
    for target in SLA_TARGETS:
        try:
            due[target] = add_business_time(cal, opened_at, policy.within(target), spans)
        except ClockPaused:
            due[target] = None
    return due


# --- loop and promise state machines -------------------------------------------------------

LoopStatus = Literal["open", "acknowledged", "promised", "resolved", "closed", "reopened"]
LoopAction = Literal[
    "acknowledge",
    "make_promise",
    "keep_promise",
    "resolve",
    "close",
    "reopen",
    "join",
    "reassign",
    "note",
]
LOOP_STATUSES: tuple[LoopStatus, ...] = get_args(LoopStatus)
LOOP_ACTIONS: tuple[LoopAction, ...] = get_args(LoopAction)
_NOT_CLOSED: tuple[LoopStatus, ...] = tuple(s for s in LOOP_STATUSES if s != "closed")


class IllegalTransition(Exception):
    """An action not allowed in the current status; the service answers it with a 409."""

    # shared.errors.InvalidTransition imports FastAPI, which domain modules must not; the
    # service layer turns this into that 409 problem.
    http_status: ClassVar[int] = 409

    def __init__(self, machine: str, current: str, action: str) -> None:
        super().__init__(f"cannot {action} a {machine} that is {current}")
        self.machine = machine
        self.current = current
        self.action = action


# (status, action) -> new status. A pair missing from the table is illegal (409).
TRANSITIONS: dict[tuple[LoopStatus, LoopAction], LoopStatus] = {
    ("open", "acknowledge"): "acknowledged",
    ("reopened", "acknowledge"): "acknowledged",
    # A promise to the customer implies the loop was acknowledged (the service stamps it).
    ("open", "make_promise"): "promised",
    ("acknowledged", "make_promise"): "promised",
    ("promised", "make_promise"): "promised",
    ("reopened", "make_promise"): "promised",
    # Keeping a promise never moves the loop back; open has no promises, closed is done.
    ("acknowledged", "keep_promise"): "acknowledged",
    ("promised", "keep_promise"): "promised",
    ("resolved", "keep_promise"): "resolved",
    ("reopened", "keep_promise"): "reopened",
    # Resolving implies acknowledgement too: a first-contact fix needs no separate acknowledge.
    ("open", "resolve"): "resolved",
    ("acknowledged", "resolve"): "resolved",
    ("promised", "resolve"): "resolved",
    ("reopened", "resolve"): "resolved",
    # Only the customer closes: they confirmed the resolution.
    ("resolved", "close"): "closed",
    # Not resolved after all, or a new complaint within the reopen window (checked by the caller).
    ("resolved", "reopen"): "reopened",
    ("closed", "reopen"): "reopened",
    # A repeat complaint joins a loop that is not closed; the loop keeps its status (the caller
    # decides separately whether it means "not resolved" and reopens).
    **{(s, "join"): s for s in _NOT_CLOSED},
    **{(s, "reassign"): s for s in _NOT_CLOSED},
    **{(s, "note"): s for s in _NOT_CLOSED},
}


def next_status(status: LoopStatus, action: LoopAction) -> LoopStatus:
    """The loop status after `action`; IllegalTransition (409) when not allowed."""
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise IllegalTransition("loop", status, action) from None


def allowed_actions(status: LoopStatus) -> tuple[LoopAction, ...]:
    """The actions the loop table allows in `status` (e.g. for the console's buttons)."""
    return tuple(a for a in LOOP_ACTIONS if (status, a) in TRANSITIONS)


PromiseStatus = Literal["pending", "kept", "overdue", "renegotiated", "cancelled"]
PromiseAction = Literal["keep", "mark_overdue", "renegotiate", "cancel"]
PROMISE_STATUSES: tuple[PromiseStatus, ...] = get_args(PromiseStatus)
PROMISE_ACTIONS: tuple[PromiseAction, ...] = get_args(PromiseAction)

# kept and cancelled are final. A renegotiated promise has a new due time and behaves like a
# pending one; an overdue one can still be kept (late) but never goes overdue twice.
PROMISE_TRANSITIONS: dict[tuple[PromiseStatus, PromiseAction], PromiseStatus] = {
    ("pending", "keep"): "kept",
    ("pending", "mark_overdue"): "overdue",
    ("pending", "renegotiate"): "renegotiated",
    ("pending", "cancel"): "cancelled",
    ("overdue", "keep"): "kept",
    ("overdue", "renegotiate"): "renegotiated",
    ("overdue", "cancel"): "cancelled",
    ("renegotiated", "keep"): "kept",
    ("renegotiated", "mark_overdue"): "overdue",
    ("renegotiated", "renegotiate"): "renegotiated",
    ("renegotiated", "cancel"): "cancelled",
}


def next_promise_status(status: PromiseStatus, action: PromiseAction) -> PromiseStatus:
    """The promise status after `action`; IllegalTransition (409) when not allowed."""
    try:
        return PROMISE_TRANSITIONS[(status, action)]
    except KeyError:
        raise IllegalTransition("promise", status, action) from None


# --- escalation ladder ---------------------------------------------------------------------


@dataclass(frozen=True)
class LadderLevel:
    """One rung: fires at due time + offset (negative: a reminder before it is due)."""

    offset: timedelta
    audience: str
    channel: str


def due_levels(
    levels: Sequence[LadderLevel], due_at: datetime, now: datetime, fired: AbstractSet[int]
) -> list[tuple[int, LadderLevel, int]]:
    """(index, level, seconds late) of every level due by `now` and not yet fired, oldest first.

    Each level is returned once whatever the gap since the last tick, so after downtime every
    missed level fires exactly once and can say how late it is. `fired` holds indices into
    `levels`.
    """
    due, at = _as_utc(due_at, "due_at"), _as_utc(now, "now")
    ready = [
        (due + level.offset, index, level)
        for index, level in enumerate(levels)
        if index not in fired and due + level.offset <= at
    ]
    ready.sort(key=lambda r: (r[0], r[1]))
    return [(index, level, (at - when) // timedelta(seconds=1)) for when, index, level in ready]


def next_fire_at(
    levels: Sequence[LadderLevel], due_at: datetime, fired: AbstractSet[int]
) -> datetime | None:
    """When the next unfired level fires (UTC), or None once every level has fired."""
    due = _as_utc(due_at, "due_at")
    pending = [due + level.offset for index, level in enumerate(levels) if index not in fired]
    return min(pending, default=None)


def first_level_to_fire(levels: Sequence[LadderLevel], due_at: datetime, armed_at: datetime) -> int:
    """Index of the first level to fire for a target armed (made, moved) at `armed_at`.

    A reminder whose time had already passed when the target was armed is skipped: reminding
    the owner of a promise made a minute before it is due helps nobody. Levels at or after the
    due time always fire, however late. `levels` must be sorted by offset.
    """
    due, armed = _as_utc(due_at, "due_at"), _as_utc(armed_at, "armed_at")
    index = 0
    while (
        index < len(levels)
        and levels[index].offset < timedelta(0)
        and due + levels[index].offset <= armed
    ):
        index += 1
    return index


def next_check_at(
    levels: Sequence[LadderLevel], due_at: datetime, breached: bool, next_level: int
) -> datetime | None:
    """When the scheduler must next look at a target: its due time until it is breached, or the
    next unfired level (levels sorted by offset); None when nothing is left to do."""
    due = _as_utc(due_at, "due_at")
    candidates = [] if breached else [due]
    if next_level < len(levels):
        candidates.append(due + levels[next_level].offset)
    return min(candidates, default=None)


def audience_of(spec: str, owner: str, journey_manager: str | None) -> str:
    """A ladder audience made concrete for one loop: "owner" -> "owner:<key>", "journey_manager"
    -> "manager:<key>" (the admins when the journey has no manager); "person:"/"role:" as is."""
    if spec == "owner":
        return f"owner:{owner}"
    if spec == "journey_manager":
        return f"manager:{journey_manager}" if journey_manager else "role:admin"
    return spec


def alert_kind(target: str, offset: timedelta) -> str:
    """reminder before the due time; overdue (a promise) or sla_breach (an SLA target) after."""
    if offset < timedelta(0):
        return "reminder"
    return "overdue" if target.startswith("promise:") else "sla_breach"

"""Reads the SLA and escalation configuration as the pure domain's objects.

Lookups fall back from the specific to the general: an SLA policy for (journey, severity), then
(journey, "*"), ("*", severity) and ("*", "*"); a ladder for the journey, then "*". One lookup
lives for one unit of work and caches what it read, so a scheduler tick reads each row once.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.followup.domain import Calendar, LadderLevel, SlaPolicy
from services.followup.models import CalendarRow, LadderRow, SlaPolicyRow

ANY = "*"


def parse_time(value: str) -> time:
    """ "HH:MM" (or "24:00" for the end of the day) as a local wall-clock time."""
    if value == "24:00":
        return time(0)
    return time.fromisoformat(value)


def calendar_of(
    tz: str,
    weekly: dict[str, Any],
    country: str | None = None,
    subdivision: str | None = None,
    holidays: list[str] | None = None,
    working_days: list[str] | None = None,
) -> Calendar:
    """The domain calendar of a stored or submitted one; ValueError when it is not valid."""
    return Calendar(
        tz=tz,
        weekly={
            int(day): [(parse_time(opens), parse_time(closes)) for opens, closes in periods]
            for day, periods in weekly.items()
        },
        country=country,
        subdivision=subdivision,
        extra_holidays=frozenset(date.fromisoformat(d) for d in holidays or []),
        extra_working_days=frozenset(date.fromisoformat(d) for d in working_days or []),
    )


def calendar_from_row(row: CalendarRow) -> Calendar:
    return calendar_of(
        row.tz, row.weekly, row.country, row.subdivision, row.holidays, row.working_days
    )


def ladder_levels(levels: list[dict[str, Any]]) -> list[LadderLevel]:
    """Stored levels as domain levels, earliest first (the scheduler fires them in this order)."""
    out = [
        LadderLevel(
            offset=timedelta(minutes=int(level["offset_minutes"])),
            audience=str(level["audience"]),
            channel=str(level["channel"]),
        )
        for level in levels
    ]
    return sorted(out, key=lambda level: level.offset)


class PolicyLookup:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._calendars: dict[str, Calendar] = {}
        self._policies: dict[tuple[str, str], tuple[SlaPolicy, Calendar] | None] = {}
        self._ladders: dict[str, list[LadderLevel]] = {}

    def sla_for(self, journey: str, severity: str) -> tuple[SlaPolicy, Calendar] | None:
        """The SLA policy and its calendar for a journey and severity, or None if none applies."""
        key = (journey, severity)
        if key not in self._policies:
            rows = self._session.scalars(
                select(SlaPolicyRow).where(
                    SlaPolicyRow.journey_key.in_((journey, ANY)),
                    SlaPolicyRow.severity.in_((severity, ANY)),
                )
            ).all()
            # The most specific wins: a named journey beats "*", then a named severity.
            best = max(
                rows,
                key=lambda r: (r.journey_key != ANY, r.severity != ANY),
                default=None,
            )
            self._policies[key] = None if best is None else self._policy(best)
        return self._policies[key]

    def ladder_for(self, journey: str) -> list[LadderLevel]:
        """The escalation levels of a journey (its own, else the default), earliest first."""
        if journey not in self._ladders:
            rows = {
                r.journey_key: r
                for r in self._session.scalars(
                    select(LadderRow).where(LadderRow.journey_key.in_((journey, ANY)))
                )
            }
            row = rows.get(journey) or rows.get(ANY)
            self._ladders[journey] = [] if row is None else ladder_levels(row.levels)
        return self._ladders[journey]

    def _policy(self, row: SlaPolicyRow) -> tuple[SlaPolicy, Calendar]:
        if row.calendar_key not in self._calendars:
            cal_row = self._session.get(CalendarRow, row.calendar_key)
            assert cal_row is not None  # a foreign key guarantees it
            self._calendars[row.calendar_key] = calendar_from_row(cal_row)
        policy = SlaPolicy(
            acknowledge_within=timedelta(minutes=row.acknowledge_minutes),
            first_promise_within=timedelta(minutes=row.first_promise_minutes),
            resolve_within=timedelta(minutes=row.resolve_minutes),
        )
        return policy, self._calendars[row.calendar_key]

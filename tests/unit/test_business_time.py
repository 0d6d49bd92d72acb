"""Business-time arithmetic on calendars: hours, holidays, midnight, DST, pauses, SLA targets."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.followup.domain import (
    SEARCH_HORIZON_DAYS,
    Calendar,
    ClockPaused,
    SlaPolicy,
    add_business_time,
    business_time_between,
    sla_targets,
)

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
LONDON = "Europe/London"
NEW_YORK = "America/New_York"
WEEKDAYS = range(5)


def at(local: str, tz: str = LONDON) -> datetime:
    """A local wall-clock reading (first one if ambiguous) as an aware UTC instant."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def office(tz: str = LONDON, **kwargs: Any) -> Calendar:
    """Monday to Friday, 09:00-17:00."""
    return Calendar(tz, {d: [(time(9), time(17))] for d in WEEKDAYS}, **kwargs)


def nightly(tz: str = LONDON, days: range = range(7), **kwargs: Any) -> Calendar:
    """22:00-06:00 starting on each of `days`."""
    return Calendar(tz, {d: [(time(22), time(6))] for d in days}, **kwargs)


# --- office hours, weekends, midnight -------------------------------------------------------


def test_two_hours_from_friday_afternoon_lands_on_monday_morning() -> None:
    cal = office()
    assert add_business_time(cal, at("2026-01-16T16:00"), 2 * H) == at("2026-01-19T10:00")
    # Same in summer time: the answer is local 10:00, i.e. 09:00 UTC.
    assert add_business_time(cal, at("2026-06-12T16:00"), 2 * H) == utc("2026-06-15T09:00")


def test_result_is_aware_utc() -> None:
    due = add_business_time(office(), at("2026-01-16T16:00"), 2 * H)
    assert due.tzinfo is UTC


@pytest.mark.parametrize("start", ["2026-01-17T11:00", "2026-01-18T23:59", "2026-01-19T06:00"])
@pytest.mark.parametrize("hours", [1, 3, 8])
def test_counting_starts_at_the_next_opening(start: str, hours: int) -> None:
    cal = office()
    assert add_business_time(cal, at(start), hours * H) == at("2026-01-19T09:00") + hours * H


def test_a_duration_ending_at_closing_time_is_due_at_closing_not_next_morning() -> None:
    cal = office()
    assert add_business_time(cal, at("2026-01-14T09:00"), 8 * H) == at("2026-01-14T17:00")
    assert add_business_time(cal, at("2026-01-14T09:00"), 8 * H + MIN) == at("2026-01-15T09:01")


def test_zero_duration_is_due_at_once() -> None:
    assert add_business_time(office(), at("2026-01-17T11:00"), timedelta(0)) == at(
        "2026-01-17T11:00"
    )


def test_between_counts_only_working_hours() -> None:
    cal = office()
    # Friday 16:00 to Monday 10:00: one hour on Friday, one on Monday.
    assert business_time_between(cal, at("2026-01-16T16:00"), at("2026-01-19T10:00")) == 2 * H
    # A whole week.
    assert business_time_between(cal, at("2026-01-12T00:00"), at("2026-01-19T00:00")) == 40 * H
    # Entirely over the weekend.
    assert business_time_between(cal, at("2026-01-17T08:00"), at("2026-01-18T20:00")) == H * 0
    # Reversed order gives the negative.
    assert business_time_between(cal, at("2026-01-19T10:00"), at("2026-01-16T16:00")) == -2 * H


def test_period_ending_at_midnight_runs_into_the_next_day_boundary() -> None:
    cal = Calendar(LONDON, {4: [(time(18), time(0))], 0: [(time(0), time(8))]})
    # Friday 23:00 + 2 h: one hour until midnight, then Monday 00:00-01:00.
    assert add_business_time(cal, at("2026-01-16T23:00"), 2 * H) == at("2026-01-19T01:00")
    assert business_time_between(cal, at("2026-01-16T00:00"), at("2026-01-20T00:00")) == 14 * H


def test_split_day_skips_lunch() -> None:
    cal = Calendar(LONDON, {d: [(time(13), time(17)), (time(9), time(12))] for d in WEEKDAYS})
    assert add_business_time(cal, at("2026-01-14T11:00"), 2 * H) == at("2026-01-14T14:00")
    assert add_business_time(cal, at("2026-01-14T11:30"), 30 * MIN) == at("2026-01-14T12:00")
    assert add_business_time(cal, at("2026-01-14T12:30"), H) == at("2026-01-14T14:00")
    assert business_time_between(cal, at("2026-01-14T11:00"), at("2026-01-14T14:00")) == 2 * H
    assert business_time_between(cal, at("2026-01-14T00:00"), at("2026-01-15T00:00")) == 7 * H


def test_overlapping_periods_are_not_counted_twice() -> None:
    cal = Calendar(LONDON, {2: [(time(9), time(13)), (time(12), time(17))]})
    assert business_time_between(cal, at("2026-01-14T00:00"), at("2026-01-15T00:00")) == 8 * H
    assert add_business_time(cal, at("2026-01-14T09:00"), 8 * H) == at("2026-01-14T17:00")


def test_overnight_period_crosses_midnight() -> None:
    cal = nightly()
    assert add_business_time(cal, at("2026-01-12T23:00"), 2 * H) == at("2026-01-13T01:00")
    assert add_business_time(cal, at("2026-01-13T05:00"), 2 * H) == at("2026-01-13T23:00")
    assert business_time_between(cal, at("2026-01-12T12:00"), at("2026-01-13T12:00")) == 8 * H


def test_overnight_period_started_on_friday_runs_into_saturday() -> None:
    cal = nightly(days=range(4, 5))  # only Friday night
    assert add_business_time(cal, at("2026-01-17T05:00"), 2 * H) == at("2026-01-23T23:00")
    assert business_time_between(cal, at("2026-01-17T00:00"), at("2026-01-18T00:00")) == 6 * H


def test_overnight_overlapping_next_mornings_period() -> None:
    cal = Calendar(LONDON, {0: [(time(22), time(6))], 1: [(time(0), time(8))]})
    # Monday 22:00 to Tuesday 08:00 is one stretch of 10 hours, not 14.
    assert business_time_between(cal, at("2026-01-12T00:00"), at("2026-01-14T00:00")) == 10 * H
    assert add_business_time(cal, at("2026-01-12T22:00"), 10 * H) == at("2026-01-13T08:00")


# --- holidays --------------------------------------------------------------------------------


def test_uk_christmas_and_observed_boxing_day_are_skipped() -> None:
    cal = office(country="GB", subdivision="ENG")
    # Thu 24 Dec 16:00 + 2 h: Fri 25 (Christmas), weekend, Mon 28 (Boxing Day observed).
    assert add_business_time(cal, at("2026-12-24T16:00"), 2 * H) == at("2026-12-29T10:00")
    # Without a holiday country Christmas Day is an ordinary Friday.
    assert add_business_time(office(), at("2026-12-24T16:00"), 2 * H) == at("2026-12-25T10:00")


def test_easter_holidays_in_summer_time() -> None:
    cal = office(country="GB", subdivision="ENG")
    # Thu 2 Apr 16:00 BST + 2 h: Good Friday, weekend, Easter Monday -> Tue 7 Apr 10:00 BST.
    assert add_business_time(cal, at("2026-04-02T16:00"), 2 * H) == utc("2026-04-07T09:00")


def test_holidays_follow_the_subdivision() -> None:
    england = office(country="GB", subdivision="ENG")
    scotland = office(country="GB", subdivision="SCT")
    first_monday_august = at("2026-08-03T09:00"), at("2026-08-04T09:00")
    assert business_time_between(england, *first_monday_august) == 8 * H
    assert business_time_between(scotland, *first_monday_august) == 0 * H
    last_monday_august = at("2026-08-31T09:00"), at("2026-09-01T09:00")
    assert business_time_between(england, *last_monday_august) == 0 * H
    assert business_time_between(scotland, *last_monday_august) == 8 * H


def test_us_holiday_in_new_york() -> None:
    cal = office(NEW_YORK, country="US", subdivision="NY")
    # Fri 16 Jan 16:00 EST + 2 h: Monday 19 Jan is Martin Luther King Jr. Day.
    assert add_business_time(cal, at("2026-01-16T16:00", NEW_YORK), 2 * H) == at(
        "2026-01-20T10:00", NEW_YORK
    )


def test_custom_extra_holiday_is_skipped() -> None:
    cal = office(extra_holidays=frozenset({date(2026, 1, 14)}))
    assert add_business_time(cal, at("2026-01-13T16:00"), 2 * H) == at("2026-01-15T10:00")
    assert business_time_between(cal, at("2026-01-12T00:00"), at("2026-01-19T00:00")) == 32 * H


def test_extra_working_day_overrides_a_holiday() -> None:
    cal = office(
        country="GB",
        subdivision="ENG",
        extra_holidays=frozenset({date(2026, 12, 29)}),
        extra_working_days=frozenset({date(2026, 12, 28), date(2026, 12, 29)}),
    )
    assert add_business_time(cal, at("2026-12-24T16:00"), 2 * H) == at("2026-12-28T10:00")
    assert cal.is_holiday(date(2026, 12, 25))
    assert not cal.is_holiday(date(2026, 12, 29))


def test_overnight_period_belongs_to_the_day_it_starts() -> None:
    cal = nightly(extra_holidays=frozenset({date(2026, 12, 25)}))
    # 24 Dec 22:00 -> 25 Dec 06:00 runs (started the day before the holiday); the night starting
    # on the 25th does not; the night starting on the 26th does.
    assert business_time_between(cal, at("2026-12-24T12:00"), at("2026-12-26T12:00")) == 8 * H
    assert add_business_time(cal, at("2026-12-25T05:00"), 2 * H) == at("2026-12-26T23:00")


def test_holiday_lookup_is_cached_per_year() -> None:
    from services.followup import domain

    domain._public_holidays.cache_clear()
    cal = office(country="GB", subdivision="ENG")
    business_time_between(cal, at("2026-01-02T00:00"), at("2027-12-31T00:00"))
    info = domain._public_holidays.cache_info()
    assert info.misses == 2  # 2026 and 2027, built once each
    assert info.hits > 300


# --- daylight saving time ------------------------------------------------------------------


def test_always_is_real_elapsed_time_across_spring_forward() -> None:
    cal = Calendar.always(LONDON)
    # The local day of 29 Mar 2026 has 23 hours.
    assert business_time_between(cal, at("2026-03-29T00:00"), at("2026-03-30T00:00")) == 23 * H
    # 00:30 GMT + 1 h is 01:30 UTC, which the clocks show as 02:30 BST.
    due = add_business_time(cal, utc("2026-03-29T00:30"), H)
    assert due == utc("2026-03-29T01:30")
    assert due.astimezone(ZoneInfo(LONDON)).time() == time(2, 30)


def test_always_is_real_elapsed_time_across_fall_back() -> None:
    cal = Calendar.always(LONDON)
    assert business_time_between(cal, at("2026-10-25T00:00"), at("2026-10-26T00:00")) == 25 * H
    assert add_business_time(cal, utc("2026-10-24T23:30"), 3 * H) == utc("2026-10-25T02:30")


def test_overnight_period_on_spring_forward_night_is_seven_real_hours() -> None:
    cal = nightly()
    # Sat 28 Mar 22:00 GMT (22:00 UTC) to Sun 29 Mar 06:00 BST (05:00 UTC).
    assert business_time_between(cal, utc("2026-03-28T12:00"), utc("2026-03-29T12:00")) == 7 * H
    assert add_business_time(cal, at("2026-03-28T22:00"), 7 * H) == utc("2026-03-29T05:00")
    # One more minute: the next night, Sun 29 Mar 22:00 BST = 21:00 UTC.
    assert add_business_time(cal, at("2026-03-28T22:00"), 7 * H + MIN) == utc("2026-03-29T21:01")


def test_overnight_period_on_fall_back_night_is_nine_real_hours() -> None:
    cal = nightly()
    # Sat 24 Oct 22:00 BST (21:00 UTC) to Sun 25 Oct 06:00 GMT (06:00 UTC).
    assert business_time_between(cal, utc("2026-10-24T12:00"), utc("2026-10-25T12:00")) == 9 * H
    assert add_business_time(cal, at("2026-10-24T22:00"), 9 * H) == utc("2026-10-25T06:00")
    assert add_business_time(cal, at("2026-10-24T22:00"), 3 * H) == utc("2026-10-25T00:00")


def test_office_hours_on_the_monday_after_a_dst_change_are_eight_hours() -> None:
    cal = office()
    assert business_time_between(cal, at("2026-03-30T00:00"), at("2026-03-31T00:00")) == 8 * H
    assert business_time_between(cal, at("2026-10-26T00:00"), at("2026-10-27T00:00")) == 8 * H
    # Friday before spring forward 16:00 GMT + 2 h -> Monday 10:00 BST = 09:00 UTC.
    assert add_business_time(cal, at("2026-03-27T16:00"), 2 * H) == utc("2026-03-30T09:00")


def test_boundary_inside_the_spring_forward_gap_is_the_jump() -> None:
    # 01:30 does not exist on 29 Mar 2026 in London: the period starts when the clocks jump
    # (01:00 UTC, reading 02:00 BST) and 01:30-03:00 is one real hour.
    cal = Calendar(LONDON, {6: [(time(1, 30), time(3))]})
    assert business_time_between(cal, utc("2026-03-29T00:00"), utc("2026-03-29T06:00")) == H
    assert add_business_time(cal, utc("2026-03-29T00:00"), 30 * MIN) == utc("2026-03-29T01:30")
    # A period entirely inside the gap has no real time.
    empty = Calendar(LONDON, {6: [(time(1, 15), time(1, 45))]})
    assert business_time_between(empty, utc("2026-03-29T00:00"), utc("2026-03-30T00:00")) == 0 * H


def test_ambiguous_boundary_on_fall_back_uses_the_first_reading() -> None:
    # 01:30 happens twice on 25 Oct 2026 in London: the period starts at the first (00:30 UTC)
    # and runs to 03:00 GMT: 2.5 real hours.
    cal = Calendar(LONDON, {6: [(time(1, 30), time(3))]})
    assert business_time_between(cal, utc("2026-10-25T00:00"), utc("2026-10-25T06:00")) == 150 * MIN
    assert add_business_time(cal, utc("2026-10-25T00:00"), 30 * MIN) == utc("2026-10-25T01:00")
    # A period ending at an ambiguous time ends at its first reading.
    ends = Calendar(LONDON, {5: [(time(22), time(1, 30))]})
    assert (
        business_time_between(ends, utc("2026-10-24T12:00"), utc("2026-10-25T12:00")) == 210 * MIN
    )


def test_new_york_dst_office_hours_and_days() -> None:
    cal = office(NEW_YORK)
    # Fri 6 Mar 16:00 EST (21:00 UTC) + 2 h -> Mon 9 Mar 10:00 EDT (14:00 UTC).
    assert add_business_time(cal, utc("2026-03-06T21:00"), 2 * H) == utc("2026-03-09T14:00")
    # Fri 30 Oct 16:00 EDT (20:00 UTC) + 2 h -> Mon 2 Nov 10:00 EST (15:00 UTC).
    assert add_business_time(cal, utc("2026-10-30T20:00"), 2 * H) == utc("2026-11-02T15:00")
    always = Calendar.always(NEW_YORK)
    day = business_time_between
    assert day(always, at("2026-03-08T00:00", NEW_YORK), at("2026-03-09T00:00", NEW_YORK)) == 23 * H
    assert day(always, at("2026-11-01T00:00", NEW_YORK), at("2026-11-02T00:00", NEW_YORK)) == 25 * H
    # The night shift across spring forward (02:00 -> 03:00) is an hour shorter.
    night = nightly(NEW_YORK)
    assert day(night, utc("2026-03-07T12:00"), utc("2026-03-08T12:00")) == 7 * H


def test_midnight_dst_gap_still_tiles_days() -> None:
    # Chile springs forward at midnight (00:00 -> 01:00 on 6 Sep 2026): midnight does not exist,
    # yet a 24/7 calendar loses no time and counts none twice.
    cal = Calendar.always("America/Santiago")
    start, end = utc("2026-09-04T00:00"), utc("2026-09-08T00:00")
    assert business_time_between(cal, start, end) == end - start
    assert add_business_time(cal, start, 96 * H) == end


# --- an independent oracle: minute by minute over DST weekends -------------------------------


def in_business(cal: Calendar, instant: datetime) -> bool:
    """Is the wall-clock reading at `instant` inside a period of a non-holiday day?"""
    local = instant.astimezone(cal.zone)
    wall, today = local.time(), local.date()
    yesterday = today - timedelta(days=1)
    for day, same_day in ((today, True), (yesterday, False)):
        if cal.is_holiday(day):
            continue
        for opens, closes in cal.weekly.get(day.weekday(), []):
            overnight = closes <= opens
            if same_day and (opens <= wall < closes or (overnight and wall >= opens)):
                return True
            if not same_day and overnight and wall < closes:
                return True
    return False


ORACLE_CALENDARS = {
    "office": office(country="GB", subdivision="ENG"),
    "split": Calendar(LONDON, {d: [(time(9), time(12)), (time(13), time(17))] for d in range(6)}),
    "nightly": nightly(extra_holidays=frozenset({date(2026, 3, 29)})),
    "always": Calendar.always(LONDON),
    "new-york": Calendar(
        NEW_YORK, {d: [(time(20), time(4)), (time(8), time(12))] for d in range(7)}
    ),
}
ORACLE_WINDOWS = {
    "spring": ("2026-03-26T00:00", "2026-04-01T00:00"),
    "autumn": ("2026-10-22T00:00", "2026-10-28T00:00"),
    "us-spring": ("2026-03-06T00:00", "2026-03-10T00:00"),
    "us-autumn": ("2026-10-30T00:00", "2026-11-03T00:00"),
}


@pytest.mark.parametrize("name", ORACLE_CALENDARS)
@pytest.mark.parametrize("window", ORACLE_WINDOWS)
def test_matches_minute_by_minute_oracle(name: str, window: str) -> None:
    cal = ORACLE_CALENDARS[name]
    first, last = (utc(t) for t in ORACLE_WINDOWS[window])
    minutes = [first + i * MIN for i in range(int((last - first) / MIN))]
    working = [m for m in minutes if in_business(cal, m)]
    assert business_time_between(cal, first, last) == len(working) * MIN
    # Adding k minutes lands at the end of the k-th working minute.
    rng = random.Random(f"{name}/{window}")
    for k in sorted(rng.sample(range(1, len(working) + 1), min(20, len(working)))):
        assert add_business_time(cal, first, k * MIN) == working[k - 1] + MIN


# --- round trip property ----------------------------------------------------------------------

ROUND_TRIP_CALENDARS = [
    *ORACLE_CALENDARS.values(),
    Calendar("Australia/Lord_Howe", {d: [(time(1), time(3))] for d in range(7)}),
    Calendar("America/Santiago", {d: [(time(23), time(1))] for d in WEEKDAYS}),
    Calendar(
        "Asia/Kolkata",
        {0: [(time(9, 30), time(18))], 5: [(time(10), time(13))]},
        country="IN",
        extra_holidays=frozenset({date(2026, 5, 4)}),
    ),
]


@pytest.mark.parametrize("cal", ROUND_TRIP_CALENDARS, ids=lambda c: c.tz)
def test_between_inverts_add(cal: Calendar) -> None:
    rng = random.Random(cal.tz)
    base = utc("2026-01-01T00:00")
    for _ in range(150):
        start = base + timedelta(
            seconds=rng.randrange(730 * 86400), microseconds=rng.randrange(10**6)
        )
        duration = timedelta(seconds=rng.randrange(300 * 3600), microseconds=rng.randrange(10**6))
        due = add_business_time(cal, start, duration)
        assert due >= start
        assert business_time_between(cal, start, due) == duration
        # Nothing earlier would do: one microsecond less of elapsed time is not enough.
        assert business_time_between(cal, start, due - timedelta(microseconds=1)) < duration
        # Splitting the count anywhere in between adds up.
        middle = start + (due - start) * rng.random()
        assert business_time_between(cal, start, middle) + business_time_between(
            cal, middle, due
        ) == business_time_between(cal, start, due)


def test_round_trip_with_random_pauses() -> None:
    rng = random.Random(7)
    cal = office(country="GB", subdivision="ENG")
    base = utc("2026-03-01T00:00")
    for _ in range(150):
        start = base + timedelta(minutes=rng.randrange(365 * 1440))
        pauses: list[tuple[datetime, datetime | None]] = []
        for _ in range(rng.randrange(4)):
            since = start + timedelta(minutes=rng.randrange(-1440, 20 * 1440))
            pauses.append((since, since + timedelta(minutes=rng.randrange(1, 5 * 1440))))
        duration = timedelta(minutes=rng.randrange(1, 100 * 60))
        due = add_business_time(cal, start, duration, pauses)
        assert business_time_between(cal, start, due, pauses) == duration
        assert due >= add_business_time(cal, start, duration)


# --- pauses ----------------------------------------------------------------------------------


def test_pause_stops_the_clock() -> None:
    cal = Calendar.always()
    start = utc("2026-05-01T00:00")
    pauses = [(start + H, start + 2 * H)]
    assert add_business_time(cal, start, 4 * H, pauses) == start + 5 * H
    assert business_time_between(cal, start, start + 5 * H, pauses) == 4 * H


def test_pause_only_costs_the_business_time_inside_it() -> None:
    cal = office()
    # Waiting on the customer from Friday 16:00 to Monday 10:00 costs two business hours.
    pauses = [(at("2026-01-16T16:00"), at("2026-01-19T10:00"))]
    start = at("2026-01-16T15:00")
    assert add_business_time(cal, start, 2 * H, pauses) == at("2026-01-19T11:00")
    assert business_time_between(cal, start, at("2026-01-19T11:00"), pauses) == 2 * H


def test_pause_covering_the_start_and_overlapping_pauses() -> None:
    cal = Calendar.always()
    start = utc("2026-05-01T00:00")
    pauses = [
        (start - H, start + H),
        (start + 30 * MIN, start + 2 * H),  # overlaps the first: not subtracted twice
        (start + 3 * H, start + 3 * H),  # empty
    ]
    assert add_business_time(cal, start, H, pauses) == start + 3 * H
    assert business_time_between(cal, start, start + 3 * H, pauses) == H


def test_open_ended_pause() -> None:
    cal = office()
    start = at("2026-01-14T09:00")
    pauses: list[tuple[datetime, datetime | None]] = [(at("2026-01-14T12:00"), None)]
    # Enough business time before waiting on the customer began.
    assert add_business_time(cal, start, 2 * H, pauses) == at("2026-01-14T11:00")
    with pytest.raises(ClockPaused) as paused:
        add_business_time(cal, start, 4 * H, pauses)
    assert paused.value.since == at("2026-01-14T12:00")
    assert paused.value.remaining == H
    assert business_time_between(cal, start, at("2026-01-20T09:00"), pauses) == 3 * H


def test_pause_ending_before_it_starts_is_rejected() -> None:
    start = utc("2026-05-01T00:00")
    with pytest.raises(ValueError, match="pause ends before"):
        add_business_time(Calendar.always(), start, H, [(start, start - H)])


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("weekly", [{}, {0: []}, {d: [] for d in range(7)}])
def test_calendar_without_working_hours_is_rejected(weekly: dict[int, list[object]]) -> None:
    with pytest.raises(ValueError, match="at least one working period"):
        Calendar(LONDON, weekly)  # type: ignore[arg-type]


def test_calendar_whose_every_working_day_is_a_holiday_raises_within_the_horizon() -> None:
    mondays = frozenset(date(2026, 1, 5) + timedelta(weeks=w) for w in range(200))
    cal = Calendar(LONDON, {0: [(time(9), time(17))]}, extra_holidays=mondays)
    with pytest.raises(ValueError, match=f"within {SEARCH_HORIZON_DAYS} days"):
        add_business_time(cal, at("2026-01-01T00:00"), H)
    # Starting where the holidays end within the horizon, the next free Monday is found.
    assert add_business_time(cal, at("2029-10-01T00:00"), H) == at("2029-11-05T10:00")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tz": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"weekly": {7: [(time(9), time(17))]}}, "weekday"),
        ({"weekly": {0: [(time(9),)]}}, "two times"),
        ({"weekly": {0: [(time(9, tzinfo=UTC), time(17))]}}, "without tzinfo"),
        ({"country": "XX"}, "XX"),
        ({"country": "GB", "subdivision": "XYZ"}, "XYZ"),
        ({"subdivision": "ENG"}, "needs a country"),
    ],
)
def test_invalid_calendar_is_rejected(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"tz": LONDON, "weekly": {0: [(time(9), time(17))]}, **kwargs}
    with pytest.raises(ValueError, match=message):
        Calendar(**args)  # type: ignore[arg-type]


def test_naive_datetimes_and_negative_durations_are_rejected() -> None:
    cal = office()
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(cal, datetime(2026, 1, 14, 9), H)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_time_between(cal, at("2026-01-14T09:00"), datetime(2026, 1, 15, 9))
    with pytest.raises(ValueError, match="negative"):
        add_business_time(cal, at("2026-01-14T09:00"), -H)


def test_calendar_normalises_its_inputs() -> None:
    cal = Calendar(
        LONDON,
        {0: [(time(13), time(17)), (time(9), time(12))], 1: []},
        extra_holidays={date(2026, 1, 1)},  # type: ignore[arg-type]
    )
    assert cal.weekly == {0: [(time(9), time(12)), (time(13), time(17))]}
    assert isinstance(cal.extra_holidays, frozenset)
    assert Calendar.always().weekly == {d: [(time(0), time(0))] for d in range(7)}


# --- SLA targets -----------------------------------------------------------------------------

POLICY = SlaPolicy(acknowledge_within=H, first_promise_within=4 * H, resolve_within=16 * H)


def test_sla_targets_in_business_time() -> None:
    targets = sla_targets(POLICY, office(), at("2026-01-16T16:30"))
    assert targets == {
        "acknowledge": at("2026-01-19T09:30"),
        "first_promise": at("2026-01-19T12:30"),
        "resolve": at("2026-01-20T16:30"),
    }


def test_sla_targets_move_by_the_business_time_spent_waiting_on_the_customer() -> None:
    pauses = [(at("2026-01-19T09:00"), at("2026-01-19T11:00"))]
    targets = sla_targets(POLICY, office(), at("2026-01-16T16:30"), pauses)
    assert targets == {
        "acknowledge": at("2026-01-19T11:30"),
        "first_promise": at("2026-01-19T14:30"),
        "resolve": at("2026-01-21T10:30"),
    }


def test_sla_targets_have_no_due_time_while_the_clock_is_stopped() -> None:
    pauses: list[tuple[datetime, datetime | None]] = [(at("2026-01-19T10:00"), None)]
    targets = sla_targets(POLICY, office(), at("2026-01-16T16:30"), pauses)
    assert targets == {
        "acknowledge": at("2026-01-19T09:30"),
        "first_promise": None,
        "resolve": None,
    }


def test_sla_policy_rejects_negative_durations() -> None:
    with pytest.raises(ValueError, match="negative"):
        SlaPolicy(acknowledge_within=-H, first_promise_within=H, resolve_within=H)

"""Journey metrics arithmetic: percentiles, rates, means, top root causes, the period and the
roll-up of finest-grain cells into journey, stage and owner figures."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.followup.metrics_query import (
    Cell,
    mean,
    percentile,
    period,
    rate,
    roll_up,
    top,
)
from shared.errors import Unprocessable

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_percentile_of_nothing_is_none_and_of_one_value_that_value() -> None:
    assert percentile([], 50) is None
    assert percentile([], 90) is None
    assert percentile([600.0], 50) == 600.0
    assert percentile([600.0], 90) == 600.0
    assert percentile([600.0], 0) == 600.0
    assert percentile([600.0], 100) == 600.0


def test_percentile_interpolates_between_closest_ranks_whatever_the_order() -> None:
    assert percentile([1200.0, 600.0], 50) == 900.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    values = [float(v) for v in range(10, 101, 10)]  # 10, 20, ..., 100
    assert percentile(values, 50) == 55.0
    assert percentile(values, 90) == 91.0
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 100.0
    assert percentile([5.0, 5.0, 5.0], 90) == 5.0
    assert percentile([0.1, 0.2], 50) == 0.15  # rounded to the millisecond, no float noise


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_outside_0_to_100_is_an_error(q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], q)


def test_rate_and_mean_are_none_without_a_denominator() -> None:
    assert rate(0, 0) is None
    assert rate(3, 0) is None
    assert rate(0, 4) == 0.0
    assert rate(1, 3) == 0.3333
    assert rate(2, 2) == 1.0
    assert mean(0, 0) is None
    assert mean(9, 2) == 4.5
    assert mean(5, 3) == 1.67


def test_top_keeps_the_most_frequent_with_ties_by_key() -> None:
    assert top(Counter()) == []
    assert top(Counter({"a": 1})) == [("a", 1)]
    counts = Counter({"f": 1, "e": 2, "d": 2, "c": 3, "b": 1, "a": 1, "g": 4})
    assert top(counts) == [("g", 4), ("c", 3), ("d", 2), ("e", 2), ("a", 1)]
    assert top(counts, 2) == [("g", 4), ("c", 3)]


def test_period_defaults_to_the_last_30_days_up_to_now() -> None:
    assert period(None, None, NOW) == (NOW - timedelta(days=30), NOW)
    to = NOW - timedelta(days=1)
    assert period(None, to, NOW) == (to - timedelta(days=30), to)
    since = NOW - timedelta(hours=1)
    assert period(since, None, NOW) == (since, NOW)
    # the future is allowed as an end (promises due later in the period are then counted once kept)
    assert period(NOW, NOW + timedelta(days=7), NOW) == (NOW, NOW + timedelta(days=7))


def test_period_must_not_be_empty_and_names_the_field() -> None:
    with pytest.raises(Unprocessable) as exc:
        period(NOW, NOW, NOW)
    assert exc.value.extra["errors"][0]["field"] == "to"
    with pytest.raises(Unprocessable) as exc:
        period(NOW + timedelta(seconds=1), NOW, NOW)
    assert exc.value.extra["errors"][0]["field"] == "to"
    with pytest.raises(Unprocessable) as exc:
        period(NOW + timedelta(days=1), None, NOW)  # `to` defaults to now: `from` is wrong
    assert exc.value.extra["errors"][0]["field"] == "from"


def test_period_is_at_most_366_days() -> None:
    assert period(NOW - timedelta(days=366), NOW, NOW)[0] == NOW - timedelta(days=366)
    with pytest.raises(Unprocessable) as exc:
        period(NOW - timedelta(days=366, seconds=1), NOW, NOW)
    assert exc.value.extra["errors"][0]["field"] == "from"


def _cell(**fields: object) -> Cell:
    c = Cell()
    for k, v in fields.items():
        setattr(c, k, v)
    return c


def test_roll_up_adds_cells_into_journey_rows_and_owners() -> None:
    cells = {
        ("cards", "dispute", "ana"): _cell(
            loops=2,
            complaints=3,
            repeat=1,
            to_acknowledge=[600.0, 1200.0],
            promises_due=2,
            promises_kept=1,
            root_causes=Counter({"fraud rule": 2}),
        ),
        ("cards", "fix", "ana"): _cell(loops=1, complaints=1, csat_count=1, csat_total=4),
        ("cards", "dispute", "ben"): _cell(
            loops=1,
            complaints=1,
            to_acknowledge=[300.0],
            overdue_now=1,
            escalations=2,
            root_causes=Counter({"app bug": 1}),
        ),
        ("borrow", "servicing", "ana"): _cell(overdue_now=1),
    }
    names = {("journey", "cards"): "Cards and payments", ("owner", "ana"): "Ana"}

    journeys, owners = roll_up(cells, "stage", names)

    assert [j.journey.key for j in journeys] == ["borrow", "cards"]
    borrow, cards = journeys
    assert borrow.journey.name == "borrow"  # no name known: the key
    assert cards.journey.name == "Cards and payments"
    t = cards.totals
    assert (t.volume.loops, t.volume.complaints) == (4, 5)
    assert (t.repeat_contacts.loops, t.repeat_contacts.rate) == (1, 0.25)
    assert t.time_to_acknowledge.count == 3
    assert t.time_to_acknowledge.median_s == 600.0
    assert t.time_to_resolve.count == 0
    assert t.time_to_resolve.median_s is None
    assert (t.promises.due, t.promises.kept_on_time, t.promises.kept_rate) == (2, 1, 0.5)
    assert (t.overdue_now, t.escalations) == (1, 2)
    assert (t.csat.count, t.csat.mean) == (1, 4.0)
    assert [(r.root_cause, r.count) for r in t.top_root_causes] == [
        ("fraud rule", 2),
        ("app bug", 1),
    ]
    assert [(r.key, r.name, r.volume.loops) for r in cards.rows] == [
        ("dispute", "dispute", 3),
        ("fix", "fix", 1),
    ]
    assert cards.rows[0].time_to_acknowledge.median_s == 600.0
    assert cards.rows[0].time_to_acknowledge.p90_s == 1080.0

    assert [(o.owner.key, o.owner.name, o.volume.loops, o.overdue_now) for o in owners] == [
        ("ana", "Ana", 3, 1),
        ("ben", "ben", 1, 1),
    ]

    journeys, _ = roll_up(cells, "owner", names)
    assert [(r.key, r.name, r.volume.loops) for r in journeys[1].rows] == [
        ("ana", "Ana", 3),
        ("ben", "ben", 1),
    ]


def test_roll_up_of_nothing_is_empty() -> None:
    assert roll_up({}, "stage", {}) == ([], [])

"""The loop and promise state machines and the escalation ladder."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.followup.domain import (
    LOOP_ACTIONS,
    LOOP_STATUSES,
    PROMISE_ACTIONS,
    PROMISE_STATUSES,
    PROMISE_TRANSITIONS,
    TRANSITIONS,
    IllegalTransition,
    LadderLevel,
    LoopAction,
    LoopStatus,
    PromiseAction,
    PromiseStatus,
    allowed_actions,
    due_levels,
    next_fire_at,
    next_promise_status,
    next_status,
)

# Written out by hand, independently of the table under test.
LOOP_EXPECTED: dict[tuple[str, str], str] = {
    ("open", "acknowledge"): "acknowledged",
    ("open", "make_promise"): "promised",
    ("open", "resolve"): "resolved",
    ("open", "join"): "open",
    ("open", "reassign"): "open",
    ("open", "note"): "open",
    ("acknowledged", "make_promise"): "promised",
    ("acknowledged", "keep_promise"): "acknowledged",
    ("acknowledged", "resolve"): "resolved",
    ("acknowledged", "join"): "acknowledged",
    ("acknowledged", "reassign"): "acknowledged",
    ("acknowledged", "note"): "acknowledged",
    ("promised", "make_promise"): "promised",
    ("promised", "keep_promise"): "promised",
    ("promised", "resolve"): "resolved",
    ("promised", "join"): "promised",
    ("promised", "reassign"): "promised",
    ("promised", "note"): "promised",
    ("resolved", "keep_promise"): "resolved",
    ("resolved", "close"): "closed",
    ("resolved", "reopen"): "reopened",
    ("resolved", "join"): "resolved",
    ("resolved", "reassign"): "resolved",
    ("resolved", "note"): "resolved",
    ("closed", "reopen"): "reopened",
    ("reopened", "acknowledge"): "acknowledged",
    ("reopened", "make_promise"): "promised",
    ("reopened", "keep_promise"): "reopened",
    ("reopened", "resolve"): "resolved",
    ("reopened", "join"): "reopened",
    ("reopened", "reassign"): "reopened",
    ("reopened", "note"): "reopened",
}

PROMISE_EXPECTED: dict[tuple[str, str], str] = {
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

ALL_LOOP_PAIRS = list(itertools.product(LOOP_STATUSES, LOOP_ACTIONS))
ALL_PROMISE_PAIRS = list(itertools.product(PROMISE_STATUSES, PROMISE_ACTIONS))


def test_vocabulary() -> None:
    assert LOOP_STATUSES == ("open", "acknowledged", "promised", "resolved", "closed", "reopened")
    assert set(LOOP_ACTIONS) == {
        "acknowledge",
        "make_promise",
        "keep_promise",
        "resolve",
        "close",
        "reopen",
        "join",
        "reassign",
        "note",
    }
    assert PROMISE_STATUSES == ("pending", "kept", "overdue", "renegotiated", "cancelled")
    assert set(PROMISE_ACTIONS) == {"keep", "mark_overdue", "renegotiate", "cancel"}


def test_loop_table_is_exactly_the_expected_one() -> None:
    assert TRANSITIONS == LOOP_EXPECTED


@pytest.mark.parametrize(("status", "action"), ALL_LOOP_PAIRS)
def test_every_loop_status_action_pair(status: LoopStatus, action: LoopAction) -> None:
    if (status, action) in LOOP_EXPECTED:
        assert next_status(status, action) == LOOP_EXPECTED[(status, action)]
    else:
        with pytest.raises(IllegalTransition) as illegal:
            next_status(status, action)
        assert illegal.value.http_status == 409
        assert (illegal.value.machine, illegal.value.current, illegal.value.action) == (
            "loop",
            status,
            action,
        )
        assert str(illegal.value) == f"cannot {action} a loop that is {status}"


def test_closed_loop_only_reopens() -> None:
    assert allowed_actions("closed") == ("reopen",)


def test_allowed_actions_agree_with_the_table() -> None:
    for status in LOOP_STATUSES:
        expected = {a for (s, a) in LOOP_EXPECTED if s == status}
        assert set(allowed_actions(status)) == expected


def test_every_status_is_reachable_and_none_is_a_dead_end() -> None:
    reachable = {"open"}
    frontier = ["open"]
    while frontier:
        current = frontier.pop()
        for (status, _), target in TRANSITIONS.items():
            if status == current and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(LOOP_STATUSES)
    for status in LOOP_STATUSES:
        assert any(t != status for (s, _), t in TRANSITIONS.items() if s == status)


def test_a_whole_loop_life() -> None:
    steps: list[tuple[LoopAction, LoopStatus]] = [
        ("acknowledge", "acknowledged"),
        ("note", "acknowledged"),
        ("make_promise", "promised"),
        ("join", "promised"),
        ("keep_promise", "promised"),
        ("resolve", "resolved"),
        ("reopen", "reopened"),  # customer: not resolved
        ("acknowledge", "acknowledged"),
        ("resolve", "resolved"),
        ("close", "closed"),  # customer confirmed
        ("reopen", "reopened"),  # came back within the reopen window
    ]
    status: LoopStatus = "open"
    for action, expected in steps:
        status = next_status(status, action)
        assert status == expected


def test_promise_table_is_exactly_the_expected_one() -> None:
    assert PROMISE_TRANSITIONS == PROMISE_EXPECTED


@pytest.mark.parametrize(("status", "action"), ALL_PROMISE_PAIRS)
def test_every_promise_status_action_pair(status: PromiseStatus, action: PromiseAction) -> None:
    if (status, action) in PROMISE_EXPECTED:
        assert next_promise_status(status, action) == PROMISE_EXPECTED[(status, action)]
    else:
        with pytest.raises(IllegalTransition) as illegal:
            next_promise_status(status, action)
        assert illegal.value.http_status == 409
        assert (illegal.value.machine, illegal.value.current, illegal.value.action) == (
            "promise",
            status,
            action,
        )


@pytest.mark.parametrize("final", ["kept", "cancelled"])
def test_kept_and_cancelled_promises_are_final(final: PromiseStatus) -> None:
    for action in PROMISE_ACTIONS:
        with pytest.raises(IllegalTransition):
            next_promise_status(final, action)


def test_an_overdue_promise_goes_overdue_once_and_can_still_be_kept_late() -> None:
    with pytest.raises(IllegalTransition):
        next_promise_status("overdue", "mark_overdue")
    assert next_promise_status("overdue", "keep") == "kept"
    renegotiated = next_promise_status("overdue", "renegotiate")
    # With its new due time it can go overdue again.
    assert next_promise_status(renegotiated, "mark_overdue") == "overdue"


# --- escalation ladder ---------------------------------------------------------------------

H = timedelta(hours=1)
DUE = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
LADDER = [
    LadderLevel(offset=-H, audience="owner", channel="email"),
    LadderLevel(offset=timedelta(0), audience="journey_manager", channel="webhook"),
    LadderLevel(offset=4 * H, audience="cx_lead", channel="chat"),
]


def test_reminder_fires_before_due() -> None:
    assert due_levels(LADDER, DUE, DUE - 2 * H, set()) == []
    assert due_levels(LADDER, DUE, DUE - 30 * timedelta(minutes=1), set()) == [(0, LADDER[0], 1800)]


def test_level_fires_at_exactly_its_time_with_zero_lateness() -> None:
    assert due_levels(LADDER, DUE, DUE, {0}) == [(1, LADDER[1], 0)]


def test_fired_levels_do_not_fire_again() -> None:
    fired: set[int] = set()
    now = DUE - H
    fired_at: list[tuple[datetime, int]] = []
    # A tick every minute for six hours: each level comes out exactly once, on time.
    while now <= DUE + 6 * H:
        for index, _, late in due_levels(LADDER, DUE, now, fired):
            fired.add(index)
            fired_at.append((now, late))
        now += timedelta(minutes=1)
    assert fired_at == [(DUE - H, 0), (DUE, 0), (DUE + 4 * H, 0)]


def test_after_downtime_each_missed_level_fires_once_saying_how_late() -> None:
    now = DUE + 5 * H + timedelta(seconds=30, microseconds=900)
    result = due_levels(LADDER, DUE, now, set())
    assert result == [
        (0, LADDER[0], 6 * 3600 + 30),
        (1, LADDER[1], 5 * 3600 + 30),
        (2, LADDER[2], 1 * 3600 + 30),
    ]
    assert due_levels(LADDER, DUE, now, {i for i, _, _ in result}) == []


def test_due_levels_are_ordered_by_fire_time_not_by_position() -> None:
    ladder = [LADDER[2], LADDER[0], LADDER[1]]
    result = due_levels(ladder, DUE, DUE + 5 * H, set())
    assert [index for index, _, _ in result] == [1, 2, 0]


def test_due_levels_accepts_any_timezone_for_instants() -> None:
    local_now = (DUE + H).astimezone(ZoneInfo("America/New_York"))
    assert due_levels(LADDER, DUE, local_now, {0}) == [(1, LADDER[1], 3600)]


def test_naive_instants_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_levels(LADDER, DUE.replace(tzinfo=None), DUE, set())
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire_at(LADDER, DUE.replace(tzinfo=None), set())


def test_next_fire_at() -> None:
    assert next_fire_at(LADDER, DUE, set()) == DUE - H
    assert next_fire_at(LADDER, DUE, {0}) == DUE
    assert next_fire_at(LADDER, DUE, {0, 1}) == DUE + 4 * H
    assert next_fire_at(LADDER, DUE, {1}) == DUE - H
    assert next_fire_at(LADDER, DUE, {0, 1, 2}) is None
    assert next_fire_at([], DUE, set()) is None
    first = next_fire_at(LADDER, DUE, set())
    assert first is not None
    assert first.tzinfo is UTC

"""Which ladder level fires first, when a target is next looked at, and who an alert is for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.followup.domain import (
    LadderLevel,
    alert_kind,
    audience_of,
    first_level_to_fire,
    next_check_at,
)

DUE = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
LEVELS = [
    LadderLevel(timedelta(minutes=-60), "owner", "chat"),
    LadderLevel(timedelta(minutes=-15), "owner", "chat"),
    LadderLevel(timedelta(0), "journey_manager", "hook"),
    LadderLevel(timedelta(hours=2), "role:head-of-cx", "mail"),
]


def test_reminders_already_past_when_armed_are_skipped_but_escalations_never() -> None:
    assert first_level_to_fire(LEVELS, DUE, DUE - timedelta(hours=3)) == 0
    assert first_level_to_fire(LEVELS, DUE, DUE - timedelta(minutes=60)) == 1  # exactly at it
    assert first_level_to_fire(LEVELS, DUE, DUE - timedelta(minutes=5)) == 2
    assert first_level_to_fire(LEVELS, DUE, DUE + timedelta(days=1)) == 2
    assert first_level_to_fire([], DUE, DUE) == 0


def test_next_check_is_the_due_time_until_breached_then_the_next_level() -> None:
    assert next_check_at(LEVELS, DUE, False, 0) == DUE - timedelta(minutes=60)
    assert next_check_at(LEVELS, DUE, False, 2) == DUE
    assert next_check_at(LEVELS, DUE, True, 3) == DUE + timedelta(hours=2)
    assert next_check_at(LEVELS, DUE, True, 4) is None
    # Without a ladder the due time itself still matters (a promise goes overdue), once.
    assert next_check_at([], DUE, False, 0) == DUE
    assert next_check_at([], DUE, True, 0) is None


def test_audience_is_made_concrete_per_loop() -> None:
    assert audience_of("owner", "ana", "mgr-cards") == "owner:ana"
    assert audience_of("journey_manager", "ana", "mgr-cards") == "manager:mgr-cards"
    assert audience_of("journey_manager", "ana", None) == "role:admin"
    assert audience_of("person:head-of-cx", "ana", None) == "person:head-of-cx"


def test_alert_kind_by_offset_and_target() -> None:
    assert alert_kind("promise:1", timedelta(minutes=-1)) == "reminder"
    assert alert_kind("promise:1", timedelta(0)) == "overdue"
    assert alert_kind("sla:resolve", timedelta(hours=1)) == "sla_breach"
    assert alert_kind("sla:acknowledge", timedelta(minutes=-5)) == "reminder"

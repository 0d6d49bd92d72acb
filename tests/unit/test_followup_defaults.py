"""The followup defaults (`deploy/examples/followup.yaml`) are valid for the example catalog:
shapes the API accepts, calendars and ladders the scheduler can read, every severity covered."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from services.followup.domain import SlaPolicy, sla_targets
from services.followup.policies import load_document
from services.followup.policy_lookup import calendar_of, ladder_levels
from services.followup.policy_schemas import (
    ANY,
    CHANNEL_CONFIGS,
    SEVERITIES,
    DefaultsDocument,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def doc() -> DefaultsDocument:
    return DefaultsDocument.model_validate(load_document(EXAMPLES / "followup.yaml"))


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "catalog.yaml").read_text(encoding="utf-8"))
    return data


def test_every_severity_has_a_default_policy_on_a_known_calendar(doc: DefaultsDocument) -> None:
    defaults = {p.severity for p in doc.sla_policies if p.journey == ANY}
    assert defaults >= set(SEVERITIES)
    calendars = {c.key for c in doc.calendars}
    for p in doc.sla_policies:
        assert p.calendar in calendars
        assert p.acknowledge_minutes <= p.first_promise_minutes <= p.resolve_minutes
    by_severity = {p.severity: p for p in doc.sla_policies if p.journey == ANY}
    # The more severe, the sooner everything is due.
    resolve = [by_severity[s].resolve_minutes for s in SEVERITIES]
    assert resolve == sorted(resolve, reverse=True)


def test_journeys_and_managers_are_the_catalogs(
    doc: DefaultsDocument, catalog: dict[str, Any]
) -> None:
    journeys = {j["key"] for j in catalog["journeys"]}
    named = {p.journey for p in doc.sla_policies} | {ld.journey for ld in doc.escalation_ladders}
    assert named - {ANY} <= journeys
    assert ANY in {ld.journey for ld in doc.escalation_ladders}
    email = next(c for c in doc.notification_channels if c.kind == "email")
    managers = {f"manager:{j['manager']}" for j in catalog["journeys"]}
    assert managers <= set(email.config["addresses"])


def test_calendars_ladders_and_channels_are_usable(doc: DefaultsDocument) -> None:
    for cal in doc.calendars:
        calendar_of(
            cal.tz,
            {day: [list(p) for p in periods] for day, periods in cal.weekly.items()},
            cal.country,
            cal.subdivision,
            [d.isoformat() for d in cal.holidays],
            [d.isoformat() for d in cal.working_days],
        )
    channels = {c.key: c for c in doc.notification_channels}
    assert len(channels) == len(doc.notification_channels)
    for channel in doc.notification_channels:
        config = dict(channel.config)
        if channel.kind == "webhook":
            assert "secret" not in config  # filled in at load time, never committed
            config["secret"] = "x" * 32
        CHANNEL_CONFIGS[channel.kind].model_validate(config)
    for ladder in doc.escalation_ladders:
        levels = ladder_levels([level.model_dump() for level in ladder.levels])
        assert levels, ladder.journey
        assert all(level.channel in channels for level in levels)
        assert any(level.offset.total_seconds() < 0 for level in levels)  # a reminder first


def test_taxonomy_has_unique_codes_and_causes(doc: DefaultsDocument) -> None:
    codes = [t.key for t in doc.taxonomy.resolution_codes]
    causes = [t.key for t in doc.taxonomy.root_causes]
    assert len(codes) >= 8
    assert len(causes) >= 10
    assert len(set(codes)) == len(codes)
    assert len(set(causes)) == len(causes)


def test_bank_hours_skip_us_holidays(doc: DefaultsDocument) -> None:
    cal = next(c for c in doc.calendars if c.key == "bank-hours")
    calendar = calendar_of(
        cal.tz,
        {day: [list(p) for p in periods] for day, periods in cal.weekly.items()},
        cal.country,
    )
    critical = next(p for p in doc.sla_policies if p.journey == ANY and p.severity == "critical")
    policy = SlaPolicy(
        acknowledge_within=timedelta(minutes=critical.acknowledge_minutes),
        first_promise_within=timedelta(minutes=critical.first_promise_minutes),
        resolve_within=timedelta(minutes=critical.resolve_minutes),
    )
    # Thursday 2 July 2026, 19:00: one business hour left that day; Friday 3 July is the observed
    # Independence Day and Saturday 4 July the day itself; Sunday is closed.
    opened = datetime(2026, 7, 2, 19, 0, tzinfo=NEW_YORK)
    due = sla_targets(policy, calendar, opened)
    assert due["acknowledge"] == datetime(2026, 7, 2, 19, 30, tzinfo=NEW_YORK)
    assert due["first_promise"] == datetime(2026, 7, 2, 20, 0, tzinfo=NEW_YORK)
    assert due["resolve"] == datetime(2026, 7, 6, 15, 0, tzinfo=NEW_YORK)

"""Frozen example bodies, one per event type and version, keep parsing forever.

`fixtures/<ce_type>.json` holds a body as a producer writes it today. Never edit a fixture to make
a model change pass: a breaking change adds a new version, an upcaster and a new fixture.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import AwareDatetime, ValidationError
from support import T0

from shared.events import registry
from shared.events.envelope import Envelope
from shared.events.models import ALL_EVENTS, ComplaintConfirmedV1, EventModel
from shared.events.registry import REGISTRY, UnknownEventType, current_model, parse_data

FIXTURE_DIR = Path(__file__).parent / "fixtures"
FIXTURES: dict[str, dict[str, Any]] = {
    path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
    for path in sorted(FIXTURE_DIR.glob("*.json"))
}


def envelope(ce_type: str, data: dict[str, Any]) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        source="/closeloop/contract-test",
        type=ce_type,
        time=T0,
        subject=None,
        data=data,
    )


def fixture(ce_type: str) -> dict[str, Any]:
    """A deep copy, so a test may change it freely."""
    return copy.deepcopy(FIXTURES[ce_type])


def required_fields() -> list[tuple[str, str]]:
    return [
        (model.type_name(), name)
        for model in ALL_EVENTS
        for name, info in model.model_fields.items()
        if info.is_required()
    ]


# --- the fixtures ----------------------------------------------------------------------------


def test_every_registered_event_type_has_a_fixture() -> None:
    missing = sorted(set(REGISTRY) - set(FIXTURES))
    assert not missing, f"add tests/contracts/fixtures/<ce_type>.json for {missing}"


@pytest.mark.parametrize("ce_type", sorted(FIXTURES))
def test_fixture_parses_into_the_current_model(ce_type: str) -> None:
    body = fixture(ce_type)
    event = parse_data(envelope(ce_type, body))

    name = ce_type.removeprefix("closeloop.").rsplit(".v", 1)[0]
    model = current_model(name)
    assert model is not None
    assert type(event) is model
    if event.type_name() == ce_type:
        # Same version: every field a consumer reads is still there and keeps its value.
        dumped = event.model_dump(mode="json")
        gone = sorted(set(body) - set(model.model_fields))
        assert not gone, f"{ce_type}: fields removed or renamed without a new version: {gone}"
        changed = {k: (v, dumped[k]) for k, v in body.items() if dumped[k] != v}
        assert not changed, f"{ce_type}: values read differently now: {changed}"


@pytest.mark.parametrize("ce_type", sorted(FIXTURES))
def test_unknown_extra_fields_are_ignored(ce_type: str) -> None:
    body = fixture(ce_type)
    body["added_by_a_newer_producer"] = {"anything": [1, 2, 3]}
    for value in body.values():
        if isinstance(value, dict) and "key" in value:
            value["colour"] = "blue"  # nested Ref objects are forward compatible too

    event = parse_data(envelope(ce_type, body))

    assert event == parse_data(envelope(ce_type, fixture(ce_type)))
    assert "added_by_a_newer_producer" not in event.model_dump()


@pytest.mark.parametrize(("ce_type", "field"), required_fields())
def test_a_missing_required_field_is_rejected(ce_type: str, field: str) -> None:
    body = fixture(ce_type)
    del body[field]
    with pytest.raises(ValidationError, match=field):
        parse_data(envelope(ce_type, body))


@pytest.mark.parametrize(
    ("ce_type", "field", "value"),
    [
        ("closeloop.complaint.received.v1", "received_at", "2026-11-23T09:00:00"),  # naive
        ("closeloop.complaint.received.v1", "severity", "urgent"),
        ("closeloop.complaint.received.v1", "channel", "pigeon"),
        ("closeloop.complaint.received.v1", "complaint_id", "not-a-uuid"),
        ("closeloop.complaint.confirmed.v1", "csat", 6),
        ("closeloop.loop.opened.v1", "owner", "o-kim"),
    ],
)
def test_an_invalid_value_is_rejected(ce_type: str, field: str, value: Any) -> None:
    body = fixture(ce_type)
    body[field] = value
    with pytest.raises(ValidationError):
        parse_data(envelope(ce_type, body))


def test_parsed_events_are_frozen() -> None:
    event = parse_data(envelope("closeloop.loop.opened.v1", fixture("closeloop.loop.opened.v1")))
    with pytest.raises(ValidationError):
        event.stage = "other"  # type: ignore[misc]


# --- unknown types and versions --------------------------------------------------------------


@pytest.mark.parametrize(
    "ce_type",
    [
        "closeloop.complaint.exploded.v1",
        "closeloop.complaint.received.v2",  # a future version this code cannot read
        "closeloop.loop.closed.v17",
        "closeloop.complaint.received",
        "com.example.complaint.received.v1",
        "closeloop.Complaint.Received.v1",
        "",
    ],
)
def test_unknown_type_or_future_version_is_refused(ce_type: str) -> None:
    with pytest.raises(UnknownEventType):
        parse_data(envelope(ce_type, fixture("closeloop.complaint.received.v1")))


def test_a_version_older_than_any_model_is_refused() -> None:
    body = fixture("closeloop.complaint.received.v1")
    with pytest.raises(UnknownEventType):
        parse_data(envelope("closeloop.complaint.received.v0", body))


# --- upcasting -------------------------------------------------------------------------------


class ConfirmedV2(EventModel):
    """A simulated breaking change: `resolved: bool` became `outcome`."""

    name, version = "complaint.confirmed", 2
    complaint_id: uuid.UUID
    client_id: str
    customer_id: uuid.UUID
    outcome: Literal["resolved", "not_resolved"]
    csat: int | None = None
    comment: str | None = None
    confirmed_at: AwareDatetime


class ConfirmedV3(ConfirmedV2):
    """A second one: `csat` moved into a `survey` object."""

    name, version = "complaint.confirmed", 3
    csat: None = None
    survey: dict[str, Any]


def _v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in body.items() if k != "resolved"}
    out["outcome"] = "resolved" if body["resolved"] else "not_resolved"
    return out


def _v2_to_v3(body: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in body.items() if k != "csat"}
    out["survey"] = {"csat": body.get("csat")}
    return out


@pytest.fixture
def confirmed_v2(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Register ConfirmedV2 and a v1 -> v2 upcaster; returns the bodies the upcaster saw."""
    seen: list[dict[str, Any]] = []

    def upcast(body: dict[str, Any]) -> dict[str, Any]:
        seen.append(body)
        return _v1_to_v2(body)

    monkeypatch.setattr(registry, "ALL_EVENTS", (*ALL_EVENTS, ConfirmedV2))
    monkeypatch.setitem(registry.UPCASTERS, ("complaint.confirmed", 1), upcast)
    return seen


def test_an_old_version_is_upcast_to_the_current_model(confirmed_v2: list[dict[str, Any]]) -> None:
    v1 = fixture("closeloop.complaint.confirmed.v1")

    event = parse_data(envelope("closeloop.complaint.confirmed.v1", v1))

    assert confirmed_v2 == [v1]
    assert isinstance(event, ConfirmedV2)
    assert event.outcome == "not_resolved"
    assert event.csat == v1["csat"]
    assert str(event.complaint_id) == v1["complaint_id"]


def test_the_current_version_is_not_upcast(confirmed_v2: list[dict[str, Any]]) -> None:
    v2 = _v1_to_v2(fixture("closeloop.complaint.confirmed.v1"))

    event = parse_data(envelope("closeloop.complaint.confirmed.v2", v2))

    assert confirmed_v2 == []
    assert isinstance(event, ConfirmedV2)


def test_upcasters_are_chained_in_version_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "ALL_EVENTS", (*ALL_EVENTS, ConfirmedV3, ConfirmedV2))
    monkeypatch.setitem(registry.UPCASTERS, ("complaint.confirmed", 1), _v1_to_v2)
    monkeypatch.setitem(registry.UPCASTERS, ("complaint.confirmed", 2), _v2_to_v3)
    v1 = fixture("closeloop.complaint.confirmed.v1")

    event = parse_data(envelope("closeloop.complaint.confirmed.v1", v1))

    assert isinstance(event, ConfirmedV3)
    assert event.outcome == "not_resolved"
    assert event.survey == {"csat": v1["csat"]}
    with pytest.raises(UnknownEventType):
        parse_data(envelope("closeloop.complaint.confirmed.v4", v1))


def test_without_a_newer_model_v1_parses_unchanged() -> None:
    # Guards the simulation above: the real catalogue still has v1 as current.
    assert current_model("complaint.confirmed") is ComplaintConfirmedV1
    assert ("complaint.confirmed", 1) not in registry.UPCASTERS

"""Who gets a complaint: availability and delegates, capacity, continuity, round robin, skills,
severity overrides, callbacks, duplicates and handover — on SQLite and PostgreSQL, part of it over
the real broker."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from support import Routing, RoutingFactory

from services.routing.models import OUTBOX, Assignment
from shared.bus.kafka import Producer
from shared.events import topics
from shared.events.envelope import Envelope
from shared.events.models import (
    ComplaintReceivedV1,
    EventModel,
    LoopClosedV1,
    LoopOpenedV1,
    Ref,
)
from shared.testing.drain import drain

CARDS = ("ana", "ben", "cho")


def received(routing: Routing, **fields: Any) -> ComplaintReceivedV1:
    """A complaint.received body for a new customer; keyword arguments replace fields."""
    body: dict[str, Any] = {
        "complaint_id": uuid.uuid4(),
        "client_id": "cc-1",
        "customer_id": uuid.uuid4(),
        "customer": {"ref": "cust-1", "name": "Ada Lovelace"},
        "channel": "phone",
        "summary": "Card declined at checkout twice",
        "product": "Credit card",
        "severity": "high",
        "language": "en",
        "received_at": routing.clock.now(),
        "repeat_contact": {"count_30d": 1, "is_repeat": False},
    }
    body.update(fields)
    return ComplaintReceivedV1.model_validate(body)


def envelope(routing: Routing, event: EventModel, customer_id: uuid.UUID) -> Envelope:
    return Envelope.new(source="/t", data=event, time=routing.clock.now(), key=str(customer_id))


def assign(routing: Routing, **fields: Any) -> dict[str, Any]:
    """Hand a complaint to routing's handler, as the consumer would; return its assignment."""
    event = received(routing, **fields)
    with routing.container.uow() as uow:
        routing.container.service.on_received(
            uow, envelope(routing, event, event.customer_id), event
        )
        uow.commit()
    return assignment(routing, event.complaint_id)


def assignment(routing: Routing, complaint_id: uuid.UUID | str) -> dict[str, Any]:
    r = routing.http.get(f"/v1/assignments/{complaint_id}", headers=routing.headers())
    assert r.status_code == 200, r.text
    return dict(r.json())


def owner(a: dict[str, Any]) -> str:
    return str(a["owner"]["key"])


def candidate(a: dict[str, Any], key: str) -> dict[str, Any]:
    return next(c for c in a["explanation"]["candidates"] if c["owner"] == key)


def outbox(routing: Routing, name: str) -> list[dict[str, Any]]:
    """Bodies of the outbox events of one type (e.g. `complaint.assigned`), oldest first."""
    with routing.container.engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.payload)
            .where(OUTBOX.c.event_type == f"closeloop.{name}.v1")
            .order_by(OUTBOX.c.seq)
        ).all()
    return [json.loads(payload) for (payload,) in rows]


def assigned_event(routing: Routing, complaint_id: str) -> dict[str, Any]:
    (event,) = [
        e for e in outbox(routing, "complaint.assigned") if e["complaint_id"] == complaint_id
    ]
    return event


def loop_event(routing: Routing, event: LoopOpenedV1 | LoopClosedV1) -> None:
    with routing.container.uow() as uow:
        routing.container.service.on_loop_event(
            uow, envelope(routing, event, event.customer_id), event
        )
        uow.commit()


def closed(a: dict[str, Any], loop_id: uuid.UUID, *more: dict[str, Any]) -> LoopClosedV1:
    return LoopClosedV1(
        loop_id=loop_id,
        complaint_id=a["complaint_id"],
        customer_id=a["customer_id"],
        complaint_ids=[a["complaint_id"], *(m["complaint_id"] for m in more)],
        at=a["assigned_at"],
        reason="resolved and confirmed",
    )


def set_away(
    routing: Routing, key: str, hours: float, delegate: str | None = None
) -> dict[str, Any]:
    now = routing.clock.now()
    r = routing.http.put(
        f"/v1/owners/{key}/availability",
        json={
            "away_from": now.isoformat(),
            "away_until": (now + timedelta(hours=hours)).isoformat(),
            "delegate": delegate,
        },
        headers=routing.headers(),
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


# --- availability ----------------------------------------------------------------------------


def test_an_away_owners_delegate_gets_the_complaint_until_the_window_is_over(
    routing: Routing,
) -> None:
    # One complaint each: the whole team is equally loaded, so `ana` would be next (key order).
    assert [owner(assign(routing)) for _ in CARDS] == list(CARDS)

    away = set_away(routing, "ana", hours=8, delegate="tia")
    assert away["away_now"] is True
    assert away["delegate"] == "tia"

    a = assign(routing)
    assert owner(a) == "tia"  # the delegate (0 of 50) stands in; without the away it is ana
    assert "delegate tia" in candidate(a, "ana")["reason"]
    assert candidate(a, "tia")["chosen"] is True
    assert assigned_event(routing, a["complaint_id"])["owner"]["key"] == "tia"

    routing.clock.advance(timedelta(hours=8, seconds=1))
    back = routing.http.get("/v1/owners/ana/availability", headers=routing.headers()).json()
    assert back["away_now"] is False

    a = assign(routing)
    assert owner(a) == "ana"  # normal selection again: 1 loop each, ana first by key
    assert "tia" not in {c["owner"] for c in a["explanation"]["candidates"]}
    assert "away" not in candidate(a, "ana")["reason"]


# --- capacity --------------------------------------------------------------------------------


def test_an_owner_at_capacity_is_skipped_even_when_least_loaded(routing: Routing) -> None:
    # ana collects three low-severity loops (weight 1 each, 3/3 = 1.0); ben and cho one critical
    # loop each (5/3 = 1.67): by weighted load ana is still the lightest, but she is full.
    assert owner(assign(routing, severity="low")) == "ana"
    assert owner(assign(routing, severity="critical")) == "ben"
    assert owner(assign(routing, severity="critical")) == "cho"
    assert owner(assign(routing, severity="low")) == "ana"
    assert owner(assign(routing, severity="low")) == "ana"

    a = assign(routing, severity="low")
    assert owner(a) == "ben"
    assert candidate(a, "ana") == {
        "owner": "ana",
        "chosen": False,
        "reason": "at capacity",
        "open_loops": 3,
        "capacity": 3,
    }
    assert a["explanation"]["over_capacity"] is False
    assert assigned_event(routing, a["complaint_id"])["over_capacity"] is False


def test_everyone_at_capacity_still_assigns_and_tells_the_journey_manager(
    routing: Routing,
) -> None:
    firsts = [owner(assign(routing, severity="low")) for _ in range(9)]
    assert sorted(firsts) == sorted(CARDS * 3)

    a = assign(routing, severity="low")
    assert owner(a) in CARDS
    assert a["explanation"]["over_capacity"] is True
    assert "every candidate is at capacity" in a["explanation"]["owner_reason"]
    assert all(c["open_loops"] == 3 for c in a["explanation"]["candidates"])

    event = assigned_event(routing, a["complaint_id"])
    assert event["over_capacity"] is True
    assert event["journey_manager"] == "mgr-cards"
    assert event["journey"] == {"key": "cards", "name": "Cards and payments"}


# --- continuity ------------------------------------------------------------------------------


def test_continuity_keeps_the_owner_of_an_open_loop_until_it_is_closed(routing: Routing) -> None:
    customer = uuid.uuid4()
    first = assign(routing, customer_id=customer, severity="high")
    assert owner(first) == "ana"
    assert owner(assign(routing, severity="high")) == "ben"
    assert owner(assign(routing, severity="high")) == "cho"
    assert owner(assign(routing, severity="critical")) == "ana"  # tie: ana by key; now 8 vs 3

    again = assign(routing, customer_id=customer, severity="high")
    assert owner(again) == "ana"  # the most loaded, but the customer's loop is hers
    assert again["explanation"]["owner_reason"].startswith("continuity")
    assert candidate(again, "ana")["open_loops"] == 2  # before this one

    loop_event(routing, closed(first, uuid.uuid4(), again))
    for a in (first, again):
        assert assignment(routing, a["complaint_id"])["open"] is False

    third = assign(routing, customer_id=customer, severity="high")
    assert owner(third) == "ben"  # ana 5/3 (the critical one), ben and cho 3/3
    assert third["explanation"]["owner_reason"].startswith("least loaded")
    assert candidate(third, "ana")["open_loops"] == 1


def test_complaints_joined_to_one_loop_count_as_one_open_loop(routing: Routing) -> None:
    customer = uuid.uuid4()
    contacts = [assign(routing, customer_id=customer, severity="low") for _ in range(3)]
    assert {owner(a) for a in contacts} == {"ana"}
    first = contacts[0]
    loop_event(
        routing,
        LoopOpenedV1(
            loop_id=uuid.uuid4(),
            complaint_id=first["complaint_id"],
            customer_id=customer,
            complaint_ids=[a["complaint_id"] for a in contacts],
            at=routing.clock.now(),
            journey=Ref(key="cards", name="Cards and payments"),
            stage="dispute",
            owner=Ref(key="ana", name="Ana"),
            severity="low",
        ),
    )
    assert owner(assign(routing, severity="critical")) == "ben"
    assert owner(assign(routing, severity="critical")) == "cho"

    a = assign(routing, severity="low")
    assert candidate(a, "ana")["open_loops"] == 1  # one loop, three contacts
    assert owner(a) == "ana"  # 1 low loop is the lightest load; she has room for two more


# --- strategies, skills, rule outcomes ------------------------------------------------------


def test_round_robin_cycles_through_the_borrow_team(routing: Routing) -> None:
    got = [
        assign(routing, product="Mortgage", summary="My mortgage payment was taken twice")
        for _ in range(3)
    ]
    assert [a["journey"]["key"] for a in got] == ["borrow"] * 3
    assert [owner(a) for a in got] == ["dev", "eli", "dev"]
    assert all(a["explanation"]["owner_reason"] == "round robin: next in turn" for a in got)


@pytest.mark.parametrize("language", ["es", "es-MX", "ES"])
def test_a_spanish_complaint_goes_to_the_only_spanish_speaker(
    routing: Routing, language: str
) -> None:
    assert owner(assign(routing)) == "ana"
    a = assign(routing, language=language)
    assert owner(a) == "ben"
    assert candidate(a, "cho")["reason"] == f"no language skill {language!r}"


def test_the_rules_severity_override_lands_in_the_assignment_and_the_event(
    routing: Routing,
) -> None:
    a = assign(routing, severity="low", summary="Question about my loan statement", product=None)
    assert (a["journey"]["key"], a["stage"], a["rule"]) == ("borrow", "servicing", "mortgages")
    assert a["severity"] == "high"
    event = assigned_event(routing, a["complaint_id"])
    assert event["severity"] == "high"
    assert event["rule"] == "mortgages"
    assert event["journey_manager"] == "mgr-borrow"


def test_the_front_lines_callback_promise_is_carried_into_complaint_assigned(
    routing: Routing,
) -> None:
    due = routing.clock.now() + timedelta(hours=4)
    a = assign(routing, promised_callback_by=due)
    event = assigned_event(routing, a["complaint_id"])
    assert datetime.fromisoformat(event["promised_callback_by"]) == due

    plain = assign(routing)
    assert assigned_event(routing, plain["complaint_id"])["promised_callback_by"] is None


# --- handover --------------------------------------------------------------------------------


def test_handover_moves_every_open_loop_of_an_owner_away_for_long(routing: Routing) -> None:
    customer = uuid.uuid4()
    mine = [assign(routing, customer_id=customer) for _ in range(2)]  # continuity: both ana's
    assert [owner(a) for a in mine] == ["ana", "ana"]
    other = assign(routing)
    assert owner(other) == "ben"
    gone = assign(routing, customer_id=customer)
    loop_event(routing, closed(gone, uuid.uuid4()))  # closed work is not handed over
    assert owner(gone) == "ana"

    set_away(routing, "ana", hours=routing.settings.handover_after_hours * 3)
    manager = routing.headers("mgr-cards", "manager", ("cards",))
    r = routing.http.post("/v1/owners/ana/handover", json={}, headers=manager)
    assert r.status_code == 200, r.text
    moved = r.json()["moved"]
    assert {m["complaint_id"] for m in moved} == {a["complaint_id"] for a in mine}
    assert all(owner(m) in {"ben", "cho"} for m in moved)
    for m in moved:
        (step,) = assignment(routing, m["complaint_id"])["reassignments"]
        assert (step["from"], step["to"], step["by"]) == ("ana", owner(m), "mgr-cards")

    events = outbox(routing, "complaint.reassigned")
    assert sorted(e["complaint_id"] for e in events) == sorted(a["complaint_id"] for a in mine)
    assert all(e["previous_owner"]["key"] == "ana" for e in events)
    assert all(e["reason"] == "handover: ana away" for e in events)
    assert {e["owner"]["key"] for e in events} <= {"ben", "cho"}
    assert owner(assignment(routing, gone["complaint_id"])) == "ana"
    assert owner(assignment(routing, other["complaint_id"])) == "ben"


def test_handover_of_an_owner_away_only_briefly_is_refused(routing: Routing) -> None:
    a = assign(routing)
    hours = routing.settings.handover_after_hours / 4
    set_away(routing, owner(a), hours=hours)

    r = routing.http.post(f"/v1/owners/{owner(a)}/handover", json={}, headers=routing.headers())
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert owner(assignment(routing, a["complaint_id"])) == owner(a)
    assert outbox(routing, "complaint.reassigned") == []

    present = routing.http.post("/v1/owners/ben/handover", json={}, headers=routing.headers())
    assert present.status_code == 409  # not away at all


def test_handover_to_someone_outside_a_team_is_refused_and_moves_nothing(
    routing: Routing,
) -> None:
    a = assign(routing)
    set_away(routing, owner(a), hours=routing.settings.handover_after_hours * 2)
    r = routing.http.post(
        f"/v1/owners/{owner(a)}/handover", json={"to": "dev"}, headers=routing.headers()
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["to"]
    assert owner(assignment(routing, a["complaint_id"])) == owner(a)
    assert outbox(routing, "complaint.reassigned") == []


# --- over the broker -------------------------------------------------------------------------


@pytest.fixture
def routing_bus(routing_factory: RoutingFactory, kafka: dict[str, Any]) -> Routing:
    return routing_factory(**kafka)


def publish(routing: Routing, topic: str, *envelopes: Envelope) -> None:
    producer = Producer(routing.settings, "test-producer")
    try:
        for env in envelopes:
            producer.send(env.to_kafka(routing.settings.topic(topic)))
    finally:
        producer.close()


def assignment_count(routing: Routing) -> int:
    with routing.container.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Assignment)) or 0)


@pytest.mark.broker
def test_a_complaint_delivered_twice_is_assigned_once(routing_bus: Routing) -> None:
    routing = routing_bus
    worker = routing.worker()
    event = received(routing)
    env = envelope(routing, event, event.customer_id)

    publish(routing, topics.COMPLAINTS, env, env)
    drain(worker.relay, *worker.consumers)

    assert assignment_count(routing) == 1
    assigned = outbox(routing, "complaint.assigned")
    assert [e["complaint_id"] for e in assigned] == [str(event.complaint_id)]
    assert assignment(routing, event.complaint_id)["journey"]["key"] == "cards"


@pytest.mark.broker
def test_loop_events_on_the_bus_change_the_workload_and_the_next_choice(
    routing_bus: Routing,
) -> None:
    routing = routing_bus
    worker = routing.worker()
    first, second = assign(routing), assign(routing)
    assert (owner(first), owner(second)) == ("ana", "ben")  # cho is free: she would be next

    loop_a, loop_b = uuid.uuid4(), uuid.uuid4()
    opened = LoopOpenedV1(
        loop_id=loop_a,
        complaint_id=first["complaint_id"],
        customer_id=first["customer_id"],
        at=routing.clock.now(),
        journey=Ref(key="cards", name="Cards and payments"),
        stage="dispute",
        owner=Ref(key="ana", name="Ana"),
        severity="high",
    )
    publish(
        routing,
        topics.LOOPS,
        envelope(routing, opened, opened.customer_id),
        envelope(routing, closed(second, loop_b), uuid.UUID(second["customer_id"])),
    )
    drain(worker.relay, *worker.consumers)

    a = assignment(routing, first["complaint_id"])
    assert (a["open"], a["loop_id"]) == (True, str(loop_a))
    b = assignment(routing, second["complaint_id"])
    assert (b["open"], b["loop_id"]) == (False, str(loop_b))

    third = assign(routing)
    assert owner(third) == "ben"  # ben's loop closed: ben 0 and cho 0, ben by key
    assert candidate(third, "ben")["open_loops"] == 0
    assert candidate(third, "ana")["open_loops"] == 1

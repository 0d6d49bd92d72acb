"""Loops and promises: opened, joined and reopened by events, worked by owners, read by role —
on SQLite and PostgreSQL, one path over the real broker."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from followup_support import (
    BORROW,
    CARDS,
    assigned,
    confirm,
    deliver,
    get,
    iso,
    loop_of,
    open_loop,
    outbox,
    post,
    resolve_body,
)
from support import Followup, FollowupFactory

from services.followup.models import ComplaintCopy, TaxonomyEntry
from shared.bus.kafka import Producer
from shared.events import topics
from shared.events.envelope import Envelope
from shared.events.models import (
    ComplaintReassignedV1,
    ComplaintReceivedV1,
    Ref,
)
from shared.testing.drain import drain


def test_assignment_opens_a_loop_and_a_re_announcement_changes_nothing(followup: Followup) -> None:
    customer = uuid.uuid4()
    event = assigned(followup, customer, severity="high")
    deliver(followup, event, customer)
    deliver(followup, event, customer)  # routing re-announced it (new envelope, same complaint)

    loop = loop_of(followup, event.complaint_id)
    assert loop["status"] == "open"
    assert loop["complaint_id"] == str(event.complaint_id)
    assert loop["complaint_ids"] == [str(event.complaint_id)]
    assert loop["journey"] == {"key": "cards", "name": "Cards and payments"}
    assert (loop["stage"], loop["owner"]["key"], loop["severity"]) == ("dispute", "ana", "high")
    assert loop["contacts"] == 1
    assert loop["next_due_at"] is None
    assert loop["promises"] == []
    assert [t["type"] for t in loop["timeline"]] == ["opened"]
    opened = outbox(followup, "loop.opened")
    assert len(opened) == 1
    assert opened[0]["loop_id"] == loop["id"]
    assert opened[0]["complaint_ids"] == [str(event.complaint_id)]
    assert opened[0]["owner"]["key"] == "ana"


def test_front_line_promise_becomes_the_first_promise(followup: Followup) -> None:
    due = followup.clock.now() + timedelta(days=1)
    loop = open_loop(followup, promised_callback_by=due)

    assert loop["status"] == "promised"
    [promise] = loop["promises"]
    assert (promise["made_by"], promise["status"]) == ("front-line", "pending")
    assert promise["due_at"] == iso(due)
    assert loop["next_due_at"] == iso(due)
    [made] = outbox(followup, "promise.made")
    assert made["promise_id"] == promise["id"]
    assert made["made_by"] == "front-line"


def test_repeat_complaint_joins_the_open_loop(followup: Followup) -> None:
    customer = uuid.uuid4()
    first = open_loop(followup, customer, severity="medium")
    followup.clock.advance(timedelta(hours=2))
    second = assigned(followup, customer, severity="critical")
    deliver(followup, second, customer)
    # another journey is another loop
    other = open_loop(followup, customer, journey=BORROW, stage="servicing")

    loop = get(followup, first["id"])
    assert loop["contacts"] == 2
    assert loop["severity"] == "critical"
    assert loop["complaint_ids"] == [first["complaint_id"], str(second.complaint_id)]
    assert loop["status"] == "open"
    assert "contact joined" in [t["type"] for t in loop["timeline"]]
    assert other["id"] != loop["id"]
    assert len(outbox(followup, "loop.opened")) == 2


def test_acknowledge_promise_keep_resolve_and_confirmation_closes(followup: Followup) -> None:
    loop = open_loop(followup)
    lid = loop["id"]
    ana = {"subject": "ana", "role": "owner"}

    r = post(followup, f"/loops/{lid}/acknowledge", **ana)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged"

    due = followup.clock.now() + timedelta(days=2)
    r = post(followup, f"/loops/{lid}/promises", {"text": "Refund", "due_at": iso(due)}, **ana)
    assert r.status_code == 201, r.text
    promise = r.json()
    assert (promise["status"], promise["made_by"]) == ("pending", "ana")
    assert get(followup, lid)["next_due_at"] == iso(due)

    r = post(followup, f"/loops/{lid}/notes", {"text": "Called the bank"}, **ana)
    assert r.status_code == 201, r.text

    followup.clock.advance(timedelta(days=1))
    r = post(followup, f"/promises/{promise['id']}/keep", **ana)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "kept"
    assert get(followup, lid)["next_due_at"] is None

    r = post(followup, f"/loops/{lid}/resolve", resolve_body(), **ana)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    assert r.json()["root_cause"] == "fraud rule"

    confirm(followup, loop, resolved=True)
    closed = get(followup, lid)
    assert closed["status"] == "closed"
    assert closed["closed_at"] is not None
    assert [n["text"] for n in closed["notes"]] == ["Called the bank"]
    types = [t["type"] for t in closed["timeline"]]
    assert types == [
        "opened",
        "acknowledged",
        "promise made",
        "note added",
        "promise kept",
        "resolved",
        "customer confirmed",
        "closed",
    ]
    for name in (
        "loop.acknowledged",
        "promise.made",
        "promise.kept",
        "loop.resolved",
        "loop.closed",
    ):
        [event] = outbox(followup, name)
        assert event["loop_id"] == lid
        assert event["complaint_ids"] == [loop["complaint_id"]]


def test_renegotiate_and_cancel_keep_next_due_current(followup: Followup) -> None:
    loop = open_loop(followup)
    lid, now = loop["id"], followup.clock.now()
    p1 = post(followup, f"/loops/{lid}/promises", {"text": "A", "due_at": iso(now + timedelta(1))})
    p2 = post(followup, f"/loops/{lid}/promises", {"text": "B", "due_at": iso(now + timedelta(3))})
    later = now + timedelta(days=5)
    r = post(
        followup, f"/promises/{p1.json()['id']}/renegotiate", {"due_at": iso(later), "reason": "x"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "renegotiated"
    assert get(followup, lid)["next_due_at"] == iso(now + timedelta(days=3))
    r = post(followup, f"/promises/{p2.json()['id']}/cancel", {"reason": "not needed"})
    assert r.json()["status"] == "cancelled"
    assert get(followup, lid)["next_due_at"] == iso(later)
    [event] = outbox(followup, "promise.renegotiated")
    assert event["previous_due_at"] == iso(now + timedelta(days=1))
    assert len(outbox(followup, "promise.cancelled")) == 1


def test_confirmation_not_resolved_reopens(followup: Followup) -> None:
    loop = open_loop(followup)
    assert post(followup, f"/loops/{loop['id']}/resolve", resolve_body()).status_code == 200
    confirm(followup, loop, resolved=False)

    again = get(followup, loop["id"])
    assert again["status"] == "reopened"
    [event] = outbox(followup, "loop.reopened")
    assert event["loop_id"] == loop["id"]
    assert post(followup, f"/loops/{loop['id']}/acknowledge").json()["status"] == "acknowledged"


@pytest.mark.parametrize(("days", "reopens"), [(13, True), (15, False)])
def test_new_complaint_after_closing_reopens_within_the_window(
    followup: Followup, days: int, reopens: bool
) -> None:
    customer = uuid.uuid4()
    loop = open_loop(followup, customer)
    post(followup, f"/loops/{loop['id']}/resolve", resolve_body())
    confirm(followup, loop, resolved=True)
    followup.clock.advance(timedelta(days=days))

    event = assigned(followup, customer)
    deliver(followup, event, customer)
    now = loop_of(followup, event.complaint_id)

    assert (now["id"] == loop["id"]) is reopens
    if reopens:
        assert (now["status"], now["contacts"]) == ("reopened", 2)
        [reopened] = outbox(followup, "loop.reopened")
        assert reopened["complaint_ids"] == [loop["complaint_id"], str(event.complaint_id)]
    else:
        assert (now["status"], now["contacts"]) == ("open", 1)
        assert outbox(followup, "loop.reopened") == []
        assert len(outbox(followup, "loop.opened")) == 2


def test_reassignment_moves_the_owner(followup: Followup) -> None:
    customer = uuid.uuid4()
    loop = open_loop(followup, customer)
    event = ComplaintReassignedV1(
        complaint_id=uuid.UUID(loop["complaint_id"]),
        customer_id=customer,
        journey=CARDS,
        stage="fix",
        owner=Ref(key="ben", name="Ben"),
        previous_owner=Ref(key="ana", name="Ana"),
        reason="holiday",
        by="mgr-cards",
        reassigned_at=followup.clock.now(),
    )
    deliver(followup, event, customer)
    moved = get(followup, loop["id"])
    assert (moved["owner"], moved["stage"]) == ({"key": "ben", "name": "Ben"}, "fix")
    assert moved["timeline"][-1]["detail"]["from"] == "ana"
    ana = {"subject": "ana", "role": "owner"}
    assert (
        followup.http.get(f"/v1/loops/{loop['id']}", headers=followup.headers(**ana)).status_code
        == 404
    )


def test_illegal_actions_are_409_and_past_due_times_422(followup: Followup) -> None:
    loop = open_loop(followup)
    lid = loop["id"]
    due = iso(followup.clock.now() + timedelta(days=1))
    promise = post(followup, f"/loops/{lid}/promises", {"text": "Call", "due_at": due}).json()
    assert post(followup, f"/promises/{promise['id']}/keep").status_code == 200

    r = post(followup, f"/promises/{promise['id']}/keep")
    assert r.status_code == 409
    assert r.json()["type"].endswith("/invalid-transition")
    assert r.headers["content-type"].startswith("application/problem+json")

    past = iso(followup.clock.now() - timedelta(minutes=1))
    r = post(followup, f"/loops/{lid}/promises", {"text": "Late", "due_at": past})
    assert r.status_code == 422
    r = post(followup, f"/loops/{lid}/promises", {"text": "Naive", "due_at": "2030-01-01T10:00:00"})
    assert r.status_code == 422

    post(followup, f"/loops/{lid}/resolve", resolve_body())
    confirm(followup, loop, resolved=True)
    for path, body in [
        (f"/loops/{lid}/resolve", resolve_body()),
        (f"/loops/{lid}/acknowledge", {}),
        (f"/loops/{lid}/notes", {"text": "late note"}),
        (f"/loops/{lid}/promises", {"text": "Again", "due_at": due}),
    ]:
        r = post(followup, path, body)
        assert r.status_code == 409, (path, r.text)
    assert get(followup, lid)["status"] == "closed"
    assert len(outbox(followup, "loop.resolved")) == 1


def test_owners_and_managers_see_only_their_loops(followup: Followup) -> None:
    loop = open_loop(followup, promised_callback_by=followup.clock.now() + timedelta(days=1))
    lid, pid = loop["id"], loop["promises"][0]["id"]
    ben = {"subject": "ben", "role": "owner"}
    stranger = {"subject": "mgr-borrow", "role": "manager", "journeys": ("borrow",)}
    manager = {"subject": "mgr-cards", "role": "manager", "journeys": ("cards",)}

    for who in (ben, stranger):
        h = followup.headers(**who)
        assert followup.http.get(f"/v1/loops/{lid}", headers=h).status_code == 404
        assert post(followup, f"/loops/{lid}/acknowledge", **who).status_code == 404
        assert post(followup, f"/promises/{pid}/keep", **who).status_code == 404
        assert followup.http.get("/v1/loops", headers=h).json()["items"] == []
    assert (
        followup.http.get(f"/v1/loops/{uuid.uuid4()}", headers=followup.headers()).status_code
        == 404
    )
    client = followup.headers(subject="cc-1", role="intake-client")
    assert followup.http.get("/v1/loops", headers=client).status_code == 403

    assert post(followup, f"/loops/{lid}/notes", {"text": "Chase"}, **manager).status_code == 201
    h = followup.headers(subject="ana", role="owner")
    assert followup.http.get(f"/v1/loops/{lid}", headers=h).json()["status"] == "promised"
    assert [i["id"] for i in followup.http.get("/v1/loops", headers=h).json()["items"]] == [lid]


def test_list_filters_and_orders_by_next_due(followup: Followup) -> None:
    now = followup.clock.now()
    late = open_loop(followup, promised_callback_by=now + timedelta(days=2))
    soon = open_loop(followup, promised_callback_by=now + timedelta(days=1), owner=Ref(key="ben"))
    none = open_loop(followup, journey=BORROW, stage="servicing", owner=Ref(key="dev"))
    post(followup, f"/loops/{none['id']}/acknowledge")

    def ids(**params: Any) -> list[str]:
        r = followup.http.get("/v1/loops", params=params, headers=followup.headers())
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids() == [soon["id"], late["id"], none["id"]]
    assert ids(owner="ben") == [soon["id"]]
    assert ids(journey="borrow") == [none["id"]]
    assert ids(status="acknowledged") == [none["id"]]
    assert ids(status="promised") == [soon["id"], late["id"]]
    assert ids(overdue="true") == []

    walked, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = followup.http.get("/v1/loops", params=params, headers=followup.headers()).json()
        walked += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == [soon["id"], late["id"], none["id"]]

    followup.clock.advance(timedelta(days=1, hours=1))
    assert ids(overdue="true") == [soon["id"]]
    manager = followup.headers(subject="mgr-cards", role="manager", journeys=("cards",))
    items = followup.http.get("/v1/loops", headers=manager).json()["items"]
    assert [i["id"] for i in items] == [soon["id"], late["id"]]
    assert [i["overdue"] for i in items] == [True, False]
    r = followup.http.get("/v1/loops", params={"cursor": "nope"}, headers=followup.headers())
    assert r.status_code == 422


@pytest.mark.broker
def test_assignment_over_the_broker_opens_the_loop(
    followup_factory: FollowupFactory, kafka: dict[str, Any]
) -> None:
    followup = followup_factory(**kafka)
    worker = followup.worker()
    customer = uuid.uuid4()
    event = assigned(followup, customer)
    env = Envelope.new(
        source="/closeloop/routing", data=event, time=followup.clock.now(), key=str(customer)
    )
    producer = Producer(followup.settings, "test-producer")
    try:
        producer.send(env.to_kafka(followup.settings.topic(topics.ASSIGNMENTS)))
    finally:
        producer.close()

    drain(worker.relay, *worker.consumers)

    loop = loop_of(followup, event.complaint_id)
    assert (loop["status"], loop["owner"]["key"]) == ("open", "ana")
    assert len(outbox(followup, "loop.opened")) == 1


def test_resolution_must_come_from_the_taxonomy_once_one_is_configured(
    followup: Followup,
) -> None:
    loop = open_loop(followup)
    # No taxonomy yet: any code is accepted (a fresh installation is usable at once).
    free = post(followup, f"/loops/{loop['id']}/resolve", resolve_body())
    assert free.status_code == 200, free.text

    with followup.container.uow() as uow:
        uow.session.add_all(
            [
                TaxonomyEntry(kind="resolution_code", key="refunded", label="Refunded"),
                TaxonomyEntry(kind="root_cause", key="fraud-rule", label="Fraud rule too strict"),
            ]
        )
        uow.commit()
    other = open_loop(followup)
    bad = post(
        followup,
        f"/loops/{other['id']}/resolve",
        {"resolution_code": "waived", "root_cause": "fraud-rule", "summary": "x"},
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["resolution_code"]
    assert get(followup, other["id"])["status"] == "open"  # nothing changed
    good = post(
        followup,
        f"/loops/{other['id']}/resolve",
        {"resolution_code": "refunded", "root_cause": "fraud-rule", "summary": "Fee refunded"},
    )
    assert good.status_code == 200, good.text


def test_received_complaint_is_copied_once_for_the_console(followup: Followup) -> None:
    customer = uuid.uuid4()
    event = ComplaintReceivedV1.model_validate(
        {
            "complaint_id": uuid.uuid4(),
            "client_id": "cc-1",
            "customer_id": customer,
            "customer": {"ref": "cust-9", "name": "Ada Lovelace", "tier": "gold"},
            "channel": "phone",
            "summary": "Card declined twice",
            "description": "At the supermarket",
            "external_ref": "T-77",
            "product": "Credit card",
            "severity": "high",
            "received_at": followup.clock.now(),
            "repeat_contact": {"count_30d": 2, "is_repeat": False},
        }
    )
    deliver(followup, event, customer)
    changed = event.model_copy(update={"summary": "changed"})
    deliver(followup, changed, customer)  # a redelivery never overwrites the first copy
    with followup.container.uow() as uow:
        copy = uow.session.get(ComplaintCopy, event.complaint_id)
        assert copy is not None
        assert (copy.customer_ref, copy.customer_name, copy.summary, copy.external_ref) == (
            "cust-9",
            "Ada Lovelace",
            "Card declined twice",
            "T-77",
        )
        assert copy.contacts_30d == 2

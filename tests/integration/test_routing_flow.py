"""Received -> assigned end to end over the real broker: intake and routing each on its own
database, drained without sleeps."""

from __future__ import annotations

from typing import Any

import pytest
from support import Intake, IntakeFactory, Routing, RoutingFactory, complaint

from shared.testing.drain import drain

pytestmark = pytest.mark.broker


@pytest.fixture
def system(
    intake_factory: IntakeFactory, routing_factory: RoutingFactory, kafka: dict[str, Any]
) -> tuple[Intake, Routing]:
    return intake_factory(**kafka), routing_factory(**kafka)


def test_received_complaint_is_assigned_and_intake_shows_journey_and_owner(
    system: tuple[Intake, Routing],
) -> None:
    intake, routing = system
    iw, rw = intake.worker(), routing.worker()
    created = intake.post(complaint(product="Credit card")).json()

    drain(iw.relay, rw.relay, *rw.consumers, *iw.consumers)

    a = routing.http.get(f"/v1/assignments/{created['id']}", headers=routing.headers()).json()
    assert a["journey"] == {"key": "cards", "name": "Cards and payments"}
    assert a["stage"] == "dispute"
    assert a["rule"] == "card-disputes"
    assert a["catalog_version"] == 1
    assert a["explanation"]["rule_reason"] == "matched rule 'card-disputes'"
    assert {c["owner"] for c in a["explanation"]["candidates"]} == {"ana", "ben", "cho"}
    assert sum(c["chosen"] for c in a["explanation"]["candidates"]) == 1

    status = intake.http.get(f"/v1/complaints/{created['id']}", headers=intake.headers()).json()
    assert status["status"] == "assigned"
    assert status["journey"] == {"key": "cards", "name": "Cards and payments", "stage": "dispute"}
    assert status["owner"]["key"] == a["owner"]["key"]


def test_no_matching_rule_goes_to_triage(system: tuple[Intake, Routing]) -> None:
    intake, routing = system
    iw, rw = intake.worker(), routing.worker()
    created = intake.post(complaint(product="Gift voucher", summary="Voucher expired")).json()
    drain(iw.relay, rw.relay, *rw.consumers)

    a = routing.http.get(f"/v1/assignments/{created['id']}", headers=routing.headers()).json()
    assert (a["journey"]["key"], a["stage"], a["owner"]["key"]) == ("triage", "sort", "tia")
    assert a["rule"] is None
    stats = routing.http.get("/v1/assignments:stats", headers=routing.headers()).json()
    assert stats == {"total": 1, "by_journey": {"triage": 1}, "triage": 1, "triage_share": 1.0}


def test_duplicate_and_re_emitted_complaints_give_one_assignment(
    system: tuple[Intake, Routing],
) -> None:
    intake, routing = system
    iw, rw = intake.worker(), routing.worker()
    created = intake.post(complaint(product="Credit card")).json()
    drain(iw.relay, rw.relay, *rw.consumers, *iw.consumers)
    first = routing.http.get(f"/v1/assignments/{created['id']}", headers=routing.headers()).json()

    # the reconciliation sweep re-emits it (as after a broker that lost the assignment)
    from datetime import timedelta

    from sqlalchemy import update

    from services.intake.models import Complaint

    with intake.container.engine.begin() as conn:
        conn.execute(update(Complaint).values(status="received"))
    intake.clock.advance(timedelta(seconds=intake.settings.reconcile_after_s + 1))
    assert intake.container.service.reconcile() == 1
    drain(iw.relay, rw.relay, *rw.consumers, *iw.consumers)

    again = routing.http.get(f"/v1/assignments/{created['id']}", headers=routing.headers()).json()
    assert again["owner"] == first["owner"]
    assert again["assigned_at"] == first["assigned_at"]
    status = intake.http.get(f"/v1/complaints/{created['id']}", headers=intake.headers()).json()
    assert status["status"] == "assigned"  # the re-announced assignment reached intake
    assert [t["type"] for t in status["timeline"]].count("complaint.assigned") == 2


def test_reassign_moves_the_complaint_and_intake_follows(system: tuple[Intake, Routing]) -> None:
    intake, routing = system
    iw, rw = intake.worker(), routing.worker()
    created = intake.post(complaint(product="Credit card")).json()
    drain(iw.relay, rw.relay, *rw.consumers, *iw.consumers)
    current = routing.http.get(f"/v1/assignments/{created['id']}", headers=routing.headers()).json()
    target = next(o for o in ("ana", "ben", "cho") if o != current["owner"]["key"])

    manager = routing.headers("mgr-cards", "manager", ("cards",))
    r = routing.http.post(
        f"/v1/assignments/{created['id']}/reassign",
        json={"owner": target, "reason": "Knows this merchant"},
        headers=manager,
    )
    assert r.status_code == 200, r.text
    assert r.json()["reassignments"][0]["to"] == target
    drain(iw.relay, rw.relay, *iw.consumers)

    status = intake.http.get(f"/v1/complaints/{created['id']}", headers=intake.headers()).json()
    assert status["owner"]["key"] == target
    assert status["timeline"][-1]["type"] == "complaint.reassigned"

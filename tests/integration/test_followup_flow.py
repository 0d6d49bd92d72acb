"""The whole loop over the real broker with one injected clock: a complaint is taken in, routed,
followed up; the owner acknowledges and promises a call back in a minute and does not keep it;
the manager's webhook gets exactly one alert per ladder level; intake shows the promise overdue;
the owner resolves; the customer's confirmation closes the loop; the metrics show it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from followup_support import Receiver
from support import (
    Followup,
    FollowupFactory,
    Intake,
    IntakeFactory,
    Routing,
    RoutingFactory,
    complaint,
)

from services.followup.notify import AlertDispatcher
from shared.testing.drain import drain
from shared.worker import Worker

pytestmark = pytest.mark.broker

MANAGER = {"subject": "mgr-cards", "role": "manager", "journeys": ("cards",)}


@pytest.fixture
def system(
    intake_factory: IntakeFactory,
    routing_factory: RoutingFactory,
    followup_factory: FollowupFactory,
    kafka: dict[str, Any],
) -> tuple[Intake, Routing, Followup]:
    return intake_factory(**kafka), routing_factory(**kafka), followup_factory(**kafka)


def pumps(*workers: Worker) -> list[Any]:
    return [p for w in workers for p in (w.relay, *w.consumers)]


def put(f: Followup, path: str, body: dict[str, Any]) -> None:
    r = f.http.put(f"/v1{path}", json=body, headers=f.headers())
    assert r.status_code in (200, 201), r.text


def test_broken_promise_escalates_once_per_level_and_confirmation_closes_the_loop(
    system: tuple[Intake, Routing, Followup],
) -> None:
    intake, routing, followup = system
    workers = [intake.worker(), routing.worker(), followup.worker()]
    with Receiver() as manager_hook, httpx.Client() as client:
        put(
            followup,
            "/notification-channels/manager-hook",
            {"kind": "webhook", "config": {"url": manager_hook.url, "secret": "k" * 32}},
        )
        put(
            followup,
            "/escalation-ladders/*",
            {
                "levels": [
                    {"offset_minutes": 0, "audience": "journey_manager", "channel": "manager-hook"},
                    {
                        "offset_minutes": 10,
                        "audience": "journey_manager",
                        "channel": "manager-hook",
                    },
                ]
            },
        )
        dispatcher = AlertDispatcher(followup.container.uow, followup.clock, client)
        scheduler = followup.container.scheduler()

        created = intake.post(complaint(product="Credit card")).json()
        drain(*pumps(*workers))
        [loop] = followup.http.get("/v1/loops", headers=followup.headers(**MANAGER)).json()["items"]
        assert loop["complaint_id"] == created["id"]
        owner = {"subject": loop["owner"]["key"], "role": "owner"}

        # The owner takes it on and promises a call back within a minute.
        r = followup.http.post(
            f"/v1/loops/{loop['id']}/acknowledge", headers=followup.headers(**owner)
        )
        assert r.status_code == 200, r.text
        due = followup.clock.now() + timedelta(minutes=1)
        r = followup.http.post(
            f"/v1/loops/{loop['id']}/promises",
            json={"text": "Call the customer back", "due_at": due.isoformat()},
            headers=followup.headers(**owner),
        )
        assert r.status_code == 201, r.text
        drain(*pumps(*workers))
        status = intake.http.get(f"/v1/complaints/{created['id']}", headers=intake.headers())
        assert status.json()["status"] == "promised"

        # The minute passes without a call: level 1 fires, once, however often the jobs run.
        followup.clock.advance(timedelta(minutes=1, seconds=3))
        for _ in range(3):
            scheduler.run_once()
            dispatcher.run_once()
        assert [b["level"] for b in manager_hook.bodies()] == [1]
        assert manager_hook.bodies()[0]["audience"] == "manager:mgr-cards"
        assert manager_hook.bodies()[0]["late_by_seconds"] == 3

        followup.clock.advance(timedelta(minutes=10))
        for _ in range(3):
            scheduler.run_once()
            dispatcher.run_once()
        assert [b["level"] for b in manager_hook.bodies()] == [1, 2]

        drain(*pumps(*workers))
        status = intake.http.get(f"/v1/complaints/{created['id']}", headers=intake.headers())
        assert [p["status"] for p in status.json()["promises"]] == ["overdue"]

        # The owner resolves a while later; the customer confirms: the loop closes.
        followup.clock.advance(timedelta(minutes=5))
        r = followup.http.post(
            f"/v1/loops/{loop['id']}/resolve",
            json={
                "resolution_code": "refunded",
                "root_cause": "card blocked by a fraud rule",
                "summary": "Unblocked the card and refunded the fee",
            },
            headers=followup.headers(**owner),
        )
        assert r.status_code == 200, r.text
        drain(*pumps(*workers))
        r = intake.http.post(
            f"/v1/complaints/{created['id']}/confirmation",
            json={"resolved": True, "csat": 4},
            headers=intake.headers(),
        )
        assert r.status_code == 201, r.text
        drain(*pumps(*workers))

        closed = followup.http.get(f"/v1/loops/{loop['id']}", headers=followup.headers())
        assert closed.json()["status"] == "closed"
        status = intake.http.get(f"/v1/complaints/{created['id']}", headers=intake.headers())
        assert status.json()["status"] == "closed"

        alerts = followup.http.get("/v1/alerts", headers=followup.headers(**MANAGER)).json()
        assert [(a["level"], a["delivery"]["status"]) for a in alerts["items"]] == [
            (2, "sent"),
            (1, "sent"),
        ]
        followup.clock.advance(timedelta(minutes=1))  # the manager looks a little later
        metrics = followup.http.get(
            "/v1/metrics/journeys", headers=followup.headers(**MANAGER)
        ).json()
        [cards] = metrics["journeys"]
        totals = cards["totals"]
        assert totals["volume"]["loops"] == 1
        assert totals["promises"] == {"due": 1, "kept_on_time": 0, "kept_rate": 0.0}
        assert totals["escalations"] == 2
        assert totals["csat"] == {"count": 1, "mean": 4.0}

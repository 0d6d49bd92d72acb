"""The escalation scheduler with an injected clock: reminders before due, one alert per ladder
level after, promise.overdue / loop.escalated emitted, SLA targets paused while waiting on the
customer, each level fired once after downtime and by competing replicas — SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from followup_support import (
    assigned,
    configure_alerts,
    deliver,
    get,
    open_loop,
    outbox,
    post,
    resolve_body,
)
from sqlalchemy import func, select
from support import Followup, FollowupFactory

from services.followup.models import (
    Alert,
    Delivery,
    DueTarget,
    SlaPolicyRow,
)
from shared.ids import new_id

LADDER = [
    {"offset_minutes": -30, "audience": "owner", "channel": "hook"},
    {"offset_minutes": 0, "audience": "owner", "channel": "hook"},
    {"offset_minutes": 0, "audience": "journey_manager", "channel": "hook"},
    {"offset_minutes": 60, "audience": "person:head-of-cx", "channel": "hook"},
]


def alerts(f: Followup, **who: Any) -> list[dict[str, Any]]:
    r = f.http.get("/v1/alerts", params={"limit": 200}, headers=f.headers(**who))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def promise_due_in(f: Followup, loop: dict[str, Any], delta: timedelta) -> dict[str, Any]:
    due = f.clock.now() + delta
    r = post(f, f"/loops/{loop['id']}/promises", {"text": "Call back", "due_at": due.isoformat()})
    assert r.status_code == 201, r.text
    return dict(r.json())


def tick(f: Followup) -> int:
    return f.container.scheduler().run_once()


def test_each_ladder_level_fires_once_reminder_before_and_escalations_after(
    followup: Followup,
) -> None:
    configure_alerts(followup, {"*": LADDER})
    loop = open_loop(followup)
    promise = promise_due_in(followup, loop, timedelta(hours=2))
    assert tick(followup) == 0

    followup.clock.advance(timedelta(minutes=90))  # 30 minutes before due
    assert tick(followup) == 1
    assert tick(followup) == 0  # nothing new: a level never fires twice
    [reminder] = alerts(followup)
    assert (reminder["kind"], reminder["level"], reminder["audience"]) == (
        "reminder",
        1,
        "owner:ana",
    )
    assert reminder["late_by_seconds"] == 0
    assert reminder["target"] == f"promise:{promise['id']}"
    assert reminder["delivery"]["status"] == "pending"
    assert outbox(followup, "promise.overdue") == []

    followup.clock.advance(timedelta(minutes=30, seconds=5))  # 5 s past due
    tick(followup)
    tick(followup)
    fired = alerts(followup)
    assert [(a["level"], a["kind"], a["audience"]) for a in fired[:2]] == [
        (3, "overdue", "manager:mgr-cards"),
        (2, "overdue", "owner:ana"),
    ]
    assert all(a["late_by_seconds"] == 5 for a in fired[:2])
    [overdue] = outbox(followup, "promise.overdue")
    assert (overdue["promise_id"], overdue["late_by_seconds"]) == (promise["id"], 5)
    escalated = outbox(followup, "loop.escalated")
    assert [(e["level"], e["audience"]) for e in escalated] == [
        (2, "owner:ana"),
        (3, "manager:mgr-cards"),
    ]
    assert get(followup, loop["id"])["promises"][0]["status"] == "overdue"
    assert get(followup, loop["id"])["overdue"] is True

    followup.clock.advance(timedelta(hours=1))
    tick(followup)
    tick(followup)
    assert [a["level"] for a in alerts(followup)] == [4, 3, 2, 1]
    assert alerts(followup)[0]["audience"] == "person:head-of-cx"
    assert len(outbox(followup, "promise.overdue")) == 1
    assert len(outbox(followup, "loop.escalated")) == 3
    # Everything fired: the target left the scheduler's index.
    with followup.container.uow() as uow:
        assert uow.session.scalar(select(DueTarget.next_fire_at)) is None


def test_after_downtime_each_missed_level_fires_once_saying_how_late(
    followup_factory: FollowupFactory,
) -> None:
    before = followup_factory()
    configure_alerts(before, {"*": LADDER})
    loop = open_loop(before)
    promise_due_in(before, loop, timedelta(hours=1))
    before.container.close()

    # The service was down for hours; a new process (container) starts on the same database.
    followup = followup_factory()
    followup.clock.advance(timedelta(hours=5))
    assert tick(followup) == 1
    assert tick(followup) == 0
    fired = sorted(alerts(followup), key=lambda a: a["level"])
    assert [(a["level"], a["late_by_seconds"]) for a in fired] == [
        (1, 4 * 3600 + 30 * 60),
        (2, 4 * 3600),
        (3, 4 * 3600),
        (4, 3 * 3600),
    ]
    assert len(outbox(followup, "promise.overdue")) == 1
    assert outbox(followup, "promise.overdue")[0]["late_by_seconds"] == 4 * 3600


def test_a_reminder_already_past_when_promising_is_skipped(followup: Followup) -> None:
    configure_alerts(followup, {"*": LADDER})
    loop = open_loop(followup)
    promise_due_in(followup, loop, timedelta(minutes=10))
    followup.clock.advance(timedelta(minutes=11))
    tick(followup)
    assert sorted(a["level"] for a in alerts(followup)) == [2, 3]


def test_kept_promise_stops_and_renegotiated_promise_restarts_its_ladder(
    followup: Followup,
) -> None:
    configure_alerts(followup, {"*": LADDER})
    loop = open_loop(followup)
    kept = promise_due_in(followup, loop, timedelta(hours=1))
    moved = promise_due_in(followup, loop, timedelta(hours=1))
    followup.clock.advance(timedelta(minutes=40))
    tick(followup)  # both reminders
    assert post(followup, f"/promises/{kept['id']}/keep").status_code == 200
    new_due = followup.clock.now() + timedelta(hours=3)
    r = post(
        followup,
        f"/promises/{moved['id']}/renegotiate",
        {"due_at": new_due.isoformat(), "reason": "customer away"},
    )
    assert r.status_code == 200, r.text
    assert get(followup, loop["id"])["next_due_at"] == new_due.isoformat().replace("+00:00", "Z")

    followup.clock.advance(timedelta(minutes=30))  # the old due time passes: nothing owed then
    tick(followup)
    assert len(alerts(followup)) == 2
    assert outbox(followup, "promise.overdue") == []

    followup.clock.set(new_due - timedelta(minutes=30))
    tick(followup)  # the new deal gets its own reminder
    reminders = [a for a in alerts(followup) if a["kind"] == "reminder"]
    assert len(reminders) == 3
    assert reminders[0]["due_at"] == new_due.isoformat().replace("+00:00", "Z")


def test_sla_targets_fire_pause_while_waiting_on_the_customer_and_settle(
    followup: Followup,
) -> None:
    configure_alerts(
        followup,
        {"*": [{"offset_minutes": 0, "audience": "journey_manager", "channel": "hook"}]},
        sla={"acknowledge": 60, "first_promise": 120, "resolve": 600},
    )
    opened_at = followup.clock.now()
    loop = open_loop(followup)
    sla = {t["target"]: t for t in get(followup, loop["id"])["sla"]}
    assert sla["acknowledge"]["due_at"] == (opened_at + timedelta(minutes=60)).isoformat().replace(
        "+00:00", "Z"
    )
    assert loop["next_due_at"] == sla["acknowledge"]["due_at"]

    followup.clock.advance(timedelta(minutes=61))
    tick(followup)
    [breach] = alerts(followup, subject="mgr-cards", role="manager", journeys=("cards",))
    assert (breach["kind"], breach["target"]) == ("sla_breach", "sla:acknowledge")
    assert get(followup, loop["id"])["sla"][0]["state"] == "missed"

    # Waiting on the customer for 5 hours: the first-promise and resolve clocks stop.
    assert post(followup, f"/loops/{loop['id']}/wait", {"reason": "documents"}).status_code == 200
    waiting = {t["target"]: t for t in get(followup, loop["id"])["sla"]}
    assert waiting["resolve"]["state"] == "paused"
    followup.clock.advance(timedelta(hours=5))
    tick(followup)
    assert len(alerts(followup)) == 1
    resumed = post(followup, f"/loops/{loop['id']}/resume")
    assert resumed.status_code == 200, resumed.text
    sla = {t["target"]: t for t in resumed.json()["sla"]}
    # Resolve is due 600 business minutes after opening, plus the five paused hours.
    resolve_due = opened_at + timedelta(minutes=600) + timedelta(hours=5)
    assert sla["resolve"]["due_at"] == resolve_due.isoformat().replace("+00:00", "Z")
    assert post(followup, f"/loops/{loop['id']}/resolve", resolve_body()).status_code == 200
    states = {t["target"]: t["state"] for t in get(followup, loop["id"])["sla"]}
    assert states == {"acknowledge": "missed", "first_promise": "met", "resolve": "met"}
    followup.clock.advance(timedelta(days=2))
    tick(followup)
    assert len(alerts(followup)) == 1


def test_alerts_are_listed_per_manager_and_owner_and_acknowledged_once(
    followup: Followup,
) -> None:
    configure_alerts(followup, {"*": LADDER})
    loop = open_loop(followup)
    promise_due_in(followup, loop, timedelta(minutes=45))
    other = open_loop(followup, owner={"key": "bo", "name": "Bo"}, journey={"key": "borrow"})
    promise_due_in(followup, other, timedelta(minutes=45))
    followup.clock.advance(timedelta(minutes=46))
    tick(followup)

    manager = {"subject": "mgr-cards", "role": "manager", "journeys": ("cards",)}
    mine = alerts(followup, **manager)
    assert {a["loop_id"] for a in mine} == {loop["id"]}
    assert {a["loop_id"] for a in alerts(followup, subject="ana", role="owner")} == {loop["id"]}
    assert {a["loop_id"] for a in alerts(followup, subject="bo", role="owner")} == {other["id"]}
    assert len(alerts(followup)) == 6  # admin: both loops, three levels each

    target = mine[0]["id"]
    r = followup.http.post(f"/v1/alerts/{target}/ack", headers=followup.headers(**manager))
    assert r.status_code == 200, r.text
    assert r.json()["acked_by"] == "mgr-cards"
    first = r.json()["acked_at"]
    followup.clock.advance(timedelta(minutes=1))
    again = followup.http.post(f"/v1/alerts/{target}/ack", headers=followup.headers())
    assert again.json()["acked_at"] == first
    unacked = followup.http.get(
        "/v1/alerts", params={"acked": "false"}, headers=followup.headers(**manager)
    )
    assert target not in {a["id"] for a in unacked.json()["items"]}
    # Another journey's manager cannot see or acknowledge it.
    outsider = {"subject": "mgr-borrow", "role": "manager", "journeys": ("borrow",)}
    r = followup.http.post(f"/v1/alerts/{target}/ack", headers=followup.headers(**outsider))
    assert r.status_code == 404


def test_repeat_complaint_with_higher_severity_tightens_the_sla(followup: Followup) -> None:
    configure_alerts(
        followup, {"*": LADDER}, sla={"acknowledge": 600, "first_promise": 900, "resolve": 6000}
    )
    with followup.container.uow() as uow:
        uow.session.add(
            SlaPolicyRow(
                id=new_id(),
                journey_key="*",
                severity="critical",
                calendar_key="always",
                acknowledge_minutes=30,
                first_promise_minutes=60,
                resolve_minutes=240,
                version=1,
                updated_at=followup.clock.now(),
            )
        )
        uow.commit()
    customer = uuid.uuid4()
    opened_at = followup.clock.now()
    loop = open_loop(followup, customer)
    followup.clock.advance(timedelta(minutes=5))
    deliver(followup, assigned(followup, customer, severity="critical"), customer)
    after = get(followup, loop["id"])
    assert after["severity"] == "critical"
    sla = {t["target"]: t["due_at"] for t in after["sla"]}
    assert sla["acknowledge"] == (opened_at + timedelta(minutes=30)).isoformat().replace(
        "+00:00", "Z"
    )


# SKIP LOCKED claims are PostgreSQL's; SQLite has a single writer by construction.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_competing_scheduler_replicas_on_postgresql_never_double_fire(
    followup_factory: FollowupFactory,
) -> None:
    first = followup_factory()
    configure_alerts(first, {"*": LADDER})
    loops = [open_loop(first) for _ in range(60)]
    for loop in loops:
        promise_due_in(first, loop, timedelta(hours=1))
    first.clock.advance(timedelta(hours=2))
    replicas = [followup_factory() for _ in range(4)]  # separate engines, as separate processes
    schedulers = [r.container.scheduler() for r in replicas]
    for s in schedulers:
        s._batch = 7  # small batches so the replicas interleave
    errors: list[BaseException] = []
    start = threading.Barrier(len(schedulers))

    def run(s: Any) -> None:
        try:
            start.wait()
            s.run_once()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with first.container.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Alert)) == 60 * 4
        assert uow.session.scalar(select(func.count()).select_from(Delivery)) == 60 * 4
        per_level = uow.session.execute(
            select(Alert.target_id, Alert.level, func.count()).group_by(
                Alert.target_id, Alert.level
            )
        ).all()
        assert {n for *_, n in per_level} == {1}
    assert len(outbox(first, "promise.overdue")) == 60

"""Journey metrics over loops made through the real paths (assignment events, owner actions, the
scheduler, the customer's confirmation): exact figures, who sees what, the period filter —
SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from followup_support import (
    BORROW,
    assigned,
    configure_alerts,
    confirm,
    deliver,
    iso,
    open_loop,
    post,
)
from support import T0, Followup

from shared.events.models import Ref

ANA = {"subject": "ana", "role": "owner"}
BEN = {"subject": "ben", "role": "owner"}
DEV = {"subject": "dev", "role": "owner"}


def configure(f: Followup) -> None:
    """Ladders: a reminder 30 min before and an owner alert at the due time (borrow: only a
    manager alert at it); a 24/7 SLA policy for borrow alone (acknowledge within 30 minutes)."""
    configure_alerts(
        f,
        {
            "*": [
                {"offset_minutes": -30, "audience": "owner", "channel": "hook"},
                {"offset_minutes": 0, "audience": "owner", "channel": "hook"},
            ],
            "borrow": [{"offset_minutes": 0, "audience": "journey_manager", "channel": "hook"}],
        },
        sla={"acknowledge": 30, "first_promise": 600, "resolve": 6000},
        sla_journey="borrow",
    )


def ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return dict(r.json())


def promise(f: Followup, loop_id: str, due_at: datetime, **who: Any) -> dict[str, Any]:
    return ok(
        post(f, f"/loops/{loop_id}/promises", {"text": "Call back", "due_at": iso(due_at)}, **who),
        201,
    )


def resolve(f: Followup, loop_id: str, root_cause: str, **who: Any) -> None:
    body = {"resolution_code": "fixed", "root_cause": root_cause, "summary": "Done"}
    ok(post(f, f"/loops/{loop_id}/resolve", body, **who))


def tick(f: Followup) -> None:
    f.container.scheduler().run_once()


def story(f: Followup) -> dict[str, dict[str, Any]]:
    """Three loops from T0, worked until T0 + 21 h (the clock is left there).

    A (cards/dispute/ana): acknowledged after 10 min, a repeat contact, a promise kept on time,
      resolved after 20 h, closed by the customer with CSAT 4.
    B (cards/fix/ben): acknowledged after 30 min, a promise due at 2 h 30 left overdue (one
      reminder, one overdue alert).
    C (borrow/servicing/dev): its 30-minute acknowledge SLA breached (one sla_breach alert),
      acknowledged after 1 h, resolved after 21 h.
    """
    configure(f)
    clock = f.clock
    customer_a = uuid.uuid4()
    a = open_loop(f, customer_a)
    b = open_loop(f, owner=Ref(key="ben", name="Ben"), stage="fix")
    c = open_loop(
        f,
        journey=BORROW,
        stage="servicing",
        owner=Ref(key="dev", name="Dev"),
        journey_manager="mgr-borrow",
    )

    clock.advance(timedelta(minutes=10))
    ok(post(f, f"/loops/{a['id']}/acknowledge", **ANA))
    deliver(f, assigned(f, customer_a), customer_a)  # the customer calls again: joins A

    clock.advance(timedelta(minutes=20))  # T0 + 30 min
    ok(post(f, f"/loops/{b['id']}/acknowledge", **BEN))
    p1 = promise(f, a["id"], T0 + timedelta(hours=20, minutes=30), **ANA)
    promise(f, b["id"], T0 + timedelta(hours=2, minutes=30), **BEN)

    clock.advance(timedelta(minutes=30))  # T0 + 1 h: C's acknowledge target is 30 min late
    tick(f)
    ok(post(f, f"/loops/{c['id']}/acknowledge", **DEV))

    clock.advance(timedelta(minutes=75))  # T0 + 2 h 15: the reminder of B's promise
    tick(f)
    clock.advance(timedelta(minutes=30))  # T0 + 2 h 45: B's promise is overdue
    tick(f)

    clock.set(T0 + timedelta(hours=20))
    ok(post(f, f"/promises/{p1['id']}/keep", **ANA))
    resolve(f, a["id"], "fraud rule", **ANA)
    confirm(f, a, resolved=True)  # CSAT 4, closes A

    clock.set(T0 + timedelta(hours=21))
    resolve(f, c["id"], "rate change", **DEV)
    return {"a": a, "b": b, "c": c}


def metrics(f: Followup, who: dict[str, Any] | None = None, **params: Any) -> Any:
    query = {k.rstrip("_"): iso(v) if isinstance(v, datetime) else v for k, v in params.items()}
    return f.http.get("/v1/metrics/journeys", params=query, headers=f.headers(**(who or {})))


def figures(
    loops: int = 0,
    complaints: int = 0,
    ack: list[float | None] | None = None,
    resolve: list[float | None] | None = None,
    promises: tuple[int, int, float | None] = (0, 0, None),
    overdue_now: int = 0,
    escalations: int = 0,
    repeat: tuple[int, float | None] = (0, None),
    csat: tuple[int, float | None] = (0, None),
    causes: list[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """The expected figures; ack and resolve are [count, median, p90]."""
    ack = ack or [0, None, None]
    resolve = resolve or [0, None, None]
    return {
        "volume": {"loops": loops, "complaints": complaints},
        "time_to_acknowledge": dict(zip(("count", "median_s", "p90_s"), ack, strict=True)),
        "time_to_resolve": dict(zip(("count", "median_s", "p90_s"), resolve, strict=True)),
        "promises": dict(zip(("due", "kept_on_time", "kept_rate"), promises, strict=True)),
        "overdue_now": overdue_now,
        "escalations": escalations,
        "repeat_contacts": dict(zip(("loops", "rate"), repeat, strict=True)),
        "csat": dict(zip(("count", "mean"), csat, strict=True)),
        "top_root_causes": [{"root_cause": k, "count": n} for k, n in causes or []],
    }


A_FIGURES = figures(
    loops=1,
    complaints=2,
    ack=[1, 600.0, 600.0],
    resolve=[1, 72000.0, 72000.0],
    promises=(1, 1, 1.0),
    repeat=(1, 1.0),
    csat=(1, 4.0),
    causes=[("fraud rule", 1)],
)
B_FIGURES = figures(
    loops=1,
    complaints=1,
    ack=[1, 1800.0, 1800.0],
    promises=(1, 0, 0.0),
    overdue_now=1,
    escalations=1,
    repeat=(0, 0.0),
)
C_FIGURES = figures(
    loops=1,
    complaints=1,
    ack=[1, 3600.0, 3600.0],
    resolve=[1, 75600.0, 75600.0],
    escalations=1,
    repeat=(0, 0.0),
    causes=[("rate change", 1)],
)
CARDS_TOTALS = figures(
    loops=2,
    complaints=3,
    ack=[2, 1200.0, 1680.0],  # 600 and 1800 s: interpolated
    resolve=[1, 72000.0, 72000.0],
    promises=(2, 1, 0.5),
    overdue_now=1,
    escalations=1,
    repeat=(1, 0.5),
    csat=(1, 4.0),
    causes=[("fraud rule", 1)],
)


def row(key: str, name: str, expected: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "name": name, **expected}


def test_admin_sees_every_journey_by_stage_and_every_owner(followup: Followup) -> None:
    story(followup)
    now = followup.clock.now()

    body = ok(metrics(followup))

    assert body["from"] == iso(now - timedelta(days=30))
    assert body["to"] == body["as_of"] == iso(now)
    assert body["group"] == "stage"
    cards, borrow = sorted(body["journeys"], key=lambda j: j["journey"]["key"] != "cards")
    assert cards["journey"] == {"key": "cards", "name": "Cards and payments"}
    assert cards["totals"] == CARDS_TOTALS
    assert cards["rows"] == [
        row("dispute", "dispute", A_FIGURES),
        row("fix", "fix", B_FIGURES),
    ]
    assert borrow["journey"] == {"key": "borrow", "name": "Borrow"}
    assert borrow["totals"] == C_FIGURES
    assert borrow["rows"] == [row("servicing", "servicing", C_FIGURES)]
    assert body["by_owner"] == [
        {"owner": {"key": "ana", "name": "Ana"}, **A_FIGURES},
        {"owner": {"key": "ben", "name": "Ben"}, **B_FIGURES},
        {"owner": {"key": "dev", "name": "Dev"}, **C_FIGURES},
    ]


def test_group_by_owner_and_one_journey(followup: Followup) -> None:
    story(followup)

    body = ok(metrics(followup, group="owner", journey="cards"))

    assert body["group"] == "owner"
    [cards] = body["journeys"]
    assert cards["totals"] == CARDS_TOTALS
    assert cards["rows"] == [row("ana", "Ana", A_FIGURES), row("ben", "Ben", B_FIGURES)]
    assert [o["owner"]["key"] for o in body["by_owner"]] == ["ana", "ben"]


def test_an_owner_sees_only_their_own_loops(followup: Followup) -> None:
    story(followup)

    body = ok(metrics(followup, BEN))

    [cards] = body["journeys"]
    assert cards["totals"] == B_FIGURES
    assert cards["rows"] == [row("fix", "fix", B_FIGURES)]
    assert body["by_owner"] == [{"owner": {"key": "ben", "name": "Ben"}, **B_FIGURES}]
    # another journey asked for by name shows nothing either
    assert ok(metrics(followup, BEN, journey="borrow"))["journeys"] == []


def test_a_manager_sees_only_their_journeys(followup: Followup) -> None:
    story(followup)
    manager = {"subject": "mgr-cards", "role": "manager", "journeys": ("cards",)}

    body = ok(metrics(followup, manager))

    [cards] = body["journeys"]
    assert cards["journey"]["key"] == "cards"
    assert cards["totals"] == CARDS_TOTALS
    assert [o["owner"]["key"] for o in body["by_owner"]] == ["ana", "ben"]
    empty = ok(metrics(followup, manager, journey="borrow"))
    assert (empty["journeys"], empty["by_owner"]) == ([], [])
    nobody = {"subject": "mgr-x", "role": "manager"}
    assert ok(metrics(followup, nobody))["journeys"] == []


def test_the_period_selects_loops_opened_promises_due_alerts_fired_and_loops_closed(
    followup: Followup,
) -> None:
    story(followup)

    # From T0 + 90 min: no loop opened, but B's promise fell due and escalated, A's was kept and
    # A was closed; B is overdue now whatever the period. C has nothing in it.
    body = ok(metrics(followup, from_=T0 + timedelta(minutes=90)))
    [cards] = body["journeys"]
    assert cards["totals"] == figures(
        promises=(2, 1, 0.5), overdue_now=1, escalations=1, csat=(1, 4.0)
    )
    assert [r["key"] for r in cards["rows"]] == ["dispute", "fix"]

    # Up to T0 + 1 h (excluded): the three loops opened, C's breach at T0 + 1 h not in it.
    body = ok(metrics(followup, from_=T0 - timedelta(hours=1), to=T0 + timedelta(hours=1)))
    assert body["from"] == iso(T0 - timedelta(hours=1))
    assert body["to"] == iso(T0 + timedelta(hours=1))
    by_key = {j["journey"]["key"]: j["totals"] for j in body["journeys"]}
    assert by_key["borrow"]["escalations"] == 0
    assert by_key["borrow"]["volume"] == {"loops": 1, "complaints": 1}
    assert by_key["cards"]["volume"] == {"loops": 2, "complaints": 3}
    assert by_key["cards"]["promises"] == {"due": 0, "kept_on_time": 0, "kept_rate": None}
    assert by_key["cards"]["csat"] == {"count": 0, "mean": None}
    assert by_key["cards"]["top_root_causes"] == [{"root_cause": "fraud rule", "count": 1}]

    # A period entirely before anything happened.
    body = ok(metrics(followup, to=T0))
    assert [j["journey"]["key"] for j in body["journeys"]] == ["cards"]  # B overdue now
    assert body["journeys"][0]["totals"]["volume"]["loops"] == 0
    assert body["journeys"][0]["totals"]["overdue_now"] == 1


def test_a_promise_kept_before_its_due_time_counts_though_not_yet_due(
    followup: Followup,
) -> None:
    loop = open_loop(followup)
    early = promise(followup, loop["id"], T0 + timedelta(days=2))
    promise(followup, loop["id"], T0 + timedelta(days=3))  # pending, not due yet: not counted
    cancelled = promise(followup, loop["id"], T0 + timedelta(hours=1))
    ok(post(followup, f"/promises/{cancelled['id']}/cancel", {"reason": "not needed"}))
    followup.clock.advance(timedelta(hours=5))
    ok(post(followup, f"/promises/{early['id']}/keep"))

    body = ok(metrics(followup, to=T0 + timedelta(days=7)))

    [cards] = body["journeys"]
    assert cards["totals"]["promises"] == {"due": 1, "kept_on_time": 1, "kept_rate": 1.0}
    assert cards["totals"]["time_to_acknowledge"] == {
        "count": 1,
        "median_s": 0.0,  # a promise acknowledges the loop
        "p90_s": 0.0,
    }
    assert cards["totals"]["overdue_now"] == 0


def test_an_empty_database_gives_empty_lists(followup: Followup) -> None:
    body = ok(metrics(followup))
    assert (body["journeys"], body["by_owner"]) == ([], [])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from_": T0, "to": T0}, "to"),
        ({"from_": T0 + timedelta(hours=1), "to": T0}, "to"),
        ({"from_": T0 + timedelta(days=1)}, "from"),  # `to` is now
        ({"from_": T0 - timedelta(days=367)}, "from"),
    ],
)
def test_an_empty_or_too_long_period_is_a_422_naming_the_field(
    followup: Followup, params: dict[str, Any], field: str
) -> None:
    r = metrics(followup, **params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_naive_datetimes_and_unknown_groups_are_rejected(followup: Followup) -> None:
    r = metrics(followup, from_="2026-11-01T00:00:00")
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["query.from"]
    r = metrics(followup, group="severity")
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["query.group"]


def test_only_staff_may_read_metrics(followup: Followup) -> None:
    assert followup.http.get("/v1/metrics/journeys").status_code == 401
    r = metrics(followup, {"subject": "cc-1", "role": "intake-client"})
    assert r.status_code == 403, r.text

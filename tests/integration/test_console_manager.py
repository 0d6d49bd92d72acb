"""The console's manager pages: the escalation board (only my journeys, acknowledging through a
CSRF-checked form), journey metrics with a CSV download and period validation, and the journeys
followup has seen — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from followup_support import configure_alerts, csrf_of, open_loop, post, sign_in
from support import Followup, FollowupFactory

from services.followup.console.manager import CSV_COLUMNS


@pytest.fixture
def followup(followup_factory: FollowupFactory) -> Iterator[Followup]:
    """Followup whose console finds no routing at its address: these tests are about followup's
    own pages (test_console_routing covers the calls to routing)."""
    f = followup_factory()
    nowhere = httpx.Client(base_url="http://127.0.0.1:9", timeout=5, follow_redirects=False)
    f.http.app.state.routing_http = nowhere
    yield f
    nowhere.close()


LADDER = [
    {"offset_minutes": -30, "audience": "owner", "channel": "hook"},
    {"offset_minutes": 0, "audience": "owner", "channel": "hook"},
    {"offset_minutes": 0, "audience": "journey_manager", "channel": "hook"},
]
MANAGER = {"subject": "mgr-cards", "role": "manager", "journeys": ("cards",)}


def promise_due_in(f: Followup, loop: dict[str, Any], delta: timedelta) -> None:
    due = (f.clock.now() + delta).isoformat()
    r = post(f, f"/loops/{loop['id']}/promises", {"text": "Call back", "due_at": due})
    assert r.status_code == 201, r.text


def overdue_in_two_journeys(f: Followup) -> tuple[dict[str, Any], dict[str, Any]]:
    """A cards loop and a borrow loop, each with a promise missed by a minute."""
    configure_alerts(f, {"*": LADDER})
    mine = open_loop(f)
    other = open_loop(f, owner={"key": "bo", "name": "Bo"}, journey={"key": "borrow", "name": "B"})
    promise_due_in(f, mine, timedelta(minutes=45))
    promise_due_in(f, other, timedelta(minutes=45))
    f.clock.advance(timedelta(minutes=46))
    scheduler = f.container.scheduler()
    while scheduler.run_once():
        pass
    return mine, other


def ack_ids(page: str) -> list[str]:
    return re.findall(r'action="/console/alerts/([0-9a-f-]+)/ack"', page)


def test_board_shows_my_journeys_escalations_with_level_and_lateness(followup: Followup) -> None:
    mine, other = overdue_in_two_journeys(followup)
    sign_in(followup, **MANAGER)

    r = followup.http.get("/console/board")
    assert r.status_code == 200, r.text
    page = r.text
    assert 'data-refresh="/console/board?partial=1" data-every="15"' in page
    assert len(ack_ids(page)) == 2  # levels 2 and 3; the reminder is no escalation
    assert "level 3" in page
    assert "manager:mgr-cards" in page
    assert "level 2" in page
    assert "owner:ana" in page
    assert "late by 1 min" in page
    assert "1 min ago" in page  # since the promise was due
    assert f"/console/loops/{mine['id']}" in page
    assert mine["complaint_id"] in page  # overdue now, with the id routing needs to reassign
    assert other["id"] not in page
    assert other["complaint_id"] not in page
    assert "level 1" not in page
    assert "/v1/assignments/COMPLAINT_ID/reassign" in page

    partial = followup.http.get("/console/board", params={"partial": 1}).text
    assert "<html" not in partial
    assert ack_ids(partial) == ack_ids(page)


def test_acknowledging_needs_the_csrf_token_and_removes_it_from_the_board(
    followup: Followup,
) -> None:
    overdue_in_two_journeys(followup)
    sign_in(followup, **MANAGER)
    page = followup.http.get("/console/board").text
    first, second = ack_ids(page)

    r = followup.http.post(f"/console/alerts/{first}/ack", data={}, follow_redirects=False)
    assert r.status_code == 403
    r = followup.http.post(f"/console/alerts/{first}/ack", data={"csrf": "0" * 64})
    assert r.status_code == 403
    assert ack_ids(followup.http.get("/console/board").text) == [first, second]  # unchanged

    r = followup.http.post(
        f"/console/alerts/{first}/ack", data={"csrf": csrf_of(page)}, follow_redirects=False
    )
    assert (r.status_code, r.headers["location"]) == (303, "/console/board")
    assert ack_ids(followup.http.get("/console/board").text) == [second]
    shown = followup.http.get("/console/board", params={"acked": "true"}).text
    assert ack_ids(shown) == [second]
    assert "Acknowledged by mgr-cards" in shown
    assert 'data-refresh="/console/board?partial=1&amp;acked=true"' in shown

    # Another journey's manager can neither see nor acknowledge it.
    sign_in(followup, subject="mgr-borrow", role="manager", journeys=("borrow",))
    page = followup.http.get("/console/board").text
    assert second not in page
    r = followup.http.post(f"/console/alerts/{second}/ack", data={"csrf": csrf_of(page)})
    assert r.status_code == 404


def test_owners_have_no_manager_pages(followup: Followup) -> None:
    sign_in(followup, subject="ana", role="owner")
    for path in ("/console/board", "/console/metrics", "/console/metrics.csv", "/console/catalog"):
        r = followup.http.get(path)
        assert r.status_code == 403, path
    assert "for journey managers" in followup.http.get("/console/board").text


def test_metrics_page_and_csv_per_journey_and_stage(followup: Followup) -> None:
    open_loop(followup)
    open_loop(followup)
    open_loop(followup, stage="fees")
    open_loop(followup, owner={"key": "bo", "name": "Bo"}, journey={"key": "borrow", "name": "B"})
    sign_in(followup, **MANAGER)

    r = followup.http.get("/console/metrics")
    assert r.status_code == 200, r.text
    page = r.text
    assert 'value="2026-10-25"' in page
    assert 'value="2026-11-24"' in page
    assert "Cards and payments" in page
    assert "fees" in page
    assert 'role="img"' in page
    assert "<title" in page
    assert "Volume (loops opened): dispute 2; fees 1" in page
    assert "borrow" not in page
    assert "/console/metrics.csv?from=2026-10-25&amp;to=2026-11-24" in page

    r = followup.http.get("/console/metrics.csv", params={"from": "2026-11-01", "to": "2026-11-24"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert tuple(csv.DictReader(io.StringIO(r.text)).fieldnames or ()) == CSV_COLUMNS
    assert [(x["journey"], x["stage"], x["loops"]) for x in rows] == [
        ("cards", "dispute", "2"),
        ("cards", "fees", "1"),
        ("cards", "*", "3"),
    ]
    assert rows[2]["overdue_now"] == "0"

    # A period before the loops: the rows are there, with nothing in them.
    r = followup.http.get("/console/metrics.csv", params={"from": "2026-01-01", "to": "2026-02-01"})
    assert all(x["loops"] == "0" for x in csv.DictReader(io.StringIO(r.text)))


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ({"from": "2026-11-20", "to": "2026-11-20"}, "must be before"),
        ({"from": "2026-11-21", "to": "2026-11-20"}, "must be before"),
        ({"from": "23/11/2026"}, "is not a date"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "at most 366 days"),
    ],
)
def test_metrics_period_errors_are_shown_not_raised(
    followup: Followup, period: dict[str, str], message: str
) -> None:
    sign_in(followup, **MANAGER)
    r = followup.http.get("/console/metrics", params=period)
    assert r.status_code == 422
    assert 'role="alert"' in r.text
    assert message in r.text
    assert followup.http.get("/console/metrics.csv", params=period).status_code == 422


def test_catalog_lists_journeys_stages_and_owners_and_points_to_routing(
    followup: Followup, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_loop(followup)
    open_loop(followup, stage="fees", owner={"key": "cy", "name": "Cy"})
    open_loop(followup, owner={"key": "bo", "name": "Bo"}, journey={"key": "borrow", "name": "B"})
    sign_in(followup, **MANAGER)

    page = followup.http.get("/console/catalog").text
    assert "Cards and payments" in page
    assert "dispute" in page
    assert "Ana" in page
    assert "fees" in page
    assert "Cy" in page
    assert "(bo)" not in page
    assert "borrow" not in page
    assert 'href="http://127.0.0.1:8002/v1/catalog"' in page
    assert "/v1/rules/dry-run" in page
    assert "closeloop catalog apply" in page

    monkeypatch.setenv("CLOSELOOP_ROUTING_URL", "https://routing.example/")
    page = followup.http.get("/console/catalog").text
    assert 'href="https://routing.example/v1/catalog"' in page

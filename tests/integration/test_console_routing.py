"""The console's routing actions, against a real routing app: why this owner on the loop page,
hand over and away by the loop's owner, reassign by the journey manager (loop page and board),
routing's catalog with a dry-run of a changed one, and routing unreachable — on SQLite and
PostgreSQL. Followup talks to routing over HTTP only (routing's TestClient is the httpx client)."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from followup_support import assigned, csrf_of, deliver, loop_of, post, sign_in
from support import Followup, Routing

from services.followup.console.routing_client import routing_url
from shared.events.envelope import Envelope
from shared.events.models import ComplaintReceivedV1, Ref

MANAGER = {"subject": "mgr-cards", "role": "manager", "journeys": ("cards",)}


@pytest.fixture
def both(followup: Followup, routing: Routing) -> tuple[Followup, Routing]:
    """Followup whose console calls this routing app (routing's TestClient is an httpx.Client)."""
    followup.http.app.state.routing_http = routing.http
    return followup, routing


def assign(routing: Routing, **fields: Any) -> dict[str, Any]:
    """Hand a complaint.received to routing's handler, as its consumer would; the assignment."""
    body: dict[str, Any] = {
        "complaint_id": uuid.uuid4(),
        "client_id": "cc-1",
        "customer_id": uuid.uuid4(),
        "customer": {"ref": "cust-1"},
        "channel": "phone",
        "summary": "Card declined at checkout twice",
        "product": "Credit card",
        "severity": "high",
        "received_at": routing.clock.now(),
        "repeat_contact": {"count_30d": 1, "is_repeat": False},
    }
    body.update(fields)
    event = ComplaintReceivedV1.model_validate(body)
    env = Envelope.new(
        source="/t", data=event, time=routing.clock.now(), key=str(event.customer_id)
    )
    with routing.container.uow() as uow:
        routing.container.service.on_received(uow, env, event)
        uow.commit()
    return assignment(routing, event.complaint_id)


def assignment(routing: Routing, complaint_id: uuid.UUID | str) -> dict[str, Any]:
    r = routing.http.get(f"/v1/assignments/{complaint_id}", headers=routing.headers())
    assert r.status_code == 200, r.text
    return dict(r.json())


def routed_loop(f: Followup, routing: Routing, **fields: Any) -> dict[str, Any]:
    """A complaint routed by routing, and followup's loop for it (routing's complaint.assigned)."""
    a = assign(routing, **fields)
    customer = uuid.UUID(a["customer_id"])
    event = assigned(
        f,
        customer,
        complaint_id=uuid.UUID(a["complaint_id"]),
        journey=Ref(**a["journey"]),
        stage=a["stage"],
        owner=Ref(**a["owner"]),
        severity=a["severity"],
        journey_manager="mgr-cards",
    )
    deliver(f, event, customer)
    return loop_of(f, event.complaint_id)


def page(f: Followup, path: str) -> str:
    r = f.http.get(path)
    assert r.status_code == 200, r.text
    return html.unescape(r.text)


def form(f: Followup, path: str, data: dict[str, str]) -> Any:
    return f.http.post(path, data=data, follow_redirects=False)


def options(text: str, select_id: str) -> list[str]:
    found = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', text, re.S)
    assert found is not None, select_id
    return [v for v in re.findall(r'<option value="([^"]*)"', found.group(1)) if v]


def test_the_loop_page_explains_why_this_owner(both: tuple[Followup, Routing]) -> None:
    f, routing = both
    loop = routed_loop(f, routing)
    assert loop["owner"]["key"] == "ana"

    sign_in(f)
    text = page(f, f"/console/loops/{loop['id']}")
    assert "Why this owner" in text
    assert "card-disputes" in text
    assert "matched rule 'card-disputes'" in text
    assert "least loaded" in text
    assert "Catalog version</dt><dd>1" in text
    assert "<strong>chosen</strong>" in text
    for owner in ("ana", "ben", "cho"):
        assert f"<tr><td>{owner}</td>" in text
    # The owner hands over and sets away; teammates offered, not herself; no reassign form.
    assert options(text, "handover-to") == ["ben", "cho"]
    assert options(text, "away-delegate") == ["ben", "cho"]
    assert f'action="/console/loops/{loop["id"]}/handover"' in text
    assert f'action="/console/loops/{loop["id"]}/away"' in text
    assert "/reassign" not in text
    assert 'role="alert"' not in text

    # The journey manager sees the same explanation and the reassign form instead.
    sign_in(f, **MANAGER)
    text = page(f, f"/console/loops/{loop['id']}")
    assert "matched rule 'card-disputes'" in text
    assert options(text, "reassign-owner") == ["ben", "cho"]
    assert "/handover" not in text
    assert "/away" not in text

    # A triage complaint: no rule matched.
    triage = routed_loop(f, routing, product="Gift voucher", summary="Voucher expired")
    sign_in(f, "admin", "admin")
    text = page(f, f"/console/loops/{triage['id']}")
    assert "no rule matched: triage" in text


def test_the_owner_hands_over_within_the_team(both: tuple[Followup, Routing]) -> None:
    f, routing = both
    loop = routed_loop(f, routing)
    sign_in(f)
    base = f"/console/loops/{loop['id']}"
    csrf = csrf_of(page(f, base))

    # Without the page's CSRF token nothing reaches routing.
    assert form(f, f"{base}/handover", {"to": "cho", "reason": "x"}).status_code == 403
    r = form(f, f"{base}/handover", {"csrf": "0" * 64, "to": "cho", "reason": "x"})
    assert r.status_code == 403
    assert assignment(routing, loop["complaint_id"])["owner"]["key"] == "ana"

    # Routing refuses someone outside the team: its detail and field error on the page.
    r = form(f, f"{base}/handover", {"csrf": csrf, "to": "dev", "reason": "x"})
    assert r.status_code == 422
    assert 'role="alert"' in r.text
    assert "is not in the 'cards' team" in html.unescape(r.text)
    assert "owner: not a member of the journey team" in r.text
    # A reason is required before asking routing.
    r = form(f, f"{base}/handover", {"csrf": csrf, "to": "cho", "reason": " "})
    assert r.status_code == 422
    assert assignment(routing, loop["complaint_id"])["owner"]["key"] == "ana"

    r = form(f, f"{base}/handover", {"csrf": csrf, "to": "cho", "reason": "Knows this merchant"})
    assert (r.status_code, r.headers["location"]) == (303, f"{base}?done=handed-over")
    moved = assignment(routing, loop["complaint_id"])
    assert moved["owner"] == {"key": "cho", "name": "Cho"}
    (step,) = moved["reassignments"]
    assert (step["from"], step["to"], step["by"], step["reason"]) == (
        "ana",
        "cho",
        "ana",
        "Knows this merchant",
    )
    # Followup has not had routing's event yet: still ana's loop, with the message.
    text = page(f, f"{base}?done=handed-over")
    assert 'role="status"' in text
    assert "Handed over in routing" in text

    # Once the loop follows its new owner, the done link leads back to her loops.
    with f.container.uow() as uow:
        row = uow.repo.loop(uuid.UUID(loop["id"]), for_update=True)
        assert row is not None
        row.owner_key, row.owner_name = "cho", "Cho"
        uow.commit()
    r = f.http.get(f"{base}?done=handed-over", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/console/loops")


def test_the_owner_sets_herself_away_with_a_delegate_and_comes_back(
    both: tuple[Followup, Routing],
) -> None:
    f, routing = both
    loop = routed_loop(f, routing)
    sign_in(f)
    base = f"/console/loops/{loop['id']}"
    csrf = csrf_of(page(f, base))

    def availability() -> dict[str, Any]:
        r = routing.http.get("/v1/owners/ana/availability", headers=routing.headers())
        assert r.status_code == 200, r.text
        return dict(r.json())

    r = form(f, f"{base}/away", {"delegate": "ben", "until": "2026-11-25T09:00"})
    assert r.status_code == 403
    assert availability()["away_now"] is False

    r = form(f, f"{base}/away", {"csrf": csrf, "delegate": "zed", "until": ""})
    assert r.status_code == 422
    assert "unknown delegate 'zed'" in html.unescape(r.text)
    assert "delegate: not an owner" in r.text
    r = form(f, f"{base}/away", {"csrf": csrf, "delegate": "ben", "until": "2026-11-01T09:00"})
    assert r.status_code == 422
    assert availability()["away_now"] is False

    r = form(f, f"{base}/away", {"csrf": csrf, "delegate": "ben", "until": "2026-11-25T09:00"})
    assert (r.status_code, r.headers["location"]) == (303, f"{base}?done=away")
    got = availability()
    assert got["away_now"] is True
    assert got["delegate"] == "ben"
    assert datetime.fromisoformat(got["away_from"]) == f.clock.now()
    assert datetime.fromisoformat(got["away_until"]) == datetime(2026, 11, 25, 9, tzinfo=UTC)

    text = page(f, f"{base}?done=away")
    assert "Routing now knows you are away" in text
    assert "You are away" in text
    assert "your delegate is ben" in text
    assert "Wed 25 Nov 09:00 UTC" in text

    r = form(f, f"{base}/back", {"csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, f"{base}?done=back")
    got = availability()
    assert (got["away_now"], got["delegate"], got["away_until"]) == (False, None, None)

    # Only the loop's owner: a manager cannot set ana away from her loop page.
    sign_in(f, **MANAGER)
    mcsrf = csrf_of(page(f, base))
    assert form(f, f"{base}/away", {"csrf": mcsrf, "delegate": "ben"}).status_code == 403
    assert form(f, f"{base}/handover", {"csrf": mcsrf, "to": "ben", "reason": "x"}).status_code == (
        403
    )


def test_the_manager_reassigns_from_the_loop_page(both: tuple[Followup, Routing]) -> None:
    f, routing = both
    loop = routed_loop(f, routing)
    base = f"/console/loops/{loop['id']}"
    sign_in(f)  # the owner may not use the manager's form
    r = form(f, f"{base}/reassign", {"csrf": csrf_of(page(f, base)), "owner": "ben", "reason": "x"})
    assert r.status_code == 403

    sign_in(f, **MANAGER)
    csrf = csrf_of(page(f, base))
    r = form(f, f"{base}/reassign", {"csrf": csrf, "owner": "ana", "reason": "x"})
    assert r.status_code == 409  # routing: already hers
    assert "already owns this complaint" in html.unescape(r.text)
    r = form(f, f"{base}/reassign", {"csrf": csrf, "owner": "ben", "reason": "Spanish speaker"})
    assert (r.status_code, r.headers["location"]) == (303, f"{base}?done=reassigned")
    moved = assignment(routing, loop["complaint_id"])
    assert moved["owner"]["key"] == "ben"
    assert moved["reassignments"][0]["by"] == "mgr-cards"

    # A manager of another journey: followup does not show the loop, routing is never asked.
    sign_in(f, "mgr-borrow", "manager", journeys=("borrow",))
    r = form(f, f"{base}/reassign", {"csrf": csrf_of(page(f, "/console/loops")), "owner": "cho"})
    assert r.status_code == 404
    assert assignment(routing, loop["complaint_id"])["owner"]["key"] == "ben"


def test_the_manager_reassigns_an_overdue_loop_from_the_board(
    both: tuple[Followup, Routing],
) -> None:
    f, routing = both
    loop = routed_loop(f, routing)
    due = (f.clock.now() + timedelta(minutes=30)).isoformat()
    r = post(f, f"/loops/{loop['id']}/promises", {"text": "Call back", "due_at": due})
    assert r.status_code == 201, r.text
    f.clock.advance(timedelta(minutes=31))

    sign_in(f, **MANAGER)
    text = page(f, "/console/board")
    action = f"/console/board/loops/{loop['id']}/reassign"
    assert f'action="{action}"' in text
    assert options(text, f"owner-{loop['id']}") == ["ben", "cho"]
    assert f'href="#reassign-{loop["id"]}"' in text
    csrf = csrf_of(text)

    assert form(f, action, {"owner": "cho", "reason": "x"}).status_code == 403
    r = form(f, action, {"csrf": csrf, "owner": "dev", "reason": "x"})
    assert r.status_code == 422
    assert 'role="alert"' in r.text
    assert "is not in the 'cards' team" in html.unescape(r.text)
    assert assignment(routing, loop["complaint_id"])["owner"]["key"] == "ana"

    r = form(f, action, {"csrf": csrf, "owner": "cho", "reason": "Ana is swamped"})
    assert (r.status_code, r.headers["location"]) == (303, "/console/board?done=reassigned")
    moved = assignment(routing, loop["complaint_id"])
    assert moved["owner"]["key"] == "cho"
    assert moved["reassignments"][0]["reason"] == "Ana is swamped"
    assert "Reassigned in routing" in page(f, "/console/board?done=reassigned")

    # Owners have no board.
    sign_in(f)
    r = form(f, action, {"csrf": csrf_of(page(f, "/console/loops")), "owner": "ben"})
    assert r.status_code == 403


def test_the_catalog_page_shows_routings_catalog_and_dry_runs_a_changed_one(
    both: tuple[Followup, Routing],
) -> None:
    f, routing = both
    for _ in range(2):
        routed_loop(f, routing)
    sign_in(f, **MANAGER)

    text = page(f, "/console/catalog")
    for expected in (
        "catalog version 1",
        "Cards and payments <small>(cards)</small>",
        "Dispute <small>(dispute)</small> → Fix <small>(fix)</small>",
        "<td>ana, ben, cho</td>",
        "<td>mgr-cards</td>",
        "least loaded",
        "round robin",
        "Borrow <small>(borrow)</small>",
        "Triage <small>(triage)</small>",
        "Customer Care",
        "<code>card-disputes</code>",
        "<code>mortgages</code>",
        "product: Credit card",
        "text any: mortgage, loan",
        "Seen in followup's loops",
    ):
        assert expected in text, expected
    assert text.index("card-disputes</code>") < text.index("mortgages</code>")  # priority order
    assert f'href="{routing_url()}/v1/catalog"' in text
    assert 'role="alert"' not in text
    # The textarea holds routing's YAML export.
    found = re.search(r'<textarea id="candidate"[^>]*>(.*?)</textarea>', text, re.S)
    assert found is not None
    current = yaml.safe_load(found.group(1))
    assert [r["key"] for r in current["rules"]] == ["card-disputes", "mortgages"]
    csrf = csrf_of(text)

    changed = dict(current)
    changed["rules"] = [
        current["rules"][0] | {"journey": "borrow", "stage": "servicing"},
        current["rules"][1],
    ]
    candidate = yaml.safe_dump(changed, sort_keys=False)
    assert form(f, "/console/catalog/dry-run", {"candidate": candidate}).status_code == 403

    r = form(f, "/console/catalog/dry-run", {"csrf": csrf, "candidate": candidate})
    assert r.status_code == 200, r.text
    result = html.unescape(r.text)
    assert "What would change" in result
    assert "2 of 2 complaints would change" in result
    assert "journey 2, stage 2" in result
    assert "journey, stage, owner" in result
    assert "cards · dispute · " in result
    assert "borrow · servicing · " in result
    assert "card-disputes" in result
    assert candidate.splitlines()[0] in result  # the candidate is kept in the form
    # Nothing changed in routing.
    assert routing.http.get("/v1/catalog", headers=routing.headers()).json()["version"] == 1

    # The unchanged catalog changes nothing; `last` limits the replay.
    r = form(
        f,
        "/console/catalog/dry-run",
        {"csrf": csrf, "candidate": found.group(1), "last": "1"},
    )
    assert r.status_code == 200, r.text
    assert "0 of 1 complaints would change" in r.text

    # Unreadable YAML, and a catalog routing rejects: the messages with their paths.
    r = form(f, "/console/catalog/dry-run", {"csrf": csrf, "candidate": "journeys: [\n"})
    assert r.status_code == 422
    assert "not valid YAML" in r.text
    broken = dict(changed, journeys=[j for j in changed["journeys"] if j["key"] != "triage"])
    r = form(f, "/console/catalog/dry-run", {"csrf": csrf, "candidate": yaml.safe_dump(broken)})
    assert r.status_code == 422
    assert 'role="alert"' in r.text
    assert "problem(s) in the candidate catalog" in r.text
    assert "<li>journeys: a &#39;triage&#39; journey is required" in r.text
    r = form(f, "/console/catalog/dry-run", {"csrf": csrf, "candidate": "csrf", "last": "x"})
    assert r.status_code == 422

    # Owners have no catalog page.
    sign_in(f)
    assert f.http.get("/console/catalog").status_code == 403


def test_routing_unreachable_is_a_message_not_a_failed_page(
    both: tuple[Followup, Routing],
) -> None:
    f, routing = both
    loop = routed_loop(f, routing)
    due = (f.clock.now() + timedelta(minutes=30)).isoformat()
    assert post(f, f"/loops/{loop['id']}/promises", {"text": "Call", "due_at": due}).is_success
    f.clock.advance(timedelta(minutes=31))
    nowhere = httpx.Client(base_url="http://127.0.0.1:9", timeout=5, follow_redirects=False)
    f.http.app.state.routing_http = nowhere
    try:
        sign_in(f)
        base = f"/console/loops/{loop['id']}"
        text = page(f, base)
        assert 'role="alert"' in text
        assert "routing is not reachable" in text
        assert "Work the loop" in text
        assert "Call" in text
        assert 'id="handover-to" name="to"' in text  # a plain input without routing's team

        r = form(f, f"{base}/handover", {"csrf": csrf_of(text), "to": "cho", "reason": "x"})
        assert r.status_code == 502
        assert "routing is not reachable" in r.text
        note = {"csrf": csrf_of(text), "text": "Routing is down; called the customer"}
        assert form(f, f"{base}/notes", note).status_code == 303  # followup's own forms work

        sign_in(f, **MANAGER)
        text = page(f, "/console/board")
        assert "routing is not reachable" in text
        assert f'id="owner-{loop["id"]}" name="owner"' in text
        text = page(f, "/console/catalog")
        assert "routing is not reachable" in text
        assert "Seen in followup's loops" in text
        assert "Cards and payments" in text
        r = form(f, "/console/catalog/dry-run", {"csrf": csrf_of(text), "candidate": "a: 1"})
        assert r.status_code == 502
        assert "routing is not reachable" in r.text
    finally:
        nowhere.close()

    # A 5xx from routing is the same message.
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"title": "Service unavailable"})

    failing = httpx.Client(base_url="http://routing", transport=httpx.MockTransport(broken))
    f.http.app.state.routing_http = failing
    try:
        sign_in(f)
        text = page(f, f"/console/loops/{loop['id']}")
        assert "routing is not reachable (it answered HTTP 503)" in text
    finally:
        failing.close()

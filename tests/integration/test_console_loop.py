"""The console's loop page: the complaints (repeat contacts included), promises, SLA targets and
timeline; the forms that work the loop, each with the page's CSRF token and the API's
object-level checks — on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import itertools
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from followup_support import assigned, csrf_of, deliver, get, open_loop, post, received, sign_in
from support import Followup, FollowupFactory

from services.followup.models import TaxonomyEntry


@pytest.fixture
def followup(followup_factory: FollowupFactory) -> Iterator[Followup]:
    """Followup whose console finds no routing at its address: these tests are about followup's
    own pages (test_console_routing covers the calls to routing)."""
    f = followup_factory()
    nowhere = httpx.Client(base_url="http://127.0.0.1:9", timeout=5, follow_redirects=False)
    f.http.app.state.routing_http = nowhere
    yield f
    nowhere.close()


def loop_with_copy(f: Followup, **fields: Any) -> dict[str, Any]:
    customer = uuid.uuid4()
    loop = open_loop(f, customer, **fields)
    received(f, uuid.UUID(loop["complaint_id"]), customer)
    return loop


def page_of(f: Followup, loop_id: str) -> str:
    r = f.http.get(f"/console/loops/{loop_id}")
    assert r.status_code == 200, r.text
    return r.text


def actions(page: str, ending: str) -> list[str]:
    """The actions of the page's forms whose path ends so, in page order."""
    return re.findall(rf'<form method="post" action="([^"]+/{ending})"', page)


def form(f: Followup, path: str, data: dict[str, str]) -> Any:
    return f.http.post(path, data=data, follow_redirects=False)


def test_the_page_shows_the_complaints_with_repeats_and_the_promises(followup: Followup) -> None:
    customer = uuid.uuid4()
    loop = open_loop(followup, customer)
    received(followup, uuid.UUID(loop["complaint_id"]), customer)
    again = assigned(followup, customer)  # the customer comes back about it: joins the loop
    deliver(followup, again, customer)
    received(
        followup,
        again.complaint_id,
        customer,
        summary="Still declined",
        repeat_contact={"count_30d": 2, "is_repeat": True},
    )
    due = followup.clock.now() + timedelta(hours=3)
    r = post(
        followup,
        f"/loops/{loop['id']}/promises",
        {"text": "Call back", "due_at": due.isoformat()},
        subject="ana",
        role="owner",
    )
    assert r.status_code == 201, r.text

    sign_in(followup)
    page = html.unescape(page_of(followup, loop["id"]))
    for text in (
        "Card declined twice",
        "Declined at the grocery store",
        "Ada Lovelace",
        "cust-1",
        "gold",
        "CFPB-123",
        "phone",
        "Still declined",
        str(again.complaint_id),
        "Cards and payments · dispute",
        "Call back",
        "made by ana",
        f"/v1/assignments/{loop['complaint_id']}",
        f"/console/loops/{loop['id']}/handover",  # the owner's forms that ask routing
        f"/console/loops/{loop['id']}/away",
        "routing is not reachable",  # no routing here: a message, and the page works
    ):
        assert text in page, text
    assert "Contacts in 30 days</dt><dd>2" in page
    assert "Mon 23 Nov 12:00 UTC" in page  # the promise's due time, in the viewer's zone (UTC)
    assert "Overdue" not in page
    # Headings in order; every input has its label.
    levels = [int(h) for h in re.findall(r"<h([1-6])", page)]
    assert levels[0] == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))
    ids = set(re.findall(r'<label for="([^"]+)"', page))
    inputs = re.findall(r'<(?:input|select|textarea) id="([^"]+)"', page)
    assert inputs
    assert set(inputs) <= ids

    followup.clock.advance(timedelta(hours=4))
    page = page_of(followup, loop["id"])
    assert 'class="badge overdue"' in page
    assert 'class="is-overdue"' in page


def test_acknowledge_then_promise_through_the_forms(followup: Followup) -> None:
    loop = loop_with_copy(followup)
    sign_in(followup)
    csrf = csrf_of(page_of(followup, loop["id"]))

    r = form(followup, f"/console/loops/{loop['id']}/acknowledge", {"csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, f"/console/loops/{loop['id']}")
    assert get(followup, loop["id"])["status"] == "acknowledged"

    followup.http.cookies.set("tz", "Europe/Paris")
    r = form(
        followup,
        f"/console/loops/{loop['id']}/promises",
        {"csrf": csrf, "text": "Send the refund form", "due": "2026-11-24T15:30"},
    )
    assert r.status_code == 303, r.text
    after = get(followup, loop["id"])
    assert after["status"] == "promised"
    [promise] = after["promises"]
    assert promise["text"] == "Send the refund form"
    assert datetime.fromisoformat(promise["due_at"]) == datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
    page = page_of(followup, loop["id"])
    assert "Tue 24 Nov 15:30 CET" in page  # shown back in the viewer's zone

    # Acknowledging twice is a 409: the page again, with the message as an alert.
    again = form(followup, f"/console/loops/{loop['id']}/acknowledge", {"csrf": csrf})
    assert again.status_code == 409
    assert 'role="alert"' in again.text
    assert "Send the refund form" in again.text

    # A due time in the past is a 422 on the page, and nothing changes.
    past = form(
        followup,
        f"/console/loops/{loop['id']}/promises",
        {"csrf": csrf, "text": "Too late", "due": "2026-11-01T10:00"},
    )
    assert past.status_code == 422
    assert 'role="alert"' in past.text
    assert len(get(followup, loop["id"])["promises"]) == 1


def test_keep_renegotiate_cancel_note_wait_and_resume(followup: Followup) -> None:
    loop = loop_with_copy(followup)
    sign_in(followup)
    base = f"/console/loops/{loop['id']}"
    csrf = csrf_of(page_of(followup, loop["id"]))
    for _ in range(3):
        r = form(followup, f"{base}/promises", {"csrf": csrf, "text": "Call", "quick": "1h"})
        assert r.status_code == 303, r.text
    one, two, three = (p["id"] for p in get(followup, loop["id"])["promises"])
    page = page_of(followup, loop["id"])
    assert actions(page, "keep") == [f"{base}/promises/{i}/keep" for i in (one, two, three)]
    assert actions(page, "renegotiate")[1] == f"{base}/promises/{two}/renegotiate"
    assert actions(page, "cancel")[2] == f"{base}/promises/{three}/cancel"

    assert form(followup, actions(page, "keep")[0], {"csrf": csrf}).status_code == 303
    r = form(
        followup,
        actions(page, "renegotiate")[1],
        {"csrf": csrf, "due": "2026-11-25T09:00", "reason": "Customer away"},
    )
    assert r.status_code == 303, r.text
    missing = form(followup, f"{base}/promises/{three}/cancel", {"csrf": csrf, "reason": " "})
    assert missing.status_code == 422  # a reason is required
    r = form(followup, f"{base}/promises/{three}/cancel", {"csrf": csrf, "reason": "Duplicate"})
    assert r.status_code == 303, r.text
    promises = {p["id"]: p for p in get(followup, loop["id"])["promises"]}
    assert [promises[i]["status"] for i in (one, two, three)] == [
        "kept",
        "renegotiated",
        "cancelled",
    ]
    assert promises[two]["due_at"].startswith("2026-11-25T09:00")

    assert (
        form(followup, f"{base}/notes", {"csrf": csrf, "text": "Left a voicemail"}).status_code
        == 303
    )
    assert (
        form(followup, f"{base}/wait", {"csrf": csrf, "reason": "Statement copy"}).status_code
        == 303
    )
    assert get(followup, loop["id"])["waiting_since"] is not None
    page = page_of(followup, loop["id"])
    assert "Left a voicemail" in page
    assert "Resume the SLA clock" in page
    # The timeline shows the newest first.
    assert page.index("waiting on customer") < page.index("note added") < page.index("opened")
    assert form(followup, f"{base}/resume", {"csrf": csrf}).status_code == 303
    assert get(followup, loop["id"])["waiting_since"] is None


def test_forms_need_the_page_s_csrf_token(followup: Followup) -> None:
    loop = loop_with_copy(followup)
    sign_in(followup)
    base = f"/console/loops/{loop['id']}"
    csrf = csrf_of(page_of(followup, loop["id"]))
    assert form(followup, f"{base}/acknowledge", {}).status_code == 403
    assert form(followup, f"{base}/acknowledge", {"csrf": "0" * 64}).status_code == 403
    bad = form(
        followup, f"{base}/promises", {"csrf": csrf[:-1] + "x", "text": "Call", "quick": "1h"}
    )
    assert bad.status_code == 403
    after = get(followup, loop["id"])
    assert (after["status"], after["promises"]) == ("open", [])

    # A token from another session is not this session's.
    sign_in(followup, "ana2")
    stale = form(followup, f"{base}/acknowledge", {"csrf": csrf})
    assert stale.status_code == 403


def test_another_owner_gets_a_404_page_not_the_loop(followup: Followup) -> None:
    loop = loop_with_copy(followup)
    sign_in(followup, "bo")
    r = followup.http.get(f"/console/loops/{loop['id']}")
    assert r.status_code == 404
    assert "Card declined twice" not in r.text
    assert "<html" in r.text  # the console's error page, not a problem document
    csrf = csrf_of(followup.http.get("/console/loops").text)
    act = form(followup, f"/console/loops/{loop['id']}/acknowledge", {"csrf": csrf})
    assert act.status_code == 404
    assert get(followup, loop["id"])["status"] == "open"
    assert followup.http.get("/console/loops/not-a-uuid").status_code == 404

    # The journey's manager may open it.
    sign_in(followup, "mgr-cards", "manager", journeys=("cards",))
    assert "Card declined twice" in page_of(followup, loop["id"])


def test_resolve_with_the_taxonomy_selects(followup: Followup) -> None:
    loop = loop_with_copy(followup)
    sign_in(followup)
    page = page_of(followup, loop["id"])
    assert '<input id="resolve-code" name="resolution_code"' in page  # no taxonomy: free text

    with followup.container.uow() as uow:
        uow.session.add_all(
            [
                TaxonomyEntry(kind="resolution_code", key="refunded", label="Refunded"),
                TaxonomyEntry(kind="root_cause", key="fraud-rule", label="Fraud rule too strict"),
            ]
        )
        uow.commit()
    page = page_of(followup, loop["id"])
    assert '<select id="resolve-code" name="resolution_code"' in page
    assert '<option value="refunded">Refunded</option>' in page
    assert '<option value="fraud-rule">Fraud rule too strict</option>' in page
    csrf = csrf_of(page)
    base = f"/console/loops/{loop['id']}"

    bad = form(
        followup,
        f"{base}/resolve",
        {"csrf": csrf, "resolution_code": "waived", "root_cause": "fraud-rule", "summary": "x"},
    )
    assert bad.status_code == 422
    assert 'role="alert"' in bad.text
    assert get(followup, loop["id"])["status"] == "open"

    r = form(
        followup,
        f"{base}/resolve",
        {
            "csrf": csrf,
            "resolution_code": "refunded",
            "root_cause": "fraud-rule",
            "summary": "Fee refunded",
        },
    )
    assert r.status_code == 303, r.text
    after = get(followup, loop["id"])
    assert (after["status"], after["resolution_code"], after["root_cause"]) == (
        "resolved",
        "refunded",
        "fraud-rule",
    )


def test_quick_choice_tomorrow_at_ten_in_the_viewer_s_zone(followup: Followup) -> None:
    loop = loop_with_copy(followup)
    sign_in(followup)
    followup.http.cookies.set("tz", "America/New_York")
    csrf = csrf_of(page_of(followup, loop["id"]))
    r = form(
        followup,
        f"/console/loops/{loop['id']}/promises",
        {"csrf": csrf, "text": "Call back", "quick": "tomorrow10", "due": ""},
    )
    assert r.status_code == 303, r.text
    [promise] = get(followup, loop["id"])["promises"]
    # Now is Mon 23 Nov 09:00 UTC = 04:00 in New York: tomorrow 10:00 EST is 15:00 UTC.
    assert datetime.fromisoformat(promise["due_at"]) == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def test_quick_choice_two_business_hours_follows_the_sla_calendar(followup: Followup) -> None:
    admin = followup.headers()
    calendar = {
        "name": "Paris office",
        "tz": "Europe/Paris",
        "weekly": {str(d): [["09:00", "17:00"]] for d in range(5)},
    }
    r = followup.http.put("/v1/calendars/paris", json=calendar, headers=admin)
    assert r.status_code in (200, 201), r.text
    policy = {
        "journey": "cards",
        "severity": "*",
        "calendar": "paris",
        "acknowledge_minutes": 60,
        "first_promise_minutes": 240,
        "resolve_minutes": 2400,
    }
    r = followup.http.put(f"/v1/sla-policies/{uuid.uuid4()}", json=policy, headers=admin)
    assert r.status_code in (200, 201), r.text
    followup.clock.advance(timedelta(hours=6, minutes=30))  # 15:30 UTC = 16:30 in Paris
    loop = loop_with_copy(followup)
    sign_in(followup)
    page = page_of(followup, loop["id"])
    assert "business time left" in page
    r = form(
        followup,
        f"/console/loops/{loop['id']}/promises",
        {"csrf": csrf_of(page), "text": "Call back", "quick": "2bh"},
    )
    assert r.status_code == 303, r.text
    [promise] = get(followup, loop["id"])["promises"]
    # 30 minutes left today, 90 more from 09:00 Paris on Tuesday: 10:30 CET = 09:30 UTC.
    assert datetime.fromisoformat(promise["due_at"]) == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

"""The console's sign-in and "My loops": the token in an HTTP-only SameSite cookie, CSRF on forms,
an owner's queue sorted by what is due with overdue first, counts, filters and search — on SQLite
and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from followup_support import open_loop, post, received, sign_in
from support import Followup

from shared.auth import issue_token


def loop_with_copy(f: Followup, ref: str, summary: str, **fields: Any) -> dict[str, Any]:
    customer = uuid.uuid4()
    loop = open_loop(f, customer, **fields)
    received(
        f,
        uuid.UUID(loop["complaint_id"]),
        customer,
        customer={"ref": ref, "name": f"Customer {ref}"},
        summary=summary,
        external_ref=f"EXT-{ref}",
    )
    return loop


def test_sign_in_keeps_the_token_in_an_http_only_same_site_cookie(followup: Followup) -> None:
    r = followup.http.get("/console/loops", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/console/login?next=/console/loops")

    bad = followup.http.post("/console/login", data={"token": "not-a-token"})
    assert bad.status_code == 401
    assert "not accepted" in bad.text

    client_token = issue_token(
        followup.settings, followup.clock, role="intake-client", subject="cc-1"
    )
    r = followup.http.post("/console/login", data={"token": client_token})
    assert r.status_code == 401  # a contact-center tool has no console

    token = issue_token(followup.settings, followup.clock, role="owner", subject="ana")
    r = followup.http.post(
        "/console/login",
        data={"token": token, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/console/loops"  # never an open redirect
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/console" in cookie
    assert followup.http.get("/console/loops").status_code == 200


def test_sign_out_needs_the_page_s_csrf_token(followup: Followup) -> None:
    sign_in(followup)
    page = followup.http.get("/console/loops").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf is not None
    assert followup.http.post("/console/logout", data={"csrf": "0" * 64}).status_code == 403
    assert followup.http.get("/console/loops").status_code == 200  # still signed in
    r = followup.http.post("/console/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert r.status_code == 303
    assert followup.http.get("/console/loops", follow_redirects=False).status_code == 303


def test_my_loops_overdue_first_with_counts_and_only_mine(followup: Followup) -> None:
    later = loop_with_copy(followup, "c-later", "Statement missing")
    late = loop_with_copy(followup, "c-late", "Fee charged twice")
    soon = loop_with_copy(followup, "c-soon", "Card blocked abroad")
    loop_with_copy(followup, "c-other", "Not mine", owner={"key": "bo", "name": "Bo"})
    for loop, minutes in ((later, 600), (late, 5), (soon, 60)):
        due = (followup.clock.now() + timedelta(minutes=minutes)).isoformat()
        r = post(followup, f"/loops/{loop['id']}/promises", {"text": "Call", "due_at": due})
        assert r.status_code == 201, r.text
    followup.clock.advance(timedelta(minutes=10))  # the first promise is now 5 minutes late

    sign_in(followup)
    page = followup.http.get("/console/loops").text
    order = [page.index(s) for s in ("Fee charged twice", "Card blocked abroad", "Statement")]
    assert order == sorted(order)
    assert "Not mine" not in page
    assert re.search(r"<strong>3</strong> open", page)
    assert re.search(r"<strong>1</strong> overdue", page)
    assert re.search(r"<strong>1</strong> due within 2 h", page)
    assert page.count('class="badge overdue"') == 1
    assert page.count('class="badge soon"') == 1


def test_filters_and_search_by_customer_or_reference(followup: Followup) -> None:
    loop_with_copy(followup, "c-1", "Card declined", severity="high")
    loop_with_copy(followup, "c-2", "Statement missing", severity="low")
    sign_in(followup)

    high = followup.http.get("/console/loops", params={"severity": "high"}).text
    assert "Card declined" in high
    assert "Statement missing" not in high
    by_ref = followup.http.get("/console/loops", params={"q": "EXT-c-2"}).text
    assert ("Statement missing" in by_ref, "Card declined" in by_ref) == (True, False)
    by_name = followup.http.get("/console/loops", params={"q": "customer c-1"}).text
    assert ("Card declined" in by_name, "Statement missing" in by_name) == (True, False)
    partial = followup.http.get("/console/loops", params={"partial": "1"}).text
    assert "<html" not in partial  # the polled fragment, not a whole page
    assert "Card declined" in partial


def test_managers_see_their_journeys_loops(followup: Followup) -> None:
    loop_with_copy(followup, "c-1", "Card declined")
    loop_with_copy(followup, "c-2", "Mortgage escrow", journey={"key": "borrow", "name": "Borrow"})
    sign_in(followup, "mgr-cards", "manager", journeys=("cards",))
    page = followup.http.get("/console/loops").text
    assert "Card declined" in page
    assert "Mortgage escrow" not in page


def test_the_api_still_answers_problem_details(followup: Followup) -> None:
    r = followup.http.get("/v1/loops")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"

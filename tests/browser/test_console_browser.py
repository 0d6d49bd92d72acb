"""The console in Chromium (`console`, in conftest.py, is a seeded followup server): an owner
signs in with a token and finds the overdue loop; another owner's loop stays out of reach."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from shared.auth import Principal

SCREENSHOTS = os.environ.get("CLOSELOOP_SCREENSHOTS")  # e.g. docs/ to refresh the README's


def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"console-{name}.png"), full_page=True)


def sign_in(page: Page, console: Any, token: str) -> None:
    page.goto(f"{console.base}/console/loops")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/loops$"))


def test_owner_signs_in_and_sees_the_overdue_loop_first(page: Page, console: Any) -> None:
    sign_in(page, console, console.token("ana"))
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Fee charged twice on my card")
    expect(rows.first).to_contain_text("Overdue")
    expect(page.get_by_text("Someone else's complaint")).to_have_count(0)
    shot(page, "my-loops")

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    expect(rows.first).to_be_visible()
    shot(page, "my-loops-phone")


def test_an_owner_cannot_open_another_owner_s_loop_by_url(page: Page, console: Any) -> None:
    sign_in(page, console, console.token("ana"))
    response = page.goto(f"{console.base}/console/loops/{console.loops['others']['id']}")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_text("Someone else's complaint")).to_have_count(0)


def test_search_by_customer_reference_filters_the_queue(page: Page, console: Any) -> None:
    sign_in(page, console, console.token("ana"))
    page.get_by_label("Customer or reference").fill("REF-fresh")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Card blocked while abroad")


def test_owner_works_the_overdue_loop_to_resolved(page: Page, console: Any) -> None:
    sign_in(page, console, console.token("ana"))
    page.get_by_role("link", name="Fee charged twice on my card").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.locator(".badge.overdue").first).to_be_visible()
    shot(page, "loop")

    # The front line's promise already counts as acknowledged: the owner promises anew.
    page.get_by_label("What you promise the customer").fill("Call back with the refund decision")
    page.get_by_role("button", name="Promise tomorrow 10:00").click()
    expect(page.get_by_text("Call back with the refund decision").first).to_be_visible()

    page.get_by_label("Resolution code").select_option("refund-issued")
    page.get_by_label("Root cause").select_option("process-gap")
    page.get_by_label("Summary for the customer record").fill("Refunded the second fee")
    page.get_by_role("button", name="Resolve the loop").click()
    expect(page.get_by_text("resolved").first).to_be_visible()

    with console.container.uow() as uow:
        loop = uow.repo.loop(uuid.UUID(console.loops["late"]["id"]))
        assert loop is not None
        assert (loop.status, loop.resolution_code, loop.root_cause) == (
            "resolved",
            "refund-issued",
            "process-gap",
        )


def test_manager_sees_the_alert_on_the_board_and_acknowledges_it(page: Page, console: Any) -> None:
    sign_in(page, console, console.token("mgr-cards", "manager", ("cards",)))
    page.get_by_role("link", name="Escalations").click()
    board = page.locator("main")
    expect(board).to_contain_text("level 1")
    expect(board).to_contain_text("ana")
    shot(page, "board")

    page.get_by_role("button", name="Acknowledge level 1 alert of ana").click()
    expect(page.get_by_role("button", name="Acknowledge level 1 alert of ana")).to_have_count(0)
    r = console.container.alerts.page(
        Principal(subject="mgr-cards", role="manager", journeys=("cards",))
    )
    assert [a.acked_by for a in r.items] == ["mgr-cards"]

    page.get_by_role("link", name="Metrics").click()
    expect(page.locator("svg[role=img]").first).to_be_visible()
    shot(page, "metrics")


def test_times_show_in_the_browser_s_time_zone(browser: Any, console: Any) -> None:
    context = browser.new_context(timezone_id="America/New_York")
    page = context.new_page()
    page.set_default_timeout(5_000)
    try:
        sign_in(page, console, console.token("ana"))
        page.reload()  # the first page told the server the zone; the next ones use it
        overdue = page.locator("table.queue tbody tr").first
        expect(overdue).to_contain_text("EST")
    finally:
        context.close()

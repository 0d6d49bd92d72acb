"""The console in Chromium (`console`, in conftest.py, is a seeded followup server): an owner
signs in with a token and finds the overdue loop; another owner's loop stays out of reach."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

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

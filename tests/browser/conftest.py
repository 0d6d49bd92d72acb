"""A real followup server (uvicorn on a free loopback port, SQLite, an injected clock) seeded with
loops, and Debian's Chromium driven by Playwright — the console as a person uses it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import uvicorn
from followup_support import assigned, deliver
from playwright.sync_api import Browser, Page, sync_playwright
from support import T0, TEST_KAFKA

from services.followup import MIGRATIONS
from services.followup.api import create_app
from services.followup.bootstrap import FollowupContainer, bootstrap
from services.followup.config import FollowupSettings
from services.followup.models import ChannelRow, LadderRow, TaxonomyEntry
from shared.auth import Principal, issue_token
from shared.clock import FrozenClock
from shared.events.models import ComplaintReceivedV1
from shared.testing.broker import free_port
from shared.testing.plugin import DatabaseFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Console:
    base: str
    container: FollowupContainer
    clock: FrozenClock
    loops: dict[str, dict[str, Any]]

    def token(self, subject: str, role: str = "owner", journeys: tuple[str, ...] = ()) -> str:
        return issue_token(
            self.container.settings,
            self.clock,
            role=role,
            subject=subject,
            journeys=journeys,
            ttl=timedelta(days=1),
        )


def _seed(console: Console) -> None:
    now = console.clock.now()
    with console.container.uow() as uow:
        uow.session.add(
            ChannelRow(
                key="hook",
                kind="webhook",
                config={"url": "http://127.0.0.1:9/", "secret": "s" * 32},
                enabled=False,
                version=1,
                updated_at=now,
            )
        )
        uow.session.add(
            LadderRow(
                journey_key="*",
                levels=[{"offset_minutes": 0, "audience": "journey_manager", "channel": "hook"}],
                version=1,
                updated_at=now,
            )
        )
        uow.session.add_all(
            [
                TaxonomyEntry(kind="resolution_code", key="refund-issued", label="Refund issued"),
                TaxonomyEntry(kind="root_cause", key="process-gap", label="Process gap"),
            ]
        )
        uow.commit()
    for name, owner, summary in (
        ("late", "ana", "Fee charged twice on my card"),
        ("fresh", "ana", "Card blocked while abroad"),
        ("others", "bo", "Someone else's complaint"),
    ):
        customer = uuid.uuid4()
        assignment = assigned(console, customer, owner={"key": owner, "name": owner.title()})
        deliver(console, assignment, customer)
        with console.container.uow() as uow:
            row = uow.repo.loop_of_complaint(assignment.complaint_id)
            assert row is not None
            loop = {"id": str(row.id), "complaint_id": str(row.complaint_id)}
        event = ComplaintReceivedV1.model_validate(
            {
                "complaint_id": loop["complaint_id"],
                "client_id": "cc-1",
                "customer_id": customer,
                "customer": {"ref": f"cust-{name}", "name": f"Customer {name.title()}"},
                "channel": "phone",
                "summary": summary,
                "received_at": now,
                "repeat_contact": {"count_30d": 1, "is_repeat": False},
                "external_ref": f"REF-{name}",
            }
        )
        deliver(console, event, customer)
        console.loops[name] = loop
    # The front line promised a call back within 5 minutes on "late"; 10 minutes pass.
    service = console.container.service
    ana = Principal(subject="ana", role="owner", journeys=())
    service.make_promise(
        ana, uuid.UUID(console.loops["late"]["id"]), "Call back", now + timedelta(minutes=5)
    )
    console.clock.advance(timedelta(minutes=10))
    console.container.scheduler().run_once()


@pytest.fixture
def console(database_factory: DatabaseFactory) -> Iterator[Console]:
    url = database_factory.create(MIGRATIONS, "sqlite")
    clock = FrozenClock(T0)
    settings = FollowupSettings(database_url=url, kafka_bootstrap="127.0.0.1:9", **TEST_KAFKA)
    container = bootstrap(settings, clock)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(container=container), host="127.0.0.1", port=port, log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    # uvicorn sets `started` once it listens; wait on it without a fixed sleep.
    while not server.started:
        started.wait(0.05)
    c = Console(base=f"http://127.0.0.1:{port}", container=container, clock=clock, loops={})
    _seed(c)
    try:
        yield c
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        container.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="UTC")
    p = context.new_page()
    p.set_default_timeout(5_000)  # a local server answers in milliseconds; fail fast
    yield p
    context.close()

"""The console's "My loops" page with 500 open loops: how long a page takes to render.

    python -m bench.console [--loops 500] [--requests 50] [--db sqlite|postgresql|both]

One owner with `--loops` open loops (each with its complaint copy, a promise, and SLA targets
under a default policy; a tenth of them overdue) in a freshly migrated followup database. The
page is fetched in-process through the ASGI app (Starlette's TestClient: no network, no browser),
`--requests` times after a warm-up, and the server time per request is printed as p50 / p90 /
max. The baseline, in the same run and on the same data: `GET /v1/loops?limit=200` (the JSON
API's first page, which reads less) and the HTML page's `partial=1` fragment that the page polls.
The aim from the issue: a page with 500 open loops renders in well under a second.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from fastapi.testclient import TestClient

from services.followup import MIGRATIONS
from services.followup.api import create_app
from services.followup.bootstrap import bootstrap
from services.followup.config import FollowupSettings
from services.followup.handlers import handlers
from shared.auth import Principal, issue_token
from shared.clock import FrozenClock
from shared.db.migrate import upgrade
from shared.events.envelope import Envelope
from shared.events.models import ComplaintAssignedV1, ComplaintReceivedV1, EventModel, Ref

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def database(kind: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='closeloop-bench-console-')}/followup.db"
    name = "closeloop_bench_console"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def seed(url: str, loops: int) -> tuple[TestClient, str]:
    upgrade(MIGRATIONS, url)
    clock = FrozenClock(T0)
    settings = FollowupSettings(database_url=url, kafka_bootstrap="127.0.0.1:9")
    container = bootstrap(settings, clock)
    handle = handlers(container.service)

    def deliver(event: EventModel, customer: uuid.UUID) -> None:
        env = Envelope.new(source="/bench", data=event, time=clock.now(), key=str(customer))
        with container.uow() as uow:
            handle[event.name](uow, env, event)
            uow.commit()

    owner = Principal(subject="ana", role="owner", journeys=())
    for i in range(loops):
        customer, complaint = uuid.uuid4(), uuid.uuid4()
        deliver(
            ComplaintReceivedV1(
                complaint_id=complaint,
                client_id="cc",
                customer_id=customer,
                customer={"ref": f"cust-{i}", "name": f"Customer {i}"},
                channel="phone",
                summary=f"Complaint number {i} about a card fee",
                received_at=clock.now(),
                repeat_contact={"count_30d": 1, "is_repeat": False},
                external_ref=f"REF-{i}",
            ),
            customer,
        )
        deliver(
            ComplaintAssignedV1(
                complaint_id=complaint,
                customer_id=customer,
                journey=Ref(key="cards", name="Cards"),
                stage="dispute",
                owner=Ref(key="ana", name="Ana"),
                severity="medium",
                assigned_at=clock.now(),
                journey_manager="mgr-cards",
            ),
            customer,
        )
    # Promises: a tenth fall due within the first minute and will be overdue.
    page = container.service.page(owner, limit=200)
    ids = [item.id for item in page.items]
    cursor = page.next_cursor
    while cursor:
        more = container.service.page(owner, cursor=cursor, limit=200)
        ids += [item.id for item in more.items]
        cursor = more.next_cursor
    for n, loop_id in enumerate(ids):
        due = clock.now() + (timedelta(seconds=30) if n % 10 == 0 else timedelta(days=2))
        container.service.make_promise(owner, loop_id, "Call back", due)
    clock.advance(timedelta(minutes=5))
    client = TestClient(create_app(container=container))
    client.__enter__()
    token = issue_token(settings, clock, role="owner", subject="ana", ttl=timedelta(days=1))
    r = client.post("/console/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client, token


def timed(fetch: Callable[[], httpx.Response], n: int) -> list[float]:
    for _ in range(3):
        assert fetch().status_code == 200
    out = []
    for _ in range(n):
        start = time.perf_counter()
        r = fetch()
        out.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200
    return out


def line(name: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=10)
    return f"  {name:<44} p50 {statistics.median(ms):7.1f}  p90 {q[8]:7.1f}  max {max(ms):7.1f} ms"


def measure(client: TestClient, token: str, n: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    print(line("GET /console/loops (the page)", timed(lambda: client.get("/console/loops"), n)))
    partial = timed(lambda: client.get("/console/loops", params={"partial": "1"}), n)
    print(line("GET /console/loops?partial=1 (polled list)", partial))
    api = timed(lambda: client.get("/v1/loops", params={"limit": 200}, headers=headers), n)
    print(line("baseline: GET /v1/loops?limit=200 (JSON API)", api))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    p.add_argument("--loops", type=int, default=500)
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = p.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for kind in kinds:
        start = time.perf_counter()
        client, token = seed(database(kind), args.loops)
        print(f"{kind}: {args.loops} open loops seeded in {time.perf_counter() - start:.1f} s")
        page = client.get("/console/loops")
        listed = page.text.count('href="/console/loops/')
        print(f"  page: {len(page.content) / 1024:.0f} KiB, {listed} loops listed")
        measure(client, token, args.requests)
        client.__exit__(None, None, None)


if __name__ == "__main__":
    main()

"""Followup test helpers: deliver events to its handlers, read loops and its outbox."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import select
from support import Followup

from services.followup.handlers import handlers
from services.followup.models import OUTBOX, CalendarRow, ChannelRow, LadderRow, SlaPolicyRow
from shared.auth import issue_token
from shared.events import topics
from shared.events.envelope import Envelope
from shared.events.models import (
    ComplaintAssignedV1,
    ComplaintConfirmedV1,
    ComplaintReceivedV1,
    EventModel,
    Ref,
)
from shared.ids import new_id

CARDS = Ref(key="cards", name="Cards and payments")
BORROW = Ref(key="borrow", name="Borrow")


def assigned(f: Followup, customer_id: uuid.UUID, **fields: Any) -> ComplaintAssignedV1:
    """A complaint.assigned body (cards, owner ana); keyword arguments replace fields."""
    body: dict[str, Any] = {
        "complaint_id": uuid.uuid4(),
        "customer_id": customer_id,
        "journey": CARDS,
        "stage": "dispute",
        "owner": Ref(key="ana", name="Ana"),
        "severity": "medium",
        "assigned_at": f.clock.now(),
        "journey_manager": "mgr-cards",
    }
    body.update(fields)
    return ComplaintAssignedV1.model_validate(body)


def deliver(f: Followup, event: EventModel, customer_id: uuid.UUID) -> None:
    """Hand an event to followup's handler, as the consumer would, in one transaction."""
    env = Envelope.new(source="/t", data=event, time=f.clock.now(), key=str(customer_id))
    with f.container.uow() as uow:
        handlers(f.container.service)[event.name](uow, env, event)
        uow.commit()


def open_loop(f: Followup, customer_id: uuid.UUID | None = None, **fields: Any) -> dict[str, Any]:
    """Deliver an assignment and return the loop it landed in."""
    customer_id = customer_id or uuid.uuid4()
    event = assigned(f, customer_id, **fields)
    deliver(f, event, customer_id)
    return loop_of(f, event.complaint_id)


def loop_of(f: Followup, complaint_id: uuid.UUID) -> dict[str, Any]:
    with f.container.uow() as uow:
        loop = uow.repo.loop_of_complaint(complaint_id)
        assert loop is not None
        loop_id = loop.id
    return get(f, loop_id)


def get(f: Followup, loop_id: uuid.UUID | str) -> dict[str, Any]:
    r = f.http.get(f"/v1/loops/{loop_id}", headers=f.headers())
    assert r.status_code == 200, r.text
    return dict(r.json())


def post(f: Followup, path: str, body: dict[str, Any] | None = None, **who: Any) -> Any:
    return f.http.post(f"/v1{path}", json=body or {}, headers=f.headers(**who))


def confirm(f: Followup, loop: dict[str, Any], resolved: bool) -> None:
    customer_id = uuid.UUID(loop["customer_id"])
    event = ComplaintConfirmedV1(
        complaint_id=uuid.UUID(loop["complaint_id"]),
        client_id="cc-1",
        customer_id=customer_id,
        resolved=resolved,
        csat=4 if resolved else 2,
        confirmed_at=f.clock.now(),
    )
    deliver(f, event, customer_id)


def outbox(f: Followup, name: str) -> list[dict[str, Any]]:
    with f.container.engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.payload, OUTBOX.c.topic)
            .where(OUTBOX.c.event_type == f"closeloop.{name}.v1")
            .order_by(OUTBOX.c.seq)
        ).all()
    assert all(topic == f.settings.topic(topics.LOOPS) for _, topic in rows)
    return [json.loads(payload) for payload, _ in rows]


def resolve_body() -> dict[str, str]:
    return {"resolution_code": "refunded", "root_cause": "fraud rule", "summary": "Refunded fee"}


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 recording what is POSTed to it (a manager's webhook)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


def configure_alerts(
    f: Followup,
    ladders: dict[str, list[dict[str, Any]]],
    sla: dict[str, int] | None = None,
    sla_journey: str = "*",
) -> None:
    """A webhook channel "hook" (to a closed port), ladders by journey ("*" for the rest) and,
    given `sla` minutes (acknowledge, first_promise, resolve), a 24/7 policy for `sla_journey`."""
    now = f.clock.now()
    with f.container.uow() as uow:
        uow.session.add(
            ChannelRow(
                key="hook",
                kind="webhook",
                config={"url": "http://127.0.0.1:9/", "secret": "s" * 32},
                enabled=True,
                version=1,
                updated_at=now,
            )
        )
        for journey, levels in ladders.items():
            uow.session.add(
                LadderRow(journey_key=journey, levels=levels, version=1, updated_at=now)
            )
        if sla is not None:
            uow.session.add(
                CalendarRow(
                    key="always",
                    name="24/7",
                    tz="UTC",
                    weekly={str(d): [["00:00", "00:00"]] for d in range(7)},
                    country=None,
                    subdivision=None,
                    holidays=[],
                    working_days=[],
                    version=1,
                    updated_at=now,
                )
            )
            uow.session.flush()
            uow.session.add(
                SlaPolicyRow(
                    id=new_id(),
                    journey_key=sla_journey,
                    severity="*",
                    calendar_key="always",
                    acknowledge_minutes=sla["acknowledge"],
                    first_promise_minutes=sla["first_promise"],
                    resolve_minutes=sla["resolve"],
                    version=1,
                    updated_at=now,
                )
            )
        uow.commit()


def received(f: Followup, complaint_id: uuid.UUID, customer_id: uuid.UUID, **fields: Any) -> None:
    """Deliver the complaint.received whose copy the console shows; keywords replace fields."""
    body: dict[str, Any] = {
        "complaint_id": complaint_id,
        "client_id": "cc-1",
        "customer_id": customer_id,
        "customer": {"ref": "cust-1", "name": "Ada Lovelace", "tier": "gold"},
        "channel": "phone",
        "summary": "Card declined twice",
        "description": "Declined at the grocery store on Monday and again on Tuesday.",
        "external_ref": "CFPB-123",
        "received_at": f.clock.now(),
        "repeat_contact": {"count_30d": 1, "is_repeat": False},
    }
    body.update(fields)
    deliver(f, ComplaintReceivedV1.model_validate(body), customer_id)


def sign_in(f: Followup, subject: str = "ana", role: str = "owner", **kw: Any) -> None:
    """Sign the test client in to the console (the session cookie stays on it)."""
    token = issue_token(f.settings, f.clock, role=role, subject=subject, **kw)
    r = f.http.post("/console/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text


def csrf_of(page: str) -> str:
    """The CSRF token rendered into a console page's forms."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)

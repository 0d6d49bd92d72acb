"""Status-change webhooks on SQLite and PostgreSQL against a real HTTP receiver on loopback:
address screening at subscribe and send time, HMAC signatures, retries with back-off, the
attempt log, redirects, event filters and isolation between clients.

No sleeps: time moves only when the FrozenClock is advanced, and deliveries are sent only when a
test calls `dispatcher.run_once()`.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from support import T0, Intake, IntakeFactory, complaint
from webhook_receiver import Received, Receiver

from services.intake import domain
from services.intake.handlers import ReadModelHandlers
from services.intake.models import WebhookAttempt
from services.intake.schemas import SubscriptionIn
from services.intake.webhooks import WebhookDispatcher
from shared.auth import Principal
from shared.events.envelope import Envelope
from shared.events.models import ComplaintAssignedV1, Ref
from shared.webhooks import verify_webhook

PROBLEM = "application/problem+json"
LOOPBACK = ["127.0.0.0/8"]
SECRET = "s3cret-key-for-tests-0123456789"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def local(intake_factory: IntakeFactory) -> Intake:
    """Intake that may deliver to loopback receivers."""
    return intake_factory(webhook_allowed_hosts=LOOPBACK)


# --- helpers -------------------------------------------------------------------------------------


def subscribe(intake: Intake, url: str, subject: str = "cc-1", **body: Any) -> Any:
    return intake.http.post(
        "/v1/subscriptions", json={"url": url, **body}, headers=intake.headers(subject)
    )


def subscribed(intake: Intake, url: str, subject: str = "cc-1", **body: Any) -> dict[str, Any]:
    r = subscribe(intake, url, subject, **body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def get_sub(intake: Intake, sub_id: str, subject: str = "cc-1") -> Any:
    return intake.http.get(f"/v1/subscriptions/{sub_id}", headers=intake.headers(subject))


def deliveries(intake: Intake, sub_id: str, subject: str = "cc-1") -> list[dict[str, Any]]:
    r = get_sub(intake, sub_id, subject)
    assert r.status_code == 200, r.text
    return list(r.json()["recent_deliveries"])


def the_delivery(intake: Intake, sub_id: str) -> dict[str, Any]:
    (delivery,) = deliveries(intake, sub_id)
    return delivery


def attempts(intake: Intake) -> list[Any]:
    """Every row of `webhook_attempts`, oldest first."""
    with intake.container.engine.connect() as conn:
        return list(conn.execute(select(WebhookAttempt.__table__).order_by(WebhookAttempt.at)))


def posted(intake: Intake, subject: str = "cc-1", **overrides: Any) -> dict[str, Any]:
    r = intake.post(complaint(**overrides), subject=subject)
    assert r.status_code == 201, r.text
    return dict(r.json())


def assign(intake: Intake, c: dict[str, Any]) -> None:
    """Apply complaint.assigned to the read model as the consumer would: received -> assigned."""
    now = intake.clock.now()
    event = ComplaintAssignedV1(
        complaint_id=uuid.UUID(c["id"]),
        customer_id=uuid.UUID(c["customer_id"]),
        journey=Ref(key="card-payments", name="Card payments"),
        stage="triage",
        owner=Ref(key="team-cards", name="Cards team"),
        severity="high",
        assigned_at=now,
    )
    env = Envelope.new(source="/closeloop/routing", data=event, time=now, key=c["customer_id"])
    with intake.container.uow() as uow:
        ReadModelHandlers(intake.clock).apply(uow, env, event)
        uow.commit()


def run(intake: Intake) -> int:
    return intake.container.dispatcher.run_once()


def signature_ok(secret: str, request: Received) -> bool:
    return verify_webhook(secret, request.headers["closeloop-signature"], request.body)


def sig_time(request: Received) -> int:
    parts = dict(p.split("=", 1) for p in request.headers["closeloop-signature"].split(","))
    return int(parts["t"])


# --- subscribing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "RECEIVER",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/",
    ],
)
def test_private_destinations_are_refused_by_default(
    intake: Intake, receiver: Receiver, url: str
) -> None:
    url = receiver.url() if url == "RECEIVER" else url

    r = subscribe(intake, url, secret=SECRET)

    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["url"]
    assert "private, loopback or unresolvable" in problem["errors"][0]["message"]
    listed = intake.http.get("/v1/subscriptions", headers=intake.headers())
    assert listed.json()["items"] == []
    assert receiver.requests == []


def test_allow_listed_loopback_is_accepted_and_a_generated_secret_is_shown_once(
    local: Intake, receiver: Receiver
) -> None:
    r = subscribe(local, receiver.url(), description="CRM sync")

    assert r.status_code == 201, r.text
    created = r.json()
    assert created["url"] == receiver.url()
    assert created["events"] == ["complaint.status_changed", "complaint.promise_changed"]
    assert created["active"] is True
    assert len(created["secret"]) >= 32

    got = get_sub(local, created["id"])
    assert got.status_code == 200
    assert "secret" not in got.json()
    assert got.json()["recent_deliveries"] == []
    listed = local.http.get("/v1/subscriptions", headers=local.headers()).json()["items"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert all(s.get("secret") is None for s in listed)  # the list renders it as null

    # a secret the client chose is never echoed, not even on creation
    own = subscribe(local, receiver.url("/other"), secret=SECRET)
    assert own.status_code == 201
    assert "secret" not in own.json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"retries": 5}, "retries"),
        ({"events": ["complaint.deleted"]}, "events.0"),
        ({"events": []}, "events"),
        ({"secret": "too-short"}, "secret"),
        ({"url": "ftp://127.0.0.1/hook"}, "url"),
        ({"url": "not a url"}, "url"),
    ],
)
def test_invalid_subscriptions_are_422_naming_the_field(
    local: Intake, receiver: Receiver, change: dict[str, Any], field: str
) -> None:
    body = {"url": receiver.url(), "secret": SECRET, **change}

    r = local.http.post("/v1/subscriptions", json=body, headers=local.headers())

    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert field in [e["field"] for e in r.json()["errors"]]
    assert local.http.get("/v1/subscriptions", headers=local.headers()).json()["items"] == []


def test_another_client_can_neither_see_nor_delete_my_subscription(
    local: Intake, receiver: Receiver
) -> None:
    sub = subscribed(local, receiver.url(), secret=SECRET)

    other = get_sub(local, sub["id"], subject="cc-2")
    assert other.status_code == 404
    assert other.headers["content-type"] == PROBLEM
    deleted = local.http.delete(f"/v1/subscriptions/{sub['id']}", headers=local.headers("cc-2"))
    assert deleted.status_code == 404
    assert local.http.get("/v1/subscriptions", headers=local.headers("cc-2")).json()["items"] == []

    # still mine, still active - and another client's status changes never reach it
    assert get_sub(local, sub["id"]).json()["active"] is True
    assign(local, posted(local, subject="cc-2"))
    assert run(local) == 0
    assert receiver.requests == []

    # the owner can delete it; afterwards it is gone for the owner as well
    assert (
        local.http.delete(f"/v1/subscriptions/{sub['id']}", headers=local.headers()).status_code
        == 204
    )
    assert get_sub(local, sub["id"]).status_code == 404


# --- delivery ------------------------------------------------------------------------------------


def test_status_change_is_delivered_signed_end_to_end(local: Intake, receiver: Receiver) -> None:
    sub = subscribed(local, receiver.url())
    secret = sub["secret"]
    c = posted(local, external_ref="crm-42")

    assign(local, c)
    assert run(local) == 1

    (req,) = receiver.requests
    assert req.method == "POST"
    assert req.path == "/hook"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["closeloop-event"] == "complaint.status_changed"
    assert signature_ok(secret, req)
    assert sig_time(req) == int(T0.timestamp())
    assert not verify_webhook(
        "some-other-secret-entirely", req.headers["closeloop-signature"], req.body
    )
    assert not verify_webhook(secret, req.headers["closeloop-signature"], req.body + b" ")

    body = json.loads(req.body)
    delivery = the_delivery(local, sub["id"])
    assert body["id"] == delivery["id"] == req.headers["closeloop-delivery"]
    assert body["type"] == "complaint.status_changed"
    assert body["complaint_id"] == c["id"]
    assert body["external_ref"] == "crm-42"
    assert body["status"] == "assigned"
    assert body["previous_status"] == "received"
    assert body["journey"] == {"key": "card-payments", "name": "Card payments", "stage": "triage"}
    assert body["owner"] == {"key": "team-cards", "name": "Cards team"}
    assert body["promises"] == []

    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 200
    assert delivery.get("last_error") is None
    assert delivery["complaint_id"] == c["id"]
    assert delivery["event_type"] == "complaint.status_changed"
    (attempt,) = attempts(local)
    assert (attempt.status_code, attempt.error) == (200, None)

    # delivered means done: nothing is sent again, however much time passes
    local.clock.advance(timedelta(days=1))
    assert run(local) == 0
    assert len(receiver.requests) == 1


def test_failures_are_retried_with_back_off_until_delivered(
    intake_factory: IntakeFactory, receiver: Receiver
) -> None:
    intake = intake_factory(webhook_allowed_hosts=LOOPBACK, webhook_backoff_s=2.0)
    sub = subscribed(intake, receiver.url(), secret=SECRET)
    receiver.respond(500, 500, 200)
    assign(intake, posted(intake))

    # 1st attempt at T0 fails; retry due 2 s later
    assert run(intake) == 1
    d = the_delivery(intake, sub["id"])
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, 500)
    assert d["last_error"] == "non-2xx response: HTTP 500"
    assert len(attempts(intake)) == 1

    # not due yet: nothing is sent
    assert run(intake) == 0
    intake.clock.advance(timedelta(seconds=1.9))
    assert run(intake) == 0
    assert len(receiver.posts()) == 1

    # 2nd attempt after the 2 s back-off fails; the next waits twice as long (4 s)
    intake.clock.advance(timedelta(seconds=0.2))
    assert run(intake) == 1
    d = the_delivery(intake, sub["id"])
    assert (d["status"], d["attempts"]) == ("pending", 2)
    intake.clock.advance(timedelta(seconds=3.9))
    assert run(intake) == 0
    assert len(receiver.posts()) == 2

    # 3rd attempt succeeds
    intake.clock.advance(timedelta(seconds=0.2))
    assert run(intake) == 1
    d = the_delivery(intake, sub["id"])
    assert d["status"] == "delivered"
    assert d["attempts"] == 3
    assert d["last_status_code"] == 200
    assert d.get("last_error") is None
    assert d["delivered_at"] is not None

    posts = receiver.posts()
    assert len(posts) == 3
    # the same delivery each time (receivers de-duplicate on it), re-signed at each attempt
    assert {p.headers["closeloop-delivery"] for p in posts} == {d["id"]}
    assert len({p.body for p in posts}) == 1
    assert all(signature_ok(SECRET, p) for p in posts)
    assert [sig_time(p) - int(T0.timestamp()) for p in posts] == [0, 2, 6]
    assert [(a.status_code, a.error is None) for a in attempts(intake)] == [
        (500, False),
        (500, False),
        (200, True),
    ]
    intake.clock.advance(timedelta(hours=1))
    assert run(intake) == 0


def test_delivery_gives_up_after_max_attempts_and_nothing_else_is_lost(
    intake_factory: IntakeFactory, receiver: Receiver
) -> None:
    intake = intake_factory(
        webhook_allowed_hosts=LOOPBACK, webhook_max_attempts=3, webhook_backoff_s=2.0
    )
    sub = subscribed(intake, receiver.url(), secret=SECRET)
    receiver.default = 500
    c = posted(intake)
    assign(intake, c)

    for _ in range(3):
        assert run(intake) == 1
        intake.clock.advance(timedelta(minutes=5))

    d = the_delivery(intake, sub["id"])
    assert d["status"] == "failed"
    assert d["attempts"] == 3
    assert d["last_status_code"] == 500
    assert d["last_error"] == "non-2xx response: HTTP 500"
    assert d.get("delivered_at") is None
    assert [a.status_code for a in attempts(intake)] == [500, 500, 500]

    # given up for good: no further attempts, even much later or once the receiver recovers
    receiver.default = 200
    intake.clock.advance(timedelta(days=2))
    assert run(intake) == 0
    assert len(receiver.posts()) == 3
    assert len(attempts(intake)) == 3

    # the complaint's own status is untouched by the failed webhook
    got = intake.http.get(f"/v1/complaints/{c['id']}", headers=intake.headers())
    assert got.status_code == 200
    assert got.json()["status"] == "assigned"
    assert got.json()["journey"]["key"] == "card-payments"
    assert got.json()["owner"]["key"] == "team-cards"


def test_redirects_are_failed_attempts_and_never_followed(
    local: Intake, receiver: Receiver
) -> None:
    sub = subscribed(local, receiver.url(), secret=SECRET)
    receiver.respond(302)
    assign(local, posted(local))

    assert run(local) == 1

    assert [(r.method, r.path) for r in receiver.requests] == [("POST", "/hook")]
    d = the_delivery(local, sub["id"])
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, 302)
    assert "redirect" in d["last_error"]
    (attempt,) = attempts(local)
    assert attempt.status_code == 302
    assert attempt.error is not None

    # the retry goes to the subscribed URL again, never to the redirect target
    local.clock.advance(timedelta(minutes=1))
    assert run(local) == 1
    assert [r.path for r in receiver.requests] == ["/hook", "/hook"]
    assert the_delivery(local, sub["id"])["status"] == "delivered"


def test_destination_is_checked_again_at_send_time(
    intake_factory: IntakeFactory, receiver: Receiver
) -> None:
    allowed = intake_factory(webhook_allowed_hosts=LOOPBACK)
    sub = subscribed(allowed, receiver.url(), secret=SECRET)
    c = posted(allowed)
    strict = intake_factory()  # same database, no allow-list

    assign(strict, c)
    assert run(strict) == 1

    assert receiver.requests == []
    d = the_delivery(strict, sub["id"])
    assert d["status"] == "pending"
    assert d["attempts"] == 1
    assert d.get("last_status_code") is None
    assert d["last_error"].startswith("destination refused")
    assert "127.0.0.1" in d["last_error"]
    (attempt,) = attempts(strict)
    assert attempt.status_code is None
    assert attempt.error is not None
    assert "destination refused" in attempt.error

    # the refused delivery is kept, not lost: a dispatcher allowed to send it delivers it later
    strict.clock.advance(timedelta(minutes=1))
    assert run(allowed) == 1
    assert len(receiver.posts()) == 1
    assert the_delivery(allowed, sub["id"])["status"] == "delivered"


def test_subscription_gets_only_the_event_types_it_asked_for(
    local: Intake, receiver: Receiver
) -> None:
    promises_only = subscribed(
        local, receiver.url("/promises"), secret=SECRET, events=["complaint.promise_changed"]
    )
    statuses = subscribed(
        local, receiver.url("/statuses"), secret=SECRET, events=["complaint.status_changed"]
    )

    assign(local, posted(local))
    assert run(local) == 1

    assert deliveries(local, promises_only["id"]) == []
    assert receiver.posts("/promises") == []
    assert len(receiver.posts("/statuses")) == 1
    assert the_delivery(local, statuses["id"])["status"] == "delivered"


# --- defects found while writing these tests, fixed since --------------------------------------


def test_deleting_a_subscription_stops_its_pending_deliveries(
    local: Intake, receiver: Receiver
) -> None:
    sub = subscribed(local, receiver.url(), secret=SECRET)
    assign(local, posted(local))  # queued, not yet sent

    assert (
        local.http.delete(f"/v1/subscriptions/{sub['id']}", headers=local.headers()).status_code
        == 204
    )
    run(local)

    assert receiver.requests == []


def test_the_dispatcher_connects_to_the_address_it_checked(
    intake_factory: IntakeFactory, receiver: Receiver
) -> None:
    """DNS rebinding: the name must not be resolved again between the check and the connect.

    The check's resolver answers 127.0.0.2 (allow-listed); the operating system would resolve
    `localhost` to 127.0.0.1, where the receiver listens. Connecting to the checked address
    reaches nothing; resolving again would reach the receiver. Loopback only, no outside traffic.
    """
    intake = intake_factory(webhook_timeout_s=1.0, webhook_allowed_hosts=["127.0.0.2/32"])

    def checked_dns(_host: str) -> list[domain.IPAddress]:
        return [ipaddress.ip_address("127.0.0.2")]

    dispatcher = WebhookDispatcher(
        intake.container.uow, intake.clock, intake.settings, intake.container.http, checked_dns
    )
    url = f"http://localhost:{receiver.port}/hook"
    intake.container.service.subscribe(
        Principal(subject="cc-1", role="intake-client"),
        SubscriptionIn.model_validate({"url": url, "secret": SECRET}),
        dispatcher.screen,
    )
    assign(intake, posted(intake))

    assert dispatcher.run_once() == 1

    assert receiver.requests == []


def test_no_database_lock_is_held_while_waiting_for_the_receiver(
    local: Intake, receiver: Receiver, backend: str, request: pytest.FixtureRequest
) -> None:
    subscribed(local, receiver.url(), secret=SECRET)
    assign(local, posted(local))
    writer: dict[str, Any] = {}

    def submit_complaint_while_in_flight(_: Received) -> None:
        def post() -> None:
            writer["status"] = local.post(complaint(external_ref="during-send")).status_code

        thread = threading.Thread(target=post, daemon=True)
        thread.start()
        thread.join(timeout=5)  # a bounded wait to detect blocking, not a pacing sleep
        writer["blocked"] = thread.is_alive()
        writer["thread"] = thread

    receiver.on_request = submit_complaint_while_in_flight

    assert run(local) == 1

    writer["thread"].join(timeout=60)
    assert writer["status"] == 201
    assert writer["blocked"] is False


def test_a_slow_batch_does_not_let_another_replica_send_a_delivery_twice(
    intake_factory: IntakeFactory, receiver: Receiver, backend: str, request: pytest.FixtureRequest
) -> None:
    a = intake_factory(webhook_allowed_hosts=LOOPBACK, webhook_timeout_s=5.0)
    b = intake_factory(webhook_allowed_hosts=LOOPBACK, webhook_timeout_s=5.0)  # a 2nd replica
    sub = subscribed(a, receiver.url(), secret=SECRET)
    for i in range(4):
        assign(a, posted(a, external_ref=f"crm-{i}", customer={"ref": f"cust-{i}"}))
    lease_end = a.clock.now() + timedelta(seconds=15)
    replica: dict[str, int] = {}

    def each_answer_takes_four_seconds(_: Received) -> None:
        a.clock.advance(timedelta(seconds=4))  # within the 5 s timeout
        if a.clock.now() > lease_end and "sent" not in replica:
            replica["sent"] = -1  # the replica's own request comes back through here
            replica["sent"] = b.container.dispatcher.run_once()

    receiver.on_request = each_answer_takes_four_seconds

    assert run(a) == 4

    ids = [p.headers["closeloop-delivery"] for p in receiver.posts()]
    assert len(ids) == len(set(ids)) == 4
    assert replica["sent"] == 0
    assert sum(d["attempts"] for d in deliveries(a, sub["id"])) == len(attempts(a)) == 4

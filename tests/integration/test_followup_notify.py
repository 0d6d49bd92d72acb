"""Alert delivery on SQLite and PostgreSQL against real receivers on 127.0.0.1: a signed webhook,
an SMTP server, a Slack-compatible chat webhook; retries with back-off, every attempt recorded,
channels disabled or gone, and replicas that never send a delivery twice at the same time.

The scheduler's output (loop, due target, alert, pending delivery) is inserted directly. No
sleeps: time moves only when the FrozenClock is advanced, and deliveries are sent only when a
test calls `dispatcher.run_once()`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from support import T0, Followup, FollowupFactory
from support_smtp import SmtpSink
from webhook_receiver import Received, Receiver

from services.followup.models import Alert, Delivery, DeliveryAttempt, DueTarget, Loop
from services.followup.notify import AlertDispatcher, describe, human_duration
from shared.logging import correlation_id
from shared.webhooks import verify_webhook

SECRET = "alert-secret-0123456789abcdef"
DUE = T0 - timedelta(hours=2, minutes=5)  # the promise's due time: 2 h 5 min before now


# --- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fired:
    alert_id: uuid.UUID
    delivery_id: uuid.UUID
    loop_id: uuid.UUID
    complaint_id: uuid.UUID
    customer_id: uuid.UUID
    promise_id: uuid.UUID | None
    target: str


def fire(
    f: Followup,
    channel: str,
    *,
    audience: str = "manager:mgr-cards",
    kind: str = "overdue",
    level: int = 2,
    target: str | None = None,
) -> Fired:
    """What the scheduler leaves behind when a ladder level fires: an alert, a pending delivery."""
    now = f.clock.now()
    loop_id, complaint_id, customer_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    promise_id = uuid.uuid4() if target is None else None
    target = target or f"promise:{promise_id}"
    with f.container.uow() as uow:
        uow.session.add(
            Loop(
                id=loop_id,
                complaint_id=complaint_id,
                customer_id=customer_id,
                journey_key="cards",
                journey_name="Cards & payments",
                stage="dispute",
                owner_key="ana",
                owner_name="Ana",
                journey_manager="mgr-cards",
                status="promised",
                severity="high",
                contacts=1,
                opened_at=now - timedelta(days=1),
                pauses=[],
                updated_at=now,
            )
        )
        uow.session.flush()
        due_target = DueTarget(
            id=uuid.uuid4(),
            loop_id=loop_id,
            target=target,
            promise_id=promise_id,
            due_at=DUE,
            breached=True,
            next_level=level,
            next_fire_at=None,
            updated_at=now,
        )
        uow.session.add(due_target)
        uow.session.flush()
        alert = Alert(
            id=uuid.uuid4(),
            target_id=due_target.id,
            loop_id=loop_id,
            complaint_id=complaint_id,
            journey_key="cards",
            owner_key="ana",
            target=target,
            promise_id=promise_id,
            due_at=DUE,
            level=level,
            offset_minutes=120,
            kind=kind,
            audience=audience,
            channel=channel,
            fired_at=now,
            late_by_seconds=300,
        )
        uow.session.add(alert)
        uow.session.flush()
        delivery = Delivery(
            id=uuid.uuid4(),
            alert_id=alert.id,
            channel_key=channel,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        uow.session.add(delivery)
        uow.commit()
    return Fired(alert.id, delivery.id, loop_id, complaint_id, customer_id, promise_id, target)


def channel(f: Followup, key: str, kind: str, config: dict[str, Any], enabled: bool = True) -> None:
    r = f.http.put(
        f"/v1/notification-channels/{key}",
        json={"kind": kind, "config": config, "enabled": enabled},
        headers=f.headers(),
    )
    assert r.status_code in (200, 201), r.text


def ladder(f: Followup, channel_key: str, levels: int = 3) -> None:
    body = {
        "levels": [
            {"offset_minutes": 60 * i, "audience": "journey_manager", "channel": channel_key}
            for i in range(levels)
        ]
    }
    r = f.http.put("/v1/escalation-ladders/*", json=body, headers=f.headers())
    assert r.status_code in (200, 201), r.text


def delivery(f: Followup, delivery_id: uuid.UUID) -> Delivery:
    with f.container.uow() as uow:
        row = uow.session.get(Delivery, delivery_id)
        assert row is not None
        uow.session.expunge(row)  # readable after the unit of work rolls back
        return row


def attempts(f: Followup, delivery_id: uuid.UUID) -> list[DeliveryAttempt]:
    with f.container.uow() as uow:
        rows = list(
            uow.session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id == delivery_id)
                .order_by(DeliveryAttempt.at, DeliveryAttempt.id)
            )
        )
        uow.session.expunge_all()
        return rows


def listed(f: Followup, alert_id: uuid.UUID) -> dict[str, Any]:
    """The alert as the alerts API lists it (it stays listed whatever its delivery did)."""
    r = f.http.get("/v1/alerts", headers=f.headers())
    assert r.status_code == 200, r.text
    [item] = [a for a in r.json()["items"] if a["id"] == str(alert_id)]
    return dict(item)


def counted(channel_kind: str, outcome: str) -> float:
    labels = {"service": "followup", "channel_kind": channel_kind, "outcome": outcome}
    return REGISTRY.get_sample_value("closeloop_alert_deliveries_total", labels) or 0.0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signature_ok(secret: str, header: str, body: bytes) -> bool:
    """The receiver's side, written out: HMAC-SHA256 of "<t>.<body>" under the secret."""
    parts = dict(p.split("=", 1) for p in header.split(","))
    mac = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), parts["v1"])


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def dispatcher(f: Followup, client: httpx.Client, **kw: Any) -> AlertDispatcher:
    return AlertDispatcher(f.container.uow, f.clock, client, **kw)


class LogSpy(logging.Handler):
    """Each record of the dispatcher's logger with the correlation id in force when logged."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.getMessage(), correlation_id.get()))


@pytest.fixture
def logs() -> Iterator[LogSpy]:
    logger = logging.getLogger("services.followup.notify")
    spy, level = LogSpy(), logger.level
    logger.addHandler(spy)
    logger.setLevel(logging.INFO)
    yield spy
    logger.removeHandler(spy)
    logger.setLevel(level)


# --- webhook ---------------------------------------------------------------------------------


def test_webhook_alert_is_signed_and_sent_once(
    followup: Followup, client: httpx.Client, receiver: Receiver, logs: LogSpy
) -> None:
    channel(followup, "hook", "webhook", {"url": receiver.url(), "secret": SECRET})
    ladder(followup, "hook")
    fired = fire(followup, "hook")
    sent_before = counted("webhook", "sent")

    d = dispatcher(followup, client)
    assert d.run_once() == 1
    assert d.run_once() == 0  # sent: nothing more is due

    [req] = receiver.posts("/hook")
    assert signature_ok(SECRET, req.headers["closeloop-signature"], req.body)
    assert verify_webhook(SECRET, req.headers["closeloop-signature"], req.body)  # intake's scheme
    assert req.headers["closeloop-signature"].startswith(f"t={int(T0.timestamp())},v1=")
    assert req.headers["closeloop-event"] == "alert"
    assert req.headers["closeloop-delivery"] == str(fired.delivery_id)
    assert req.headers["idempotency-key"] == str(fired.delivery_id)
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.body) == {
        "alert_id": str(fired.alert_id),
        "kind": "overdue",
        "loop_id": str(fired.loop_id),
        "complaint_id": str(fired.complaint_id),
        "journey": "cards",
        "journey_name": "Cards & payments",
        "owner": "ana",
        "target": fired.target,
        "promise_id": str(fired.promise_id),
        "level": 2,
        "levels": 3,
        "audience": "manager:mgr-cards",
        "channel": "hook",
        "due_at": "2026-11-23T06:55:00Z",
        "fired_at": "2026-11-23T09:00:00Z",
        "late_by_seconds": 300,
        "message": "Promise to the customer in Cards & payments (owner ana) is 2 h 5 min "
        "overdue (level 2 of 3, for manager:mgr-cards); due 2026-11-23 06:55 UTC.",
    }
    assert str(fired.customer_id) not in req.body.decode()  # nothing about the customer

    row = delivery(followup, fired.delivery_id)
    assert (row.status, row.attempts, row.sent_at, row.next_attempt_at, row.last_error) == (
        "sent",
        1,
        T0,
        None,
        None,
    )
    [attempt] = attempts(followup, fired.delivery_id)
    assert (attempt.ok, attempt.status_code, attempt.error, attempt.at) == (True, 200, None, T0)
    assert listed(followup, fired.alert_id)["delivery"]["status"] == "sent"
    assert counted("webhook", "sent") == sent_before + 1
    assert logs.seen == [("alert delivered", str(fired.complaint_id))]


def test_failing_receiver_is_retried_with_backoff_then_failed_and_the_alert_stays(
    followup: Followup, client: httpx.Client
) -> None:
    with Receiver(default=500) as receiver:
        channel(followup, "hook", "webhook", {"url": receiver.url(), "secret": SECRET})
        fired = fire(followup, "hook")
        retries, failures = counted("webhook", "retry"), counted("webhook", "failed")
        d = dispatcher(followup, client, max_attempts=3, backoff_s=5)

        assert d.run_once() == 1  # attempt 1 at T0; the next is due 5 s later
        assert delivery(followup, fired.delivery_id).next_attempt_at == T0 + timedelta(seconds=5)
        followup.clock.advance(timedelta(seconds=4))
        assert d.run_once() == 0
        followup.clock.advance(timedelta(seconds=1))
        assert d.run_once() == 1  # attempt 2 at T0+5 s; the next 10 s later
        followup.clock.advance(timedelta(seconds=9))
        assert d.run_once() == 0
        followup.clock.advance(timedelta(seconds=1))
        assert d.run_once() == 1  # attempt 3 at T0+15 s: the last one
        followup.clock.advance(timedelta(hours=2))
        assert d.run_once() == 0

        assert len(receiver.posts()) == 3
        bodies = {r.body for r in receiver.posts()}
        assert len(bodies) == 1  # every retry sends the same alert
        ids = {r.headers["closeloop-delivery"] for r in receiver.posts()}
        assert ids == {str(fired.delivery_id)}

    row = delivery(followup, fired.delivery_id)
    assert (row.status, row.attempts, row.next_attempt_at, row.sent_at) == ("failed", 3, None, None)
    assert row.last_error == "non-2xx response: HTTP 500"
    tries = attempts(followup, fired.delivery_id)
    assert [(a.at - T0, a.ok, a.status_code) for a in tries] == [
        (timedelta(0), False, 500),
        (timedelta(seconds=5), False, 500),
        (timedelta(seconds=15), False, 500),
    ]
    alert = listed(followup, fired.alert_id)
    assert alert["delivery"] == {
        "channel": "hook",
        "status": "failed",
        "attempts": 3,
        "last_error": "non-2xx response: HTTP 500",
        "sent_at": None,
    }
    assert counted("webhook", "retry") == retries + 2
    assert counted("webhook", "failed") == failures + 1


def test_receiver_down_is_retried_then_failed(
    followup: Followup, client: httpx.Client, receiver: Receiver
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    channel(followup, "hook", "webhook", {"url": url, "secret": SECRET})
    channel(followup, "up", "webhook", {"url": receiver.url(), "secret": SECRET})
    fired = fire(followup, "hook")
    d = dispatcher(followup, client, max_attempts=2, backoff_s=5)

    assert d.run_once() == 1
    row = delivery(followup, fired.delivery_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert (row.last_error or "").startswith("ConnectError")

    # Once a channel failed in a pass, its other deliveries wait for the next; others go on.
    also_down, elsewhere = fire(followup, "hook"), fire(followup, "up")
    followup.clock.advance(timedelta(seconds=5))
    assert d.run_once() == 2
    assert delivery(followup, elsewhere.delivery_id).status == "sent"
    assert delivery(followup, also_down.delivery_id).attempts == 1
    assert delivery(followup, fired.delivery_id).attempts == 1  # skipped in that pass

    followup.clock.advance(timedelta(seconds=5))
    assert d.run_once() == 1  # the earliest due of the two; the other waits again

    row = delivery(followup, fired.delivery_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, None)
    tries = attempts(followup, fired.delivery_id)
    assert [(a.ok, a.status_code) for a in tries] == [(False, None), (False, None)]
    assert all((a.error or "").startswith("ConnectError") for a in tries)
    assert listed(followup, fired.alert_id)["delivery"]["status"] == "failed"


def test_a_retry_that_succeeds_marks_the_delivery_sent(
    followup: Followup, client: httpx.Client
) -> None:
    with Receiver([500]) as receiver:
        channel(followup, "hook", "webhook", {"url": receiver.url(), "secret": SECRET})
        fired = fire(followup, "hook")
        d = dispatcher(followup, client)
        assert d.run_once() == 1
        followup.clock.advance(timedelta(seconds=5))
        assert d.run_once() == 1
        assert len(receiver.posts()) == 2

    row = delivery(followup, fired.delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert row.sent_at == T0 + timedelta(seconds=5)
    assert [a.ok for a in attempts(followup, fired.delivery_id)] == [False, True]


def test_redirects_are_not_followed(followup: Followup, client: httpx.Client) -> None:
    with Receiver([302]) as receiver:
        channel(followup, "hook", "webhook", {"url": receiver.url(), "secret": SECRET})
        fired = fire(followup, "hook")
        assert dispatcher(followup, client).run_once() == 1
        assert [r.path for r in receiver.requests] == ["/hook"]  # not /moved

    row = delivery(followup, fired.delivery_id)
    assert (row.status, row.last_error) == ("pending", "redirects are not followed: HTTP 302")


# --- channels disabled or gone ---------------------------------------------------------------


def test_disabled_or_deleted_channel_fails_the_delivery_with_the_reason(
    followup: Followup, client: httpx.Client, receiver: Receiver
) -> None:
    channel(followup, "off", "webhook", {"url": receiver.url(), "secret": SECRET}, enabled=False)
    disabled = fire(followup, "off")
    gone = fire(followup, "gone")  # no such channel (deleted after the alert fired)

    assert dispatcher(followup, client).run_once() == 2
    assert receiver.requests == []
    for fired, reason in [
        (disabled, "notification channel 'off' is disabled"),
        (gone, "notification channel 'gone' does not exist"),
    ]:
        row = delivery(followup, fired.delivery_id)
        assert (row.status, row.attempts, row.next_attempt_at, row.last_error) == (
            "failed",
            1,
            None,
            reason,
        )
        [attempt] = attempts(followup, fired.delivery_id)
        assert (attempt.ok, attempt.error) == (False, reason)
        assert listed(followup, fired.alert_id)["delivery"]["last_error"] == reason


# --- e-mail ----------------------------------------------------------------------------------


def test_email_goes_to_the_audience_address_or_the_default(
    followup: Followup, client: httpx.Client
) -> None:
    with SmtpSink() as sink:
        smtp = {"host": "127.0.0.1", "port": sink.port, "starttls": False}
        channel(
            followup,
            "mail",
            "email",
            {
                **smtp,
                "sender": "closeloop@bank.example",
                "username": "alerts",
                "password": "pw-123",
                "addresses": {"manager:mgr-cards": "cards.manager@bank.example"},
                "default_address": "cx-alerts@bank.example",
            },
        )
        channel(
            followup,
            "mail-strict",
            "email",
            {**smtp, "sender": "closeloop@bank.example", "addresses": {}},
        )
        channel(
            followup,
            "mail-tls",
            "email",
            {
                **smtp,
                "starttls": True,
                "sender": "closeloop@bank.example",
                "default_address": "cx-alerts@bank.example",
            },
        )
        ladder(followup, "mail")
        to_manager = fire(followup, "mail")
        to_owner = fire(followup, "mail", audience="owner:ana", kind="reminder", level=1)
        nobody = fire(followup, "mail-strict", audience="person:zoe")
        no_tls = fire(followup, "mail-tls", audience="role:admin")

        assert dispatcher(followup, client).run_once() == 4
        mails = sorted(sink.mails, key=lambda m: m.rcpt_to)

    assert [(m.mail_from, m.rcpt_to, m.auth) for m in mails] == [
        ("closeloop@bank.example", ["cards.manager@bank.example"], ("alerts", "pw-123")),
        ("closeloop@bank.example", ["cx-alerts@bank.example"], ("alerts", "pw-123")),
    ]
    manager, owner = mails[0].message, mails[1].message
    assert manager["To"] == "cards.manager@bank.example"
    assert manager["From"] == "closeloop@bank.example"
    assert manager["Subject"].strip() == (  # a long subject is folded onto its own line
        "[closeloop] Overdue promise, level 2 of 3: Cards & payments (owner ana)"
    )
    assert manager["Message-ID"] == f"<{to_manager.delivery_id}@closeloop.alerts>"
    assert manager["Date"] is not None
    text = manager.get_content()
    assert text.startswith(
        "Promise to the customer in Cards & payments (owner ana) is 2 h 5 min overdue "
        "(level 2 of 3, for manager:mgr-cards); due 2026-11-23 06:55 UTC."
    )
    assert f"Alert:     {to_manager.alert_id}" in text
    assert owner["Subject"].strip().startswith("[closeloop] Reminder, level 1 of 3")

    for fired in (to_manager, to_owner):
        assert delivery(followup, fired.delivery_id).status == "sent"
        [attempt] = attempts(followup, fired.delivery_id)
        assert attempt.ok

    row = delivery(followup, nobody.delivery_id)
    assert (row.status, row.attempts, row.last_error) == (
        "failed",
        1,
        "no address for audience person:zoe",
    )
    row = delivery(followup, no_tls.delivery_id)  # a transport failure: tried again later
    assert (row.status, row.attempts) == ("pending", 1)
    assert "STARTTLS" in (row.last_error or "")


# --- chat ------------------------------------------------------------------------------------


def test_chat_message_is_slack_shaped(
    followup: Followup, client: httpx.Client, receiver: Receiver
) -> None:
    channel(followup, "chat", "chat", {"url": receiver.url("/services/T0/B0/x")})
    fired = fire(followup, "chat", target="sla:resolve", kind="sla_breach")

    assert dispatcher(followup, client).run_once() == 1

    [req] = receiver.posts("/services/T0/B0/x")
    assert "closeloop-signature" not in req.headers
    body = json.loads(req.body)
    message = (
        'SLA target "resolve" in Cards & payments (owner ana) was missed 2 h 5 min ago '
        "(level 2, for manager:mgr-cards); due 2026-11-23 06:55 UTC."
    )
    assert body["text"] == message
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]
    header, section, context = body["blocks"]
    assert header["text"] == {
        "type": "plain_text",
        "text": "[closeloop] SLA breach, level 2: Cards & payments (owner ana)",
    }
    assert section["text"] == {"type": "mrkdwn", "text": message.replace("&", "&amp;")}
    assert str(fired.alert_id) in context["elements"][0]["text"]
    assert delivery(followup, fired.delivery_id).status == "sent"


# --- replicas --------------------------------------------------------------------------------


def test_two_dispatchers_send_each_delivery_exactly_once(
    followup_factory: FollowupFactory, receiver: Receiver
) -> None:
    first, second = followup_factory(), followup_factory()  # two replicas, one database
    channel(first, "hook", "webhook", {"url": receiver.url(), "secret": SECRET})
    fired = [fire(first, "hook") for _ in range(30)]
    barrier = threading.Barrier(2)
    results: list[int] = []

    def run(f: Followup) -> None:
        with httpx.Client() as c:
            d = dispatcher(f, c)
            barrier.wait()
            results.append(d.run_once(limit=100))

    threads = [threading.Thread(target=run, args=(f,)) for f in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    sent = [r.headers["closeloop-delivery"] for r in receiver.posts()]
    assert sorted(sent) == sorted(str(x.delivery_id) for x in fired)  # each once, none twice
    assert sum(results) == 30, results
    for x in fired:
        row = delivery(first, x.delivery_id)
        assert (row.status, row.attempts) == ("sent", 1)
        assert len(attempts(first, x.delivery_id)) == 1


def test_a_send_outliving_its_lease_is_taken_over_and_recorded_once(
    followup_factory: FollowupFactory, client: httpx.Client, receiver: Receiver
) -> None:
    """A dispatcher stalls mid-send past its lease; another replica sends the delivery again
    (same delivery id, for the receiver to dedupe); the stale result is kept as an attempt
    but does not change the delivery."""
    first, second = followup_factory(), followup_factory()
    channel(first, "hook", "webhook", {"url": receiver.url(), "secret": SECRET})
    fired = fire(first, "hook")
    other_client = httpx.Client()
    slow, other = dispatcher(first, client), dispatcher(second, other_client)
    took_over: list[int] = []
    lost_before = counted("webhook", "lease_lost")

    def stall(_: Received) -> None:
        if not took_over:
            took_over.append(0)
            first.clock.advance(timedelta(seconds=61))  # the 60 s lease runs out
            took_over[0] = other.run_once()

    receiver.on_request = stall
    with other_client:
        assert slow.run_once() == 1
    assert took_over == [1]

    ids = [r.headers["closeloop-delivery"] for r in receiver.posts()]
    assert ids == [str(fired.delivery_id)] * 2
    row = delivery(first, fired.delivery_id)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, T0 + timedelta(seconds=61))
    assert [a.ok for a in attempts(first, fired.delivery_id)] == [True, True]
    assert counted("webhook", "lease_lost") == lost_before + 1


# --- the sentence ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (60, "1 min"),
        (59 * 60 + 59, "59 min"),
        (3600, "1 h"),
        (2 * 3600 + 5 * 60 + 30, "2 h 5 min"),
        (86_400, "1 d"),
        (3 * 86_400 + 4 * 3600 + 600, "3 d 4 h"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    ("kind", "target", "fired_after_due", "levels", "sentence"),
    [
        (
            "reminder",
            "promise:1",
            timedelta(minutes=-30),
            3,
            "Reminder: Promise to the customer in Cards (owner ana) is due in 30 min "
            "(level 1 of 3, for owner:ana); due 2026-11-23 09:00 UTC.",
        ),
        (
            "overdue",
            "promise:1",
            timedelta(0),
            3,
            "Promise to the customer in Cards (owner ana) is now overdue "
            "(level 1 of 3, for owner:ana); due 2026-11-23 09:00 UTC.",
        ),
        (
            "sla_breach",
            "sla:first_promise",
            timedelta(days=3, hours=4, minutes=10),
            None,
            'SLA target "first promise" in Cards (owner ana) was missed 3 d 4 h ago '
            "(level 1, for owner:ana); due 2026-11-23 09:00 UTC.",
        ),
    ],
)
def test_describe(
    kind: str, target: str, fired_after_due: timedelta, levels: int | None, sentence: str
) -> None:
    assert (
        describe(
            kind=kind,
            target=target,
            journey_name="Cards",
            owner="ana",
            level=1,
            levels=levels,
            audience="owner:ana",
            due_at=T0,
            fired_at=T0 + fired_after_due,
        )
        == sentence
    )

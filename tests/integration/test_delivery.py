"""Nothing accepted is lost: outbox -> relay -> broker -> idempotent consumers, against the real
Tansu broker and both databases. No sleeps: drain() pumps until nothing moves."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from support import Intake, IntakeFactory, complaint

from services.intake.models import INBOX, OUTBOX
from shared.bus.consumer import EventConsumer
from shared.bus.dlq import DeadLetterPublisher, list_dead_letters, replay
from shared.bus.kafka import Producer, ensure_topics, read_topic
from shared.db.uow import UnitOfWork
from shared.events import topics
from shared.events.envelope import Envelope, KafkaMessage
from shared.events.models import (
    ComplaintAssignedV1,
    EventModel,
    LoopOpenedV1,
    LoopResolvedV1,
    PromiseMadeV1,
    PromiseOverdueV1,
    Ref,
)
from shared.testing.broker import TansuBroker
from shared.testing.drain import drain
from shared.testing.proxy import TcpProxy
from shared.worker import ConsumerPump

pytestmark = pytest.mark.broker


class Probe:
    """A consumer group of its own on a topic, recording what its handler saw."""

    def __init__(self, intake: Intake, topic: str, names: list[str], group: str = "probe") -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.fail = False
        self._producer = Producer(intake.settings, "probe-dlq")
        self.consumer = EventConsumer(
            settings=intake.settings,
            group_id=group,
            topics=[intake.settings.topic(topic)],
            handlers=dict.fromkeys(names, self._handle),
            uow_factory=intake.container.uow,
            inbox_table=INBOX,
            dead_letters=DeadLetterPublisher(self._producer, intake.settings, intake.clock),
            clock=intake.clock,
        )
        self.pump = ConsumerPump(self.consumer)

    def _handle(self, uow: UnitOfWork, env: Envelope, event: EventModel) -> None:
        if self.fail:
            raise RuntimeError("downstream unavailable")
        self.seen.append((env.id, event.model_dump(mode="json")))

    def close(self) -> None:
        self.consumer.close()
        self._producer.close()


@pytest.fixture
def probes() -> Iterator[Callable[..., Probe]]:
    made: list[Probe] = []

    def make(*args: Any, **kwargs: Any) -> Probe:
        probe = Probe(*args, **kwargs)
        made.append(probe)
        return probe

    yield make
    for p in made:
        p.close()


def publish(intake: Intake, topic: str, *events: EventModel, key: str) -> list[Envelope]:
    """Publish events as another service would (straight to the broker)."""
    producer = Producer(intake.settings, "test-publisher")
    envelopes = []
    try:
        for event in events:
            env = Envelope.new(
                source="/closeloop/test",
                data=event,
                time=intake.clock.now(),
                key=key,
                correlationid=str(getattr(event, "complaint_id", "")),
            )
            producer.send(env.to_kafka(intake.settings.topic(topic)))
            envelopes.append(env)
    finally:
        producer.close()
    return envelopes


def unsent(intake: Intake) -> int:
    with intake.container.engine.connect() as conn:
        return len(conn.execute(select(OUTBOX.c.seq).where(OUTBOX.c.sent_at.is_(None))).all())


def test_accepted_complaint_reaches_a_consumer_group_once(
    intake_bus: Intake, probes: Callable[..., Probe]
) -> None:
    worker = intake_bus.worker()
    probe = probes(intake_bus, topics.COMPLAINTS, ["complaint.received"])
    created = intake_bus.post(complaint(promised_callback_by="2026-11-24T17:00:00Z")).json()

    drain(worker.relay, probe.pump)

    assert unsent(intake_bus) == 0
    assert len(probe.seen) == 1
    _, data = probe.seen[0]
    assert data["complaint_id"] == created["id"]
    assert data["customer_id"] == created["customer_id"]
    assert data["promised_callback_by"] == "2026-11-24T17:00:00Z"
    (msg,) = list(read_topic(intake_bus.settings, intake_bus.settings.topic(topics.COMPLAINTS)))
    assert msg.key == created["customer_id"].encode()
    assert msg.header("ce_type") == "closeloop.complaint.received.v1"
    assert msg.header("ce_correlationid") == created["id"]
    assert msg.header("content-type") == "application/json"


def test_broker_down_at_post_time_loses_nothing(
    intake_factory: IntakeFactory,
    broker: TansuBroker,
    kafka: dict[str, Any],
    probes: Callable[..., Probe],
) -> None:
    proxy = TcpProxy(broker.port)
    try:
        # intake reaches the broker only through the proxy; the probe connects directly
        intake = intake_factory(**(kafka | {"kafka_bootstrap": f"127.0.0.1:{proxy.port}"}))
        worker = intake.worker()
        proxy.cut()

        r = intake.post(complaint())
        assert r.status_code == 201
        assert worker.relay.run_once() == 0  # broker unreachable: nothing published ...
        with intake.container.engine.connect() as conn:
            row = conn.execute(select(OUTBOX)).one()
        assert row.sent_at is None  # ... and nothing marked sent
        assert row.attempts == 1
        assert row.last_error

        proxy.restore()
        probe = probes(intake_factory(**kafka), topics.COMPLAINTS, ["complaint.received"])
        drain(worker.relay, probe.pump)

        assert [d["complaint_id"] for _, d in probe.seen] == [r.json()["id"]]
        assert unsent(intake) == 0
    finally:
        proxy.close()


def test_a_duplicate_delivery_changes_nothing(
    intake_bus: Intake, probes: Callable[..., Probe]
) -> None:
    worker = intake_bus.worker()
    probe = probes(intake_bus, topics.COMPLAINTS, ["complaint.received"])
    intake_bus.post(complaint())
    drain(worker.relay, probe.pump)
    # The relay crashed after the broker acknowledged but before marking the row sent:
    with intake_bus.container.engine.begin() as conn:
        conn.execute(update(OUTBOX).values(sent_at=None))
    drain(worker.relay, probe.pump)

    messages = list(read_topic(intake_bus.settings, intake_bus.settings.topic(topics.COMPLAINTS)))
    assert len(messages) == 2  # published twice ...
    assert len(probe.seen) == 1  # ... handled once


def test_poison_messages_go_to_dead_letters_and_the_next_message_is_handled(
    intake_bus: Intake,
) -> None:
    worker = intake_bus.worker()
    created = intake_bus.post(complaint()).json()
    drain(worker.relay, *worker.consumers)
    topic = intake_bus.settings.topic(topics.ASSIGNMENTS)
    producer = Producer(intake_bus.settings, "poisoner")
    key = created["customer_id"].encode()
    try:
        producer.send(KafkaMessage(topic=topic, key=key, value=b"not an event", headers=[]))
        bad = Envelope.new(
            source="/t", data=_assigned(created), time=intake_bus.clock.now(), key=key.decode()
        )
        producer.send(
            KafkaMessage(topic=topic, key=key, value=b'{"complaint_id": 42}', headers=bad.headers())
        )
    finally:
        producer.close()
    publish(intake_bus, topics.ASSIGNMENTS, _assigned(created), key=created["customer_id"])

    drain(worker.relay, *worker.consumers)

    got = intake_bus.http.get(f"/v1/complaints/{created['id']}", headers=intake_bus.headers())
    assert got.json()["status"] == "assigned"
    letters = list_dead_letters(intake_bus.settings)
    assert len(letters) == 2
    assert {d.consumer_group for d in letters} == {"intake-status"}
    assert "malformed event" in letters[0].error
    assert "invalid event body" in letters[1].error
    assert letters[1].original_topic == topic


def test_a_failing_handler_dead_letters_after_bounded_attempts_and_replay_delivers(
    intake_bus: Intake, probes: Callable[..., Probe]
) -> None:
    worker = intake_bus.worker()
    probe = probes(intake_bus, topics.COMPLAINTS, ["complaint.received"])
    probe.fail = True
    first = intake_bus.post(complaint()).json()
    drain(worker.relay, probe.pump)
    assert probe.seen == []
    (letter,) = list_dead_letters(intake_bus.settings)
    assert "downstream unavailable" in letter.error
    assert letter.message.header("dlq_attempts") == "3"

    # the partition is not blocked: a later complaint is handled once the cause is fixed
    probe.fail = False
    second = intake_bus.post(complaint()).json()
    drain(worker.relay, probe.pump)
    assert [d["complaint_id"] for _, d in probe.seen] == [second["id"]]

    producer = Producer(intake_bus.settings, "replayer")
    try:
        assert replay(producer, [letter]) == 1
    finally:
        producer.close()
    drain(worker.relay, probe.pump)
    assert [d["complaint_id"] for _, d in probe.seen] == [second["id"], first["id"]]


def test_status_read_model_follows_assignment_and_loop_events(intake_bus: Intake) -> None:
    worker = intake_bus.worker()
    created = intake_bus.post(complaint()).json()
    cid, customer = uuid.UUID(created["id"]), uuid.UUID(created["customer_id"])
    loop_id, promise_id = uuid.uuid4(), uuid.uuid4()
    now = intake_bus.clock.now()
    due = now + timedelta(hours=4)
    common = {"loop_id": loop_id, "complaint_id": cid, "customer_id": customer, "at": now}
    # Assignments and loops travel on different topics, so intake may read them in either
    # order; the timeline is ordered by each event's own time.
    publish(intake_bus, topics.ASSIGNMENTS, _assigned(created), key=str(customer))
    for event in (
        LoopOpenedV1(**common, journey=_journey(), stage="servicing", owner=_owner()),
        PromiseMadeV1(**common, promise_id=promise_id, text="Call back with a fix", due_at=due),
        PromiseOverdueV1(**common, promise_id=promise_id, due_at=due, late_by_seconds=60),
    ):
        intake_bus.clock.advance(timedelta(minutes=1))
        publish(intake_bus, topics.LOOPS, event, key=str(customer))
    drain(worker.relay, *worker.consumers)

    got = intake_bus.http.get(f"/v1/complaints/{cid}", headers=intake_bus.headers()).json()
    assert got["status"] == "promised"
    assert got["journey"] == {"key": "borrow", "name": "Borrow", "stage": "servicing"}
    assert got["owner"] == {"key": "owner-ana", "name": "Ana"}
    assert got["loop_id"] == str(loop_id)
    assert got["promises"] == [
        {
            "id": str(promise_id),
            "text": "Call back with a fix",
            "due_at": _iso(due),
            "status": "overdue",
        }
    ]
    assert [t["type"] for t in got["timeline"]] == [
        "received",
        "complaint.assigned",
        "loop.opened",
        "promise.made",
        "promise.overdue",
    ]
    metrics = intake_bus.http.get("/metrics").text
    assert (
        'closeloop_events_handled_total{group="intake-status",type="closeloop.loop.opened.v1"}'
        in metrics
    )
    assert 'closeloop_consumer_lag{group="intake-status"' in metrics
    assert 'closeloop_outbox_published_total{service="intake"}' in metrics

    publish(
        intake_bus,
        topics.LOOPS,
        LoopResolvedV1(**common, resolution_code="fixed", root_cause="card-limit"),
        key=str(customer),
    )
    drain(worker.relay, *worker.consumers)
    confirm = intake_bus.http.post(
        f"/v1/complaints/{cid}/confirmation",
        json={"resolved": False, "csat": 2, "comment": "Still broken"},
        headers=intake_bus.headers(),
    )
    assert confirm.status_code == 201
    drain(worker.relay, *worker.consumers)
    confirmed = [
        json.loads(m.value or b"{}")
        for m in read_topic(intake_bus.settings, intake_bus.settings.topic(topics.COMPLAINTS))
        if m.header("ce_type") == "closeloop.complaint.confirmed.v1"
    ]
    assert confirmed == [
        {
            "complaint_id": str(cid),
            "client_id": "cc-1",
            "customer_id": str(customer),
            "resolved": False,
            "csat": 2,
            "comment": "Still broken",
            "confirmed_at": _iso(intake_bus.clock.now()),
        }
    ]


def test_reconciliation_re_emits_complaints_left_unassigned(
    intake_bus: Intake, probes: Callable[..., Probe]
) -> None:
    worker = intake_bus.worker()
    probe = probes(intake_bus, topics.COMPLAINTS, ["complaint.received"])
    stuck = intake_bus.post(complaint()).json()
    assigned = intake_bus.post(complaint(customer={"ref": "other"})).json()
    drain(worker.relay, probe.pump)
    publish(intake_bus, topics.ASSIGNMENTS, _assigned(assigned), key=assigned["customer_id"])
    drain(worker.relay, *worker.consumers)

    service = intake_bus.container.service
    assert service.reconcile() == 0  # within the grace period
    intake_bus.clock.advance(timedelta(seconds=intake_bus.settings.reconcile_after_s + 1))
    assert service.reconcile() == 1
    assert service.reconcile() == 0  # not again until another grace period has passed
    drain(worker.relay, probe.pump)

    received = [d for _, d in probe.seen if d["complaint_id"] == stuck["id"]]
    assert [d["redelivery"] for d in received] == [0, 1]
    assert len({eid for eid, d in probe.seen if d["complaint_id"] == stuck["id"]}) == 2


def test_relay_recovers_from_a_broker_restart(
    intake_factory: IntakeFactory, topic_prefix: str, probes: Callable[..., Probe]
) -> None:
    own = TansuBroker().start()
    try:
        overrides = {"kafka_bootstrap": own.bootstrap, "topic_prefix": topic_prefix}
        intake = intake_factory(**overrides)
        names = [intake.settings.topic(t) for t in topics.ALL]
        ensure_topics(intake.settings, names)
        worker = intake.worker()
        intake.post(complaint())
        drain(worker.relay)

        own.stop()  # the broker forgets everything; the idempotent producer is now broken
        own.start()
        ensure_topics(intake.settings, names)
        after = intake.post(complaint()).json()
        probe = probes(intake, topics.COMPLAINTS, ["complaint.received"])
        drain(worker.relay, probe.pump)

        assert [d["complaint_id"] for _, d in probe.seen] == [after["id"]]
    finally:
        own.stop()


def _journey() -> Ref:
    return Ref(key="borrow", name="Borrow")


def _owner() -> Ref:
    return Ref(key="owner-ana", name="Ana")


def _assigned(created: dict[str, Any]) -> ComplaintAssignedV1:
    return ComplaintAssignedV1(
        complaint_id=uuid.UUID(created["id"]),
        customer_id=uuid.UUID(created["customer_id"]),
        journey=_journey(),
        stage="servicing",
        owner=_owner(),
        rule="cards-declined",
        catalog_version=1,
        assigned_at=created["received_at"],
    )


def _iso(dt: Any) -> str:
    return dt.isoformat().replace("+00:00", "Z")

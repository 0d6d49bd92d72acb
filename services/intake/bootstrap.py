"""Composition root: builds engine, clock, service, worker from settings. Nothing at import."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from services.intake.config import IntakeSettings
from services.intake.handlers import ReadModelHandlers
from services.intake.models import INBOX, OUTBOX
from services.intake.service import IntakeService, IntakeUnitOfWork
from services.intake.webhooks import WebhookDispatcher
from shared.bus.consumer import EventConsumer
from shared.bus.dlq import DeadLetterPublisher
from shared.bus.kafka import Producer, ping
from shared.bus.relay import OutboxRelay
from shared.clock import Clock, SystemClock
from shared.db.engine import make_engine, make_session_factory
from shared.events import topics
from shared.ratelimit import ClientRateLimiter
from shared.worker import ConsumerPump, Periodic, RelayPump, Worker

CONSUMER_GROUP = "intake-status"


@dataclass
class IntakeContainer:
    settings: IntakeSettings
    clock: Clock
    engine: Engine
    session_factory: sessionmaker[Session]
    service: IntakeService
    limiter: ClientRateLimiter
    dispatcher: WebhookDispatcher
    http: httpx.Client
    _broker_checked: tuple[float, bool] = field(default=(0.0, False))

    def uow(self) -> IntakeUnitOfWork:
        return IntakeUnitOfWork(
            self.session_factory, self.clock, f"/closeloop/{self.settings.service_name}"
        )

    def database_ready(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def broker_ready(self) -> bool:
        # Cached for a few seconds: probes must not open a broker connection per request.
        checked_at, ok = self._broker_checked
        if time.monotonic() - checked_at > 5:
            ok = ping(self.settings)
            self._broker_checked = (time.monotonic(), ok)
        return ok

    def worker(self) -> Worker:
        """Relay, read-model consumer, webhook dispatcher, reconciliation and clean-up."""
        s = self.settings
        producer = Producer(s, f"{s.service_name}-relay")
        dlq_producer = Producer(s, f"{s.service_name}-dlq")
        relay = OutboxRelay(self.engine, OUTBOX, producer, s, self.clock, s.service_name)
        consumer = EventConsumer(
            settings=s,
            group_id=CONSUMER_GROUP,
            topics=[s.topic(topics.ASSIGNMENTS), s.topic(topics.LOOPS)],
            handlers=ReadModelHandlers(self.clock).handlers(),
            uow_factory=self.uow,
            inbox_table=INBOX,
            dead_letters=DeadLetterPublisher(dlq_producer, s, self.clock),
            clock=self.clock,
        )
        return Worker(
            relay=RelayPump(relay, self.engine, OUTBOX),
            consumers=[ConsumerPump(consumer)],
            periodic=[
                Periodic("webhooks", 0.0, self.dispatcher.run_once),
                Periodic("reconcile", s.reconcile_interval_s, self.service.reconcile),
                Periodic("purge-idempotency", 3600.0, self.service.purge_expired),
            ],
            idle_sleep_s=s.worker_idle_sleep_s,
            on_close=[producer.close, dlq_producer.close],
        )

    def close(self) -> None:
        self.http.close()
        self.engine.dispose()


def bootstrap(
    settings: IntakeSettings | None = None, clock: Clock | None = None
) -> IntakeContainer:
    settings = settings or IntakeSettings()
    clock = clock or SystemClock()
    engine = make_engine(settings.database_url, settings.db_pool_size)
    session_factory = make_session_factory(engine)
    source = f"/closeloop/{settings.service_name}"

    def uow() -> IntakeUnitOfWork:
        return IntakeUnitOfWork(session_factory, clock, source)

    service = IntakeService(uow, clock, settings)
    http = httpx.Client(follow_redirects=False)
    return IntakeContainer(
        settings=settings,
        clock=clock,
        engine=engine,
        session_factory=session_factory,
        service=service,
        limiter=ClientRateLimiter(settings.rate_limit, settings.rate_limit_storage),
        dispatcher=WebhookDispatcher(uow, clock, settings, http),
        http=http,
    )

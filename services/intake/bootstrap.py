"""Composition root: builds engine, clock, service, worker from settings. Nothing at import."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.intake.config import IntakeSettings
from services.intake.handlers import ReadModelHandlers
from services.intake.models import INBOX, OUTBOX
from services.intake.service import IntakeService, IntakeUnitOfWork
from services.intake.webhooks import WebhookDispatcher
from shared.clock import Clock, SystemClock
from shared.container import ServiceContainer
from shared.db.engine import make_engine, make_session_factory
from shared.events import topics
from shared.ratelimit import ClientRateLimiter
from shared.worker import Periodic, Worker

CONSUMER_GROUP = "intake-status"


@dataclass
class IntakeContainer(ServiceContainer):
    settings: IntakeSettings
    service: IntakeService
    limiter: ClientRateLimiter
    dispatcher: WebhookDispatcher
    http: httpx.Client

    def uow(self) -> IntakeUnitOfWork:
        return IntakeUnitOfWork(
            self.session_factory, self.clock, f"/closeloop/{self.settings.service_name}"
        )

    def worker(self) -> Worker:
        """Relay, read-model consumer, webhook dispatcher, reconciliation and clean-up."""
        s = self.settings
        return self.build_worker(
            uow_factory=self.uow,
            outbox=OUTBOX,
            inbox=INBOX,
            group=CONSUMER_GROUP,
            topics=[s.topic(topics.ASSIGNMENTS), s.topic(topics.LOOPS)],
            handlers=ReadModelHandlers(self.clock).handlers(),
            periodic=[
                Periodic("webhooks", 0.0, self.dispatcher.run_once),
                Periodic("reconcile", s.reconcile_interval_s, self.service.reconcile),
                Periodic("purge-idempotency", 3600.0, self.service.purge_expired),
            ],
        )

    def close(self) -> None:
        self.http.close()
        super().close()


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

    http = httpx.Client(follow_redirects=False)
    return IntakeContainer(
        settings=settings,
        clock=clock,
        engine=engine,
        session_factory=session_factory,
        service=IntakeService(uow, clock, settings),
        limiter=ClientRateLimiter(settings.rate_limit, settings.rate_limit_storage),
        dispatcher=WebhookDispatcher(uow, clock, settings, http),
        http=http,
    )

"""Composition root of followup. Nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.followup.alerts import AlertService
from services.followup.config import FollowupSettings
from services.followup.handlers import handlers
from services.followup.models import INBOX, OUTBOX
from services.followup.notify import AlertDispatcher
from services.followup.scheduler import Scheduler
from services.followup.service import FollowupService, FollowupUnitOfWork
from shared.clock import Clock, SystemClock
from shared.container import ServiceContainer
from shared.db.engine import make_engine, make_session_factory
from shared.events import topics
from shared.worker import Periodic, Worker

CONSUMER_GROUP = "followup"


@dataclass
class FollowupContainer(ServiceContainer):
    settings: FollowupSettings
    service: FollowupService
    alerts: AlertService
    dispatcher: AlertDispatcher
    http: httpx.Client

    def uow(self) -> FollowupUnitOfWork:
        return FollowupUnitOfWork(
            self.session_factory, self.clock, f"/closeloop/{self.settings.service_name}"
        )

    def scheduler(self) -> Scheduler:
        return Scheduler(
            self.uow,
            self.clock,
            self.service,
            batch_size=self.settings.scheduler_batch_size,
            service_name=self.settings.service_name,
        )

    def worker(self) -> Worker:
        """Relay and the consumer of assignments (loops) and complaints (confirmations)."""
        s = self.settings
        return self.build_worker(
            uow_factory=self.uow,
            outbox=OUTBOX,
            inbox=INBOX,
            group=CONSUMER_GROUP,
            topics=[s.topic(topics.ASSIGNMENTS), s.topic(topics.COMPLAINTS)],
            handlers=handlers(self.service),
            periodic=[
                Periodic("scheduler", s.scheduler_interval_s, self.scheduler().run_once),
                Periodic("alerts", 1.0, self.dispatcher.run_once),
            ],
        )

    def close(self) -> None:
        self.http.close()
        super().close()


def bootstrap(
    settings: FollowupSettings | None = None, clock: Clock | None = None
) -> FollowupContainer:
    settings = settings or FollowupSettings()
    clock = clock or SystemClock()
    engine = make_engine(settings.database_url, settings.db_pool_size)
    session_factory = make_session_factory(engine)
    source = f"/closeloop/{settings.service_name}"

    def uow() -> FollowupUnitOfWork:
        return FollowupUnitOfWork(session_factory, clock, source)

    http = httpx.Client(follow_redirects=False)
    return FollowupContainer(
        settings=settings,
        clock=clock,
        engine=engine,
        session_factory=session_factory,
        service=FollowupService(uow, clock, settings),
        alerts=AlertService(uow, clock),
        dispatcher=AlertDispatcher.from_settings(uow, clock, http, settings),
        http=http,
    )

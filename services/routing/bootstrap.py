"""Composition root of routing. Nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass

from services.routing.config import RoutingSettings
from services.routing.handlers import handlers
from services.routing.models import INBOX, OUTBOX
from services.routing.service import RoutingService, RoutingUnitOfWork
from shared.clock import Clock, SystemClock
from shared.container import ServiceContainer
from shared.db.engine import make_engine, make_session_factory
from shared.events import topics
from shared.worker import Worker

CONSUMER_GROUP = "routing"


@dataclass
class RoutingContainer(ServiceContainer):
    settings: RoutingSettings
    service: RoutingService

    def uow(self) -> RoutingUnitOfWork:
        return RoutingUnitOfWork(
            self.session_factory, self.clock, f"/closeloop/{self.settings.service_name}"
        )

    def worker(self) -> Worker:
        """Relay and the consumer of complaints (assign) and loops (workload)."""
        s = self.settings
        return self.build_worker(
            uow_factory=self.uow,
            outbox=OUTBOX,
            inbox=INBOX,
            group=CONSUMER_GROUP,
            topics=[s.topic(topics.COMPLAINTS), s.topic(topics.LOOPS)],
            handlers=handlers(self.service),
            periodic=[],
        )


def bootstrap(
    settings: RoutingSettings | None = None, clock: Clock | None = None
) -> RoutingContainer:
    settings = settings or RoutingSettings()
    clock = clock or SystemClock()
    engine = make_engine(settings.database_url, settings.db_pool_size)
    session_factory = make_session_factory(engine)
    source = f"/closeloop/{settings.service_name}"

    def uow() -> RoutingUnitOfWork:
        return RoutingUnitOfWork(session_factory, clock, source)

    return RoutingContainer(
        settings=settings,
        clock=clock,
        engine=engine,
        session_factory=session_factory,
        service=RoutingService(uow, clock, settings),
    )

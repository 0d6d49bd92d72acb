"""Event handlers of routing: complaints in, workload from loops."""

from __future__ import annotations

from typing import Any

from services.routing.service import RoutingService, RoutingUnitOfWork
from shared.db.uow import UnitOfWork
from shared.events.envelope import Envelope
from shared.events.models import EventModel

LOOP_EVENTS = ("loop.opened", "loop.reopened", "loop.resolved", "loop.closed")


def handlers(service: RoutingService) -> dict[str, Any]:
    def received(uow: UnitOfWork, envelope: Envelope, event: EventModel) -> None:
        assert isinstance(uow, RoutingUnitOfWork)
        service.on_received(uow, envelope, event)

    def loop(uow: UnitOfWork, envelope: Envelope, event: EventModel) -> None:
        assert isinstance(uow, RoutingUnitOfWork)
        service.on_loop_event(uow, envelope, event)

    return {"complaint.received": received, **dict.fromkeys(LOOP_EVENTS, loop)}

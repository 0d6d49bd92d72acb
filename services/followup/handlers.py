"""Event handlers of followup: assignments open, join and move loops; confirmations close them;
received complaints are copied for the console."""

from __future__ import annotations

from typing import Any

from services.followup.service import FollowupService, FollowupUnitOfWork
from shared.db.uow import UnitOfWork
from shared.events.envelope import Envelope
from shared.events.models import EventModel


def handlers(service: FollowupService) -> dict[str, Any]:
    def assigned(uow: UnitOfWork, envelope: Envelope, event: EventModel) -> None:
        assert isinstance(uow, FollowupUnitOfWork)
        service.on_assigned(uow, envelope, event)

    def reassigned(uow: UnitOfWork, envelope: Envelope, event: EventModel) -> None:
        assert isinstance(uow, FollowupUnitOfWork)
        service.on_reassigned(uow, envelope, event)

    def confirmed(uow: UnitOfWork, envelope: Envelope, event: EventModel) -> None:
        assert isinstance(uow, FollowupUnitOfWork)
        service.on_confirmed(uow, envelope, event)

    def received(uow: UnitOfWork, envelope: Envelope, event: EventModel) -> None:
        assert isinstance(uow, FollowupUnitOfWork)
        service.on_received(uow, envelope, event)

    return {
        "complaint.received": received,
        "complaint.assigned": assigned,
        "complaint.reassigned": reassigned,
        "complaint.confirmed": confirmed,
    }

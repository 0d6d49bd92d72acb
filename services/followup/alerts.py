"""Alerts as people read them: a manager's list, newest first, and acknowledging one."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select

from services.followup.models import Alert, Delivery
from services.followup.schemas import AlertOut, AlertPage, DeliveryOut
from services.followup.service import FollowupUnitOfWork
from shared.auth import Principal
from shared.clock import Clock
from shared.errors import NotFound, Unprocessable


def _visible(q: Select[Any], p: Principal) -> Select[Any]:
    """The same object-level rule as loops: owners their own, managers their journeys."""
    if p.is_admin:
        return q
    if p.role == "manager":
        return q.where(Alert.journey_key.in_(p.journeys))
    return q.where(Alert.owner_key == p.subject)


class AlertService:
    def __init__(self, uow_factory: Callable[[], FollowupUnitOfWork], clock: Clock) -> None:
        self._uow = uow_factory
        self._clock = clock

    def page(
        self,
        principal: Principal,
        *,
        acked: bool | None = None,
        journey: str | None = None,
        loop_id: uuid.UUID | None = None,
        kind: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> AlertPage:
        q = _visible(select(Alert), principal)
        if acked is not None:
            q = q.where(Alert.acked_at.is_not(None) if acked else Alert.acked_at.is_(None))
        if journey is not None:
            q = q.where(Alert.journey_key == journey)
        if loop_id is not None:
            q = q.where(Alert.loop_id == loop_id)
        if kind is not None:
            q = q.where(Alert.kind == kind)
        after = _parse_cursor(cursor)
        if after is not None:
            at, last = after
            q = q.where(or_(Alert.fired_at < at, and_(Alert.fired_at == at, Alert.id < last)))
        q = q.order_by(Alert.fired_at.desc(), Alert.id.desc()).limit(limit + 1)
        with self._uow() as uow:
            rows: list[Alert] = list(uow.session.scalars(q))
            more = len(rows) > limit
            rows = rows[:limit]
            deliveries = _deliveries(uow, [a.id for a in rows])
            items = [_out(a, deliveries.get(a.id)) for a in rows]
        return AlertPage(items=items, next_cursor=_cursor(rows[-1]) if more else None)

    def ack(self, principal: Principal, alert_id: uuid.UUID) -> AlertOut:
        """Acknowledge an alert; acknowledging it again keeps the first acknowledgement."""
        with self._uow() as uow:
            alert: Alert | None = uow.session.scalar(
                _visible(select(Alert), principal).where(Alert.id == alert_id).with_for_update()
            )
            if alert is None:
                raise NotFound(f"no alert {alert_id}")
            if alert.acked_at is None:
                alert.acked_at = self._clock.now()
                alert.acked_by = principal.subject
            out = _out(alert, _deliveries(uow, [alert.id]).get(alert.id))
            uow.commit()
            return out


def _deliveries(uow: FollowupUnitOfWork, ids: list[uuid.UUID]) -> dict[uuid.UUID, Delivery]:
    if not ids:
        return {}
    return {
        d.alert_id: d
        for d in uow.session.scalars(select(Delivery).where(Delivery.alert_id.in_(ids)))
    }


def _out(a: Alert, d: Delivery | None) -> AlertOut:
    return AlertOut(
        id=a.id,
        loop_id=a.loop_id,
        complaint_id=a.complaint_id,
        journey=a.journey_key,
        owner=a.owner_key,
        target=a.target,
        promise_id=a.promise_id,
        kind=a.kind,
        level=a.level,
        offset_minutes=a.offset_minutes,
        audience=a.audience,
        channel=a.channel,
        due_at=a.due_at,
        fired_at=a.fired_at,
        late_by_seconds=a.late_by_seconds,
        delivery=None
        if d is None
        else DeliveryOut(
            channel=d.channel_key,
            status=d.status,
            attempts=d.attempts,
            last_error=d.last_error,
            sent_at=d.sent_at,
        ),
        acked_at=a.acked_at,
        acked_by=a.acked_by,
    )


def _cursor(a: Alert) -> str:
    return base64.urlsafe_b64encode(f"{a.fired_at.isoformat()}|{a.id}".encode()).decode()


def _parse_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        at, _, alert_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive cursor time")
        return parsed, uuid.UUID(alert_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Unprocessable(
            "cursor is not valid", errors=[{"field": "cursor", "message": "not a cursor"}]
        ) from exc

"""Intake queries. Repositories may flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from services.intake.models import (
    Complaint,
    ComplaintPromise,
    Confirmation,
    Customer,
    IdempotencyKey,
    Subscription,
    TimelineEntry,
    WebhookAttempt,
    WebhookDelivery,
)


class IntakeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # customers -------------------------------------------------------------------------------
    def customers_by_ref(self, client_id: str, refs: Sequence[str]) -> dict[str, Customer]:
        rows = self.session.scalars(
            select(Customer).where(Customer.client_id == client_id, Customer.ref.in_(refs))
        )
        return {c.ref: c for c in rows}

    def customer_by_ref(self, client_id: str, ref: str) -> Customer | None:
        return self.session.scalars(
            select(Customer).where(Customer.client_id == client_id, Customer.ref == ref)
        ).one_or_none()

    def recent_counts(
        self, customer_ids: Sequence[uuid.UUID], since: datetime
    ) -> dict[uuid.UUID, int]:
        """Complaints per customer received at or after `since`."""
        rows = self.session.execute(
            select(Complaint.customer_id, func.count())
            .where(Complaint.customer_id.in_(customer_ids), Complaint.received_at >= since)
            .group_by(Complaint.customer_id)
        )
        return {cid: int(n) for cid, n in rows.all()}

    # complaints ------------------------------------------------------------------------------
    def existing_external_refs(self, client_id: str, refs: Sequence[str]) -> dict[str, uuid.UUID]:
        if not refs:
            return {}
        rows = self.session.execute(
            select(Complaint.external_ref, Complaint.id).where(
                Complaint.client_id == client_id, Complaint.external_ref.in_(refs)
            )
        )
        return {ref: cid for ref, cid in rows.all() if ref is not None}

    def get(self, complaint_id: uuid.UUID) -> Complaint | None:
        return self.session.get(Complaint, complaint_id)

    def get_many(self, ids: Sequence[uuid.UUID]) -> list[Complaint]:
        return list(self.session.scalars(select(Complaint).where(Complaint.id.in_(ids))))

    def page(
        self,
        client_id: str | None,
        *,
        external_ref: str | None = None,
        customer_id: uuid.UUID | None = None,
        before: uuid.UUID | None = None,
        limit: int = 50,
    ) -> list[Complaint]:
        """Newest first; UUIDv7 ids sort by creation, so the last id is the cursor."""
        q = select(Complaint)
        if client_id is not None:
            q = q.where(Complaint.client_id == client_id)
        if external_ref is not None:
            q = q.where(Complaint.external_ref == external_ref)
        if customer_id is not None:
            q = q.where(Complaint.customer_id == customer_id)
        if before is not None:
            q = q.where(Complaint.id < before)
        return list(self.session.scalars(q.order_by(Complaint.id.desc()).limit(limit)))

    def customers_by_id(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Customer]:
        rows = self.session.scalars(select(Customer).where(Customer.id.in_(set(ids))))
        return {c.id: c for c in rows}

    def promises_for(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[ComplaintPromise]]:
        out: dict[uuid.UUID, list[ComplaintPromise]] = {i: [] for i in ids}
        rows = self.session.scalars(
            select(ComplaintPromise)
            .where(ComplaintPromise.complaint_id.in_(ids))
            .order_by(ComplaintPromise.due_at)
        )
        for p in rows:
            out[p.complaint_id].append(p)
        return out

    def timeline(self, complaint_id: uuid.UUID) -> list[TimelineEntry]:
        return list(
            self.session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.complaint_id == complaint_id)
                .order_by(TimelineEntry.at, TimelineEntry.id)
            )
        )

    def promise(self, complaint_id: uuid.UUID, promise_id: uuid.UUID) -> ComplaintPromise | None:
        return self.session.get(ComplaintPromise, (complaint_id, promise_id))

    def unassigned_before(self, cutoff: datetime, limit: int) -> list[Complaint]:
        return list(
            self.session.scalars(
                select(Complaint)
                .where(Complaint.status == "received", Complaint.last_emitted_at < cutoff)
                .order_by(Complaint.last_emitted_at)
                .limit(limit)
            )
        )

    def add_confirmation(self, confirmation: Confirmation) -> None:
        self.session.add(confirmation)

    # idempotency -----------------------------------------------------------------------------
    def idempotency(self, client_id: str, key: str, now: datetime) -> IdempotencyKey | None:
        row = self.session.get(IdempotencyKey, (client_id, key))
        return row if row is not None and row.expires_at > now else None

    def purge_idempotency(self, now: datetime) -> int:
        result = self.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    # subscriptions and webhook deliveries ----------------------------------------------------
    def subscriptions(self, client_id: str) -> list[Subscription]:
        return list(
            self.session.scalars(
                select(Subscription)
                .where(Subscription.client_id == client_id, Subscription.active.is_(True))
                .order_by(Subscription.created_at)
            )
        )

    def subscription(self, client_id: str, sub_id: uuid.UUID) -> Subscription | None:
        sub = self.session.get(Subscription, sub_id)
        return sub if sub is not None and sub.client_id == client_id and sub.active else None

    def deliveries(self, sub_id: uuid.UUID, limit: int = 20) -> list[WebhookDelivery]:
        return list(
            self.session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.subscription_id == sub_id)
                .order_by(WebhookDelivery.created_at.desc())
                .limit(limit)
            )
        )

    def due_deliveries(self, now: datetime, limit: int) -> list[WebhookDelivery]:
        return list(
            self.session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
            )
        )

    def claim_delivery(
        self, delivery_id: uuid.UUID, seen_due_at: datetime, lease_until: datetime
    ) -> bool:
        """Push the due time forward unless another replica already did (optimistic claim)."""
        result = self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at == seen_due_at,
            )
            .values(next_attempt_at=lease_until)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def add_attempt(self, attempt: WebhookAttempt) -> None:
        self.session.add(attempt)

"""Intake use cases: accept complaints (single and batch), read them, confirmations, webhooks."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from services.intake import domain
from services.intake.config import IntakeSettings
from services.intake.models import (
    OUTBOX,
    Complaint,
    ComplaintPromise,
    Confirmation,
    Customer,
    IdempotencyKey,
    Subscription,
    TimelineEntry,
)
from services.intake.repository import IntakeRepository
from services.intake.schemas import (
    BatchItemResult,
    BatchOut,
    ComplaintIn,
    ComplaintOut,
    ComplaintPage,
    ConfirmationIn,
    ConfirmationOut,
    CustomerOut,
    DeliveryOut,
    JourneyOut,
    OwnerOut,
    PromiseOut,
    RepeatContactOut,
    SubscriptionIn,
    SubscriptionOut,
    TimelineOut,
)
from shared.auth import Principal
from shared.bus.outbox import OutboxWriter
from shared.clock import Clock
from shared.db.uow import UnitOfWork
from shared.errors import (
    PROBLEM_BASE,
    Conflict,
    DomainError,
    IdempotencyConflict,
    InvalidTransition,
    NotFound,
    Unprocessable,
    field_errors,
)
from shared.events import topics
from shared.events.envelope import Envelope
from shared.events.models import (
    ComplaintConfirmedV1,
    ComplaintReceivedV1,
    CustomerRef,
    RepeatContact,
)
from shared.ids import new_id
from shared.logging import correlated

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(minutes=5)


class IntakeUnitOfWork(UnitOfWork):
    """A unit of work with the intake repository and outbox bound to its session."""

    def __init__(self, session_factory: Any, clock: Clock, source: str) -> None:
        super().__init__(session_factory)
        self._clock = clock
        self._source = source

    def __enter__(self) -> IntakeUnitOfWork:
        super().__enter__()
        self.repo = IntakeRepository(self.session)
        self.outbox = OutboxWriter(self.session, OUTBOX, self._source, self._clock)
        return self


@dataclass(frozen=True)
class Created:
    """A 201 (or its idempotent replay) ready to send."""

    status: int
    body: dict[str, Any]
    location: str | None
    replayed: bool = False


@dataclass
class _Rejected:
    status: int
    problem: dict[str, Any]


def _problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }


def _location(complaint_id: uuid.UUID) -> str:
    return f"/v1/complaints/{complaint_id}"


class IntakeService:
    def __init__(
        self,
        uow_factory: Callable[[], IntakeUnitOfWork],
        clock: Clock,
        settings: IntakeSettings,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._settings = settings
        self._complaints_topic = settings.topic(topics.COMPLAINTS)

    # --- accepting complaints ----------------------------------------------------------------
    def submit(self, client_id: str, item: ComplaintIn, idempotency_key: str | None) -> Created:
        """Store one complaint and queue its `complaint.received` event, all or nothing."""
        fingerprint = domain.fingerprint(item.model_dump(mode="json")) if idempotency_key else ""
        for attempt in (1, 2):
            try:
                with self._uow() as uow:
                    if idempotency_key:
                        replay = self._replay(uow, client_id, idempotency_key, fingerprint)
                        if replay is not None:
                            return replay
                    (result,) = self._accept(uow, client_id, [item])
                    if isinstance(result, _Rejected):
                        raise _as_error(result)
                    created = Created(201, result, _location(result["id"]))
                    if idempotency_key:
                        self._remember(uow, client_id, idempotency_key, fingerprint, created)
                    uow.commit()
                    with correlated(str(result["id"])):
                        log.info("complaint accepted", extra={"client_id": client_id})
                    return created
            except IntegrityError:
                # A concurrent request with the same key, external ref or new customer won the
                # race; the second pass sees its committed rows and answers accordingly.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def submit_batch(
        self, client_id: str, items: list[Any], idempotency_key: str | None
    ) -> Created:
        """Accept the valid items in one transaction; each invalid item fails alone."""
        if len(items) > self._settings.max_batch_items:
            raise Unprocessable(
                f"a batch holds at most {self._settings.max_batch_items} items, got {len(items)}",
                errors=[{"field": "items", "message": "too many items", "type": "too_long"}],
            )
        fingerprint = domain.fingerprint(items) if idempotency_key else ""
        parsed: list[ComplaintIn | _Rejected] = []
        for index, raw in enumerate(items):
            try:
                parsed.append(ComplaintIn.model_validate(raw))
            except ValidationError as exc:
                errors = [
                    {**e, "field": f"items.{index}.{e['field']}".rstrip(".")}
                    for e in field_errors(exc.errors())
                ]
                parsed.append(
                    _Rejected(
                        422,
                        _problem(
                            422,
                            "validation-error",
                            "Invalid request",
                            "Invalid fields: " + ", ".join(e["field"] for e in errors),
                            errors=errors,
                        ),
                    )
                )
        for attempt in (1, 2):
            try:
                with self._uow() as uow:
                    if idempotency_key:
                        replay = self._replay(uow, client_id, idempotency_key, fingerprint)
                        if replay is not None:
                            return replay
                    positions = [i for i, p in enumerate(parsed) if isinstance(p, ComplaintIn)]
                    valid = [p for p in parsed if isinstance(p, ComplaintIn)]
                    accepted = iter(self._accept(uow, client_id, valid, full=False))
                    results = []
                    for index, p in enumerate(parsed):
                        outcome = p if isinstance(p, _Rejected) else next(accepted)
                        if isinstance(outcome, _Rejected):
                            if "duplicate_of_index" in outcome.problem:  # index among valid ones
                                dup = outcome.problem["duplicate_of_index"]
                                outcome.problem["duplicate_of_index"] = positions[dup]
                            results.append(
                                BatchItemResult(
                                    index=index, status=outcome.status, problem=outcome.problem
                                )
                            )
                        else:
                            cid = outcome["id"]
                            results.append(
                                BatchItemResult(
                                    index=index, status=201, id=cid, location=_location(cid)
                                )
                            )
                    n_ok = sum(1 for r in results if r.status == 201)
                    body = BatchOut(
                        accepted=n_ok, rejected=len(results) - n_ok, results=results
                    ).model_dump(mode="json", exclude_none=True)
                    created = Created(200, body, None)
                    if idempotency_key:
                        self._remember(uow, client_id, idempotency_key, fingerprint, created)
                    uow.commit()
                    log.info(
                        "batch accepted",
                        extra={
                            "client_id": client_id,
                            "accepted": n_ok,
                            "rejected": len(results) - n_ok,
                        },
                    )
                    return created
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _replay(
        self, uow: IntakeUnitOfWork, client_id: str, key: str, fingerprint: str
    ) -> Created | None:
        row = uow.repo.idempotency(client_id, key, self._clock.now())
        if row is None:
            return None
        if row.fingerprint != fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was used with a different request body",
                errors=[{"field": "Idempotency-Key", "message": "reused with another body"}],
            )
        return Created(row.status_code, row.response, row.location, replayed=True)

    def _remember(
        self, uow: IntakeUnitOfWork, client_id: str, key: str, fingerprint: str, created: Created
    ) -> None:
        now = self._clock.now()
        uow.session.add(
            IdempotencyKey(
                client_id=client_id,
                key=key,
                fingerprint=fingerprint,
                status_code=created.status,
                location=created.location,
                response=created.body,
                created_at=now,
                expires_at=now + timedelta(hours=self._settings.idempotency_ttl_hours),
            )
        )

    def _accept(
        self, uow: IntakeUnitOfWork, client_id: str, items: list[ComplaintIn], full: bool = True
    ) -> list[dict[str, Any] | _Rejected]:
        """Insert customers, complaints, timeline entries and outbox rows for valid items."""
        now = self._clock.now()
        results: list[dict[str, Any] | _Rejected | None] = [None] * len(items)
        # Field checks that need the clock.
        for i, item in enumerate(items):
            errors = self._time_errors(item, now)
            if errors:
                results[i] = _Rejected(
                    422,
                    _problem(
                        422,
                        "validation-error",
                        "Invalid request",
                        "Invalid fields: " + ", ".join(e["field"] for e in errors),
                        errors=errors,
                    ),
                )
        # external_ref is unique per client, across earlier requests and within this batch.
        refs = [it.external_ref for it in items if it.external_ref]
        taken = uow.repo.existing_external_refs(client_id, refs)
        seen: dict[str, int] = {}  # external_ref -> index of its first item in this request
        for i, item in enumerate(items):
            ref = item.external_ref
            if results[i] is not None or not ref:
                continue
            if ref in taken:
                results[i] = _Rejected(
                    409,
                    _problem(
                        409,
                        "duplicate-external-ref",
                        "Duplicate external_ref",
                        f"a complaint with external_ref {ref!r} already exists",
                        complaint_id=str(taken[ref]),
                        location=_location(taken[ref]),
                        errors=[{"field": "external_ref", "message": "already used"}],
                    ),
                )
            elif ref in seen:
                results[i] = _Rejected(
                    409,
                    _problem(
                        409,
                        "duplicate-external-ref",
                        "Duplicate external_ref",
                        f"external_ref {ref!r} appears earlier in this batch",
                        duplicate_of_index=seen[ref],
                        errors=[{"field": "external_ref", "message": "repeated in the batch"}],
                    ),
                )
            else:
                seen[ref] = i
        todo = [i for i, r in enumerate(results) if r is None]
        if not todo:
            return [r for r in results if r is not None]

        customers = self._customers(uow, client_id, [items[i] for i in todo], now)
        window_start = now - timedelta(days=self._settings.repeat_window_days)
        counts = uow.repo.recent_counts([c.id for c in customers.values()], window_start)
        envelopes: list[tuple[Envelope, str]] = []
        rows: list[Complaint] = []
        for i in todo:
            item = items[i]
            customer = customers[item.customer.ref]
            earlier = counts.get(customer.id, 0)
            counts[customer.id] = earlier + 1
            repeat = domain.repeat_contact(earlier, self._settings.repeat_threshold)
            complaint = Complaint(
                id=new_id(),
                client_id=client_id,
                customer_id=customer.id,
                external_ref=item.external_ref,
                channel=item.channel,
                summary=item.summary,
                description=item.description,
                product=item.product,
                category=item.category,
                touchpoint=item.touchpoint,
                severity=item.severity,
                language=item.language,
                occurred_at=item.occurred_at,
                received_at=now,
                promised_callback_by=item.promised_callback_by,
                metadata_=item.metadata,
                repeat_count_30d=repeat.count_30d,
                is_repeat=repeat.is_repeat,
                status="received",
                updated_at=now,
                last_emitted_at=now,
                redeliveries=0,
            )
            rows.append(complaint)  # its "received" timeline entry is derived, not stored
            envelope = self._received_envelope(complaint, customer, repeat, now)
            envelopes.append((envelope, self._complaints_topic))
            # A batch answers with ids only: building each full response would be wasted work.
            results[i] = (
                self.to_out(complaint, customer, [], []).model_dump(mode="json")
                if full
                else {"id": complaint.id}
            )
        uow.session.add_all(rows)
        uow.session.flush()
        uow.outbox.add_many(envelopes)
        return [r for r in results if r is not None]

    @staticmethod
    def _time_errors(item: ComplaintIn, now: datetime) -> list[dict[str, Any]]:
        errors = []
        if item.occurred_at and item.occurred_at > now + CLOCK_SKEW:
            errors.append({"field": "occurred_at", "message": "is in the future", "type": "future"})
        if (
            item.promised_callback_by
            and item.occurred_at
            and item.promised_callback_by < item.occurred_at
        ):
            errors.append(
                {
                    "field": "promised_callback_by",
                    "message": "is before occurred_at",
                    "type": "order",
                }
            )
        return errors

    def _customers(
        self, uow: IntakeUnitOfWork, client_id: str, items: list[ComplaintIn], now: datetime
    ) -> dict[str, Customer]:
        """The customer of every item, created or updated with the latest contact details."""
        refs = list(dict.fromkeys(it.customer.ref for it in items))
        known = uow.repo.customers_by_ref(client_id, refs)
        for item in items:
            given = item.customer
            customer = known.get(given.ref)
            if customer is None:
                customer = Customer(
                    id=new_id(),
                    client_id=client_id,
                    ref=given.ref,
                    name=given.name,
                    email=given.email,
                    phone=given.phone,
                    tier=given.tier,
                    created_at=now,
                    updated_at=now,
                )
                uow.session.add(customer)
                known[given.ref] = customer
                continue
            for field in ("name", "email", "phone", "tier"):
                value = getattr(given, field)
                if value is not None and getattr(customer, field) != value:
                    setattr(customer, field, value)
                    customer.updated_at = now
        uow.session.flush()
        return known

    def _received_envelope(
        self,
        c: Complaint,
        customer: Customer,
        repeat: domain.RepeatContact,
        now: datetime,
        redelivery: int = 0,
    ) -> Envelope:
        event = ComplaintReceivedV1(
            complaint_id=c.id,
            client_id=c.client_id,
            customer_id=c.customer_id,
            customer=CustomerRef(ref=customer.ref, name=customer.name, tier=customer.tier),
            channel=c.channel,
            summary=c.summary,
            description=c.description,
            external_ref=c.external_ref,
            product=c.product,
            category=c.category,
            touchpoint=c.touchpoint,
            severity=c.severity,
            language=c.language,
            occurred_at=c.occurred_at,
            received_at=c.received_at,
            promised_callback_by=c.promised_callback_by,
            repeat_contact=RepeatContact(count_30d=repeat.count_30d, is_repeat=repeat.is_repeat),
            metadata=c.metadata_,
            redelivery=redelivery,
        )
        return Envelope.new(
            source=f"/closeloop/{self._settings.service_name}",
            data=event,
            time=now,
            key=str(c.customer_id),
            subject=str(c.id),
            correlationid=str(c.id),
        )

    # --- reconciliation ----------------------------------------------------------------------
    def reconcile(self) -> int:
        """Re-emit `complaint.received` for complaints still unassigned after the grace period.

        The local broker forgets everything on restart; this sweep makes sure a complaint that
        was published but never assigned is published again rather than silently dropped.
        """
        now = self._clock.now()
        cutoff = now - timedelta(seconds=self._settings.reconcile_after_s)
        with self._uow() as uow:
            stale = uow.repo.unassigned_before(cutoff, self._settings.reconcile_batch)
            if not stale:
                return 0
            customers = uow.repo.customers_by_id([c.customer_id for c in stale])
            envelopes = []
            for c in stale:
                c.redeliveries += 1
                c.last_emitted_at = now
                repeat = domain.RepeatContact(c.repeat_count_30d, c.is_repeat)
                env = self._received_envelope(
                    c, customers[c.customer_id], repeat, now, c.redeliveries
                )
                envelopes.append((env, self._complaints_topic))
            uow.outbox.add_many(envelopes)
            uow.commit()
        log.warning("re-emitted %d unassigned complaints", len(stale))
        return len(stale)

    def purge_expired(self) -> int:
        with self._uow() as uow:
            n = uow.repo.purge_idempotency(self._clock.now())
            uow.commit()
        return n

    # --- reading -----------------------------------------------------------------------------
    def get(self, principal: Principal, complaint_id: uuid.UUID) -> ComplaintOut:
        with self._uow() as uow:
            c = self._visible(uow, principal, complaint_id)
            customer = uow.repo.customers_by_id([c.customer_id])[c.customer_id]
            promises = uow.repo.promises_for([c.id])[c.id]
            return self.to_out(c, customer, promises, uow.repo.timeline(c.id))

    def page(
        self,
        principal: Principal,
        *,
        external_ref: str | None = None,
        customer_ref: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> ComplaintPage:
        client = None if principal.is_admin else principal.subject
        with self._uow() as uow:
            customer_id = None
            if customer_ref is not None:
                customer = uow.repo.customer_by_ref(principal.subject, customer_ref)
                if customer is None:
                    raise NotFound(f"no customer {customer_ref!r}")
                customer_id = customer.id
            before = _parse_cursor(cursor)
            rows = uow.repo.page(
                client,
                external_ref=external_ref,
                customer_id=customer_id,
                before=before,
                limit=limit + 1,
            )
            more = len(rows) > limit
            rows = rows[:limit]
            customers = uow.repo.customers_by_id([c.customer_id for c in rows])
            promises = uow.repo.promises_for([c.id for c in rows])
            items = [self.to_out(c, customers[c.customer_id], promises[c.id], None) for c in rows]
            return ComplaintPage(items=items, next_cursor=str(rows[-1].id) if more else None)

    def _visible(self, uow: IntakeUnitOfWork, principal: Principal, cid: uuid.UUID) -> Complaint:
        c = uow.repo.get(cid)
        # Another client's complaint is indistinguishable from a missing one.
        if c is None or (not principal.is_admin and c.client_id != principal.subject):
            raise NotFound(f"no complaint {cid}")
        return c

    @staticmethod
    def to_out(
        c: Complaint,
        customer: Customer,
        promises: list[ComplaintPromise],
        timeline: list[TimelineEntry] | None,
    ) -> ComplaintOut:
        return ComplaintOut(
            id=c.id,
            status=c.status,
            customer_id=c.customer_id,
            customer=CustomerOut(ref=customer.ref, name=customer.name, tier=customer.tier),
            channel=c.channel,
            summary=c.summary,
            description=c.description,
            external_ref=c.external_ref,
            product=c.product,
            category=c.category,
            touchpoint=c.touchpoint,
            severity=c.severity,
            language=c.language,
            occurred_at=c.occurred_at,
            received_at=c.received_at,
            promised_callback_by=c.promised_callback_by,
            metadata=c.metadata_,
            repeat_contact=RepeatContactOut(count_30d=c.repeat_count_30d, is_repeat=c.is_repeat),
            journey=JourneyOut(key=c.journey_key, name=c.journey_name, stage=c.stage)
            if c.journey_key
            else None,
            owner=OwnerOut(key=c.owner_key, name=c.owner_name) if c.owner_key else None,
            loop_id=c.loop_id,
            promises=[
                PromiseOut(id=p.promise_id, text=p.text, due_at=p.due_at, status=p.status)
                for p in promises
            ],
            timeline=None
            if timeline is None
            else [
                TimelineOut(
                    at=c.received_at,
                    type="received",
                    detail={"channel": c.channel, "repeat_contact": c.repeat_count_30d},
                ),
                *(TimelineOut(at=t.at, type=t.type, detail=t.detail) for t in timeline),
            ],
            updated_at=c.updated_at,
        )

    # --- confirmation ------------------------------------------------------------------------
    def confirm(
        self, principal: Principal, complaint_id: uuid.UUID, body: ConfirmationIn
    ) -> ConfirmationOut:
        """Record the customer's verdict; emit `complaint.confirmed` (followup closes/reopens)."""
        now = self._clock.now()
        with self._uow() as uow:
            c = self._visible(uow, principal, complaint_id)
            if c.status not in domain.CONFIRMABLE:
                raise InvalidTransition(
                    f"a complaint can be confirmed once resolved; it is {c.status}",
                    current_status=c.status,
                )
            confirmation = Confirmation(
                id=new_id(),
                complaint_id=c.id,
                resolved=body.resolved,
                csat=body.csat,
                comment=body.comment,
                confirmed_at=now,
            )
            uow.repo.add_confirmation(confirmation)
            uow.session.add(
                TimelineEntry(
                    id=new_id(),
                    complaint_id=c.id,
                    at=now,
                    type="confirmation",
                    detail={"resolved": body.resolved, "csat": body.csat},
                    event_id=None,
                )
            )
            uow.outbox.add(
                ComplaintConfirmedV1(
                    complaint_id=c.id,
                    client_id=c.client_id,
                    customer_id=c.customer_id,
                    resolved=body.resolved,
                    csat=body.csat,
                    comment=body.comment,
                    confirmed_at=now,
                ),
                topic=self._complaints_topic,
                key=c.customer_id,
                subject=str(c.id),
                correlationid=c.id,
            )
            uow.commit()
        return ConfirmationOut.model_validate(confirmation, from_attributes=True)

    # --- subscriptions -----------------------------------------------------------------------
    def subscribe(
        self, principal: Principal, body: SubscriptionIn, screen: Callable[[str], None]
    ) -> SubscriptionOut:
        """Register a webhook; `screen` refuses URLs that resolve to private addresses."""
        url = str(body.url)
        screen(url)
        generated = body.secret is None
        secret = body.secret or secrets.token_urlsafe(32)
        sub = Subscription(
            id=new_id(),
            client_id=principal.subject,
            url=url,
            secret=secret,
            events={"types": list(body.events)},
            description=body.description,
            active=True,
            created_at=self._clock.now(),
        )
        with self._uow() as uow:
            uow.session.add(sub)
            uow.commit()
        out = _sub_out(sub)
        out.secret = secret if generated else None
        return out

    def subscriptions(self, principal: Principal) -> list[SubscriptionOut]:
        with self._uow() as uow:
            return [_sub_out(s) for s in uow.repo.subscriptions(principal.subject)]

    def subscription(self, principal: Principal, sub_id: uuid.UUID) -> SubscriptionOut:
        with self._uow() as uow:
            sub = uow.repo.subscription(principal.subject, sub_id)
            if sub is None:
                raise NotFound(f"no subscription {sub_id}")
            out = _sub_out(sub)
            out.recent_deliveries = [
                DeliveryOut.model_validate(d, from_attributes=True)
                for d in uow.repo.deliveries(sub.id)
            ]
            return out

    def unsubscribe(self, principal: Principal, sub_id: uuid.UUID) -> None:
        with self._uow() as uow:
            sub = uow.repo.subscription(principal.subject, sub_id)
            if sub is None:
                raise NotFound(f"no subscription {sub_id}")
            sub.active = False
            uow.commit()


_STD = {"type", "title", "status", "detail"}


def _as_error(rejected: _Rejected) -> DomainError:
    """The problem of a rejected single item as the error the API renders."""
    p = rejected.problem
    err: DomainError = (Unprocessable if rejected.status == 422 else Conflict)(
        p["detail"], **{k: v for k, v in p.items() if k not in _STD}
    )
    err.type_slug = p["type"].removeprefix(PROBLEM_BASE)
    err.title = p["title"]
    return err


def _sub_out(sub: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        url=sub.url,
        events=list(sub.events.get("types", [])),
        description=sub.description,
        active=sub.active,
        created_at=sub.created_at,
    )


def _parse_cursor(cursor: str | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        return uuid.UUID(cursor)
    except ValueError as exc:
        raise Unprocessable(
            "cursor is not valid", errors=[{"field": "cursor", "message": "not a cursor"}]
        ) from exc

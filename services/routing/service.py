"""Routing use cases: the catalog, assigning complaints, reassignments, availability, dry-runs."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from services.routing import catalog as cat
from services.routing.config import RoutingSettings
from services.routing.domain import (
    Availability,
    Facts,
    Load,
    Router,
    Selection,
    select_owner,
    weight,
)
from services.routing.models import (
    OUTBOX,
    Assignment,
    CatalogVersion,
    OwnerAvailability,
    RoundRobinCursor,
)
from services.routing.repository import RoutingRepository
from services.routing.schemas import AssignmentOut, Explanation
from shared.auth import Principal
from shared.bus.outbox import OutboxWriter
from shared.clock import Clock
from shared.db.uow import UnitOfWork
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from shared.events import topics
from shared.events.envelope import Envelope
from shared.events.models import (
    ComplaintAssignedV1,
    ComplaintReassignedV1,
    ComplaintReceivedV1,
    EventModel,
    LoopEvent,
    Ref,
)
from shared.logging import correlated

log = logging.getLogger(__name__)

# Loop events that change whether an assignment counts towards its owner's open work.
_OPENS = {"loop.opened", "loop.reopened"}
_CLOSES = {"loop.resolved", "loop.closed"}


class CatalogInvalid(Unprocessable):
    type_slug, title = "invalid-catalog", "The catalog document is invalid"


class RoutingUnitOfWork(UnitOfWork):
    def __init__(self, session_factory: Any, clock: Clock, source: str) -> None:
        super().__init__(session_factory)
        self._clock = clock
        self._source = source

    def __enter__(self) -> RoutingUnitOfWork:
        super().__enter__()
        self.repo = RoutingRepository(self.session)
        self.outbox = OutboxWriter(self.session, OUTBOX, self._source, self._clock)
        return self


class RoutingService:
    def __init__(
        self, uow_factory: Callable[[], RoutingUnitOfWork], clock: Clock, settings: RoutingSettings
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._settings = settings
        self._topic = settings.topic(topics.ASSIGNMENTS)
        self._cache: tuple[int, Router] | None = None
        self._lock = threading.Lock()

    # --- the catalog -------------------------------------------------------------------------
    def router(self, uow: RoutingUnitOfWork) -> tuple[int, Router]:
        """The current catalog compiled once per version (a cheap max() per call)."""
        version = uow.repo.latest_version()
        if version is None:
            raise Conflict("no catalog has been applied yet; PUT /v1/catalog first")
        with self._lock:
            if self._cache is None or self._cache[0] != version:
                row = uow.repo.catalog_version(version)
                assert row is not None
                self._cache = (version, Router(cat.parse(row.document)))
            return self._cache

    def current(self) -> tuple[int, cat.Catalog]:
        with self._uow() as uow:
            version, router = self.router(uow)
            return version, router.catalog

    def has_catalog(self) -> bool:
        with self._uow() as uow:
            return uow.repo.latest_version() is not None

    def apply(
        self,
        document: Any,
        by: str,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> int:
        """Validate a whole catalog document and make it the new version, in one transaction.

        With `expected_version`, the apply is refused (409) if someone else applied meanwhile.
        """
        try:
            catalog = cat.parse(document)
        except cat.CatalogError as exc:
            raise CatalogInvalid(
                f"{len(exc.errors)} problem(s) in the catalog", errors=exc.errors
            ) from exc
        with self._uow() as uow:
            current = uow.repo.latest_version() or 0
            if expected_version is not None and current != expected_version:
                raise Conflict(
                    f"the catalog changed (version {current}, you edited {expected_version}); "
                    "reload and try again"
                )
            version = current + 1
            uow.session.add(
                CatalogVersion(
                    version=version,
                    document=catalog.model_dump(mode="json"),
                    applied_at=self._clock.now(),
                    applied_by=by,
                    comment=comment,
                )
            )
            try:
                uow.commit()
            except IntegrityError as exc:  # another apply took this version number
                raise Conflict("the catalog changed meanwhile; reload and try again") from exc
        log.info("catalog applied", extra={"version": version, "by": by})
        return version

    def edit(self, by: str, change: Callable[[dict[str, Any]], None]) -> int:
        """Apply a change to the current document as a new version (the CRUD endpoints)."""
        version, catalog = self.current()
        document = catalog.model_dump(mode="json")
        change(document)
        return self.apply(document, by, expected_version=version)

    # --- assigning ---------------------------------------------------------------------------
    def on_received(self, uow: RoutingUnitOfWork, envelope: Envelope, event: EventModel) -> None:
        """complaint.received -> an assignment; a re-emitted complaint re-announces it."""
        assert isinstance(event, ComplaintReceivedV1)
        existing = uow.repo.assignment(event.complaint_id)
        if existing is not None:
            # Reconciliation re-emitted it: the first assignment may have been lost downstream.
            _, router = self.router(uow)
            self._announce(uow, router, existing, envelope.id, event.promised_callback_by)
            return
        now = self._clock.now()
        version, router = self.router(uow)
        facts = Facts.of(event.model_dump(mode="json"))
        route = router.decide(facts)
        journey = router.journeys[route.journey]
        selection = self._select(uow, router, journey, facts, event.customer_id, now)
        owner = router.owners[selection.owner]
        assignment = Assignment(
            complaint_id=event.complaint_id,
            customer_id=event.customer_id,
            client_id=event.client_id,
            journey_key=journey.key,
            journey_name=journey.name,
            stage=route.stage,
            owner_key=owner.key,
            owner_name=owner.name,
            severity=route.severity,
            rule_key=route.rule,
            catalog_version=version,
            explanation=_explanation(route.rule, selection, version),
            facts=_facts_doc(event),
            assigned_at=now,
            open=True,
            weight=weight(route.severity),
            loop_id=None,
            history={"reassignments": []},
        )
        uow.session.add(assignment)
        if journey.strategy == "round_robin":
            self._advance_cursor(uow, journey.key, owner.key)
        uow.session.flush()
        self._announce(uow, router, assignment, envelope.id, event.promised_callback_by)
        if selection.over_capacity:
            log.warning(
                "every owner of the journey is at capacity",
                extra={"journey": journey.key, "manager": journey.manager, "owner": owner.key},
            )
        log.info(
            "complaint assigned",
            extra={"journey": journey.key, "owner": owner.key, "rule": route.rule},
        )

    def _select(
        self,
        uow: RoutingUnitOfWork,
        router: Router,
        journey: cat.Journey,
        facts: Facts,
        customer_id: uuid.UUID,
        now: datetime,
    ) -> Selection:
        keys = list(router.owners)
        cursor = uow.repo.cursor(journey.key) if journey.strategy == "round_robin" else None
        return select_owner(
            journey,
            router,
            facts,
            now,
            uow.repo.loads(keys),
            uow.repo.availability(keys),
            continuity_owner=uow.repo.continuity_owner(customer_id, journey.key),
            last_round_robin=cursor.last_owner if cursor else None,
        )

    def _advance_cursor(self, uow: RoutingUnitOfWork, journey: str, owner: str) -> None:
        cursor = uow.repo.cursor(journey)
        if cursor is None:
            uow.session.add(RoundRobinCursor(journey_key=journey, last_owner=owner))
        else:
            cursor.last_owner = owner

    def _announce(
        self,
        uow: RoutingUnitOfWork,
        router: Router,
        a: Assignment,
        causation: str | None,
        promised_callback_by: datetime | None = None,
    ) -> None:
        journey = router.journeys.get(a.journey_key)
        uow.outbox.add(
            ComplaintAssignedV1(
                complaint_id=a.complaint_id,
                customer_id=a.customer_id,
                journey=Ref(key=a.journey_key, name=a.journey_name),
                stage=a.stage,
                owner=Ref(key=a.owner_key, name=a.owner_name),
                severity=a.severity,
                rule=a.rule_key,
                catalog_version=a.catalog_version,
                assigned_at=a.assigned_at,
                journey_manager=journey.manager if journey else None,
                over_capacity=bool(a.explanation.get("over_capacity")),
                promised_callback_by=promised_callback_by,
            ),
            topic=self._topic,
            key=a.customer_id,
            subject=str(a.complaint_id),
            correlationid=a.complaint_id,
            causationid=causation,
        )

    def on_loop_event(self, uow: RoutingUnitOfWork, envelope: Envelope, event: EventModel) -> None:
        """Loop events keep the workload read model current: open loops per owner."""
        assert isinstance(event, LoopEvent)
        ids = list(dict.fromkeys([event.complaint_id, *event.complaint_ids]))
        for a in uow.repo.by_complaints(ids):
            a.loop_id = event.loop_id
            if event.name in _OPENS:
                a.open = True
            elif event.name in _CLOSES:
                a.open = False

    # --- reading -----------------------------------------------------------------------------
    def assignment(self, principal: Principal, complaint_id: uuid.UUID) -> AssignmentOut:
        with self._uow() as uow:
            a = uow.repo.assignment(complaint_id)
            if a is None or not self._may_see(principal, a):
                raise NotFound(f"no assignment for complaint {complaint_id}")
            return to_out(a)

    @staticmethod
    def _may_see(p: Principal, a: Assignment) -> bool:
        return (
            p.is_admin
            or (p.role == "manager" and a.journey_key in p.journeys)
            or (p.role == "owner" and a.owner_key == p.subject)
        )

    # --- changing owners ---------------------------------------------------------------------
    def reassign(
        self, principal: Principal, complaint_id: uuid.UUID, owner: str, reason: str
    ) -> AssignmentOut:
        """Move a complaint to another member of its journey team (complaint.reassigned)."""
        with self._uow() as uow, correlated(str(complaint_id)):
            a = uow.repo.assignment(complaint_id)
            if a is None or not self._may_see(principal, a):
                raise NotFound(f"no assignment for complaint {complaint_id}")
            _, router = self.router(uow)
            journey = router.journeys.get(a.journey_key)
            if journey is None or owner not in journey.team:
                raise Unprocessable(
                    f"{owner!r} is not in the {a.journey_key!r} team",
                    errors=[{"field": "owner", "message": "not a member of the journey team"}],
                )
            if owner == a.owner_key:
                raise Conflict(f"{owner!r} already owns this complaint")
            self._move(uow, router, a, owner, reason, principal.subject)
            out = to_out(a)
            uow.commit()
            return out

    def _move(
        self,
        uow: RoutingUnitOfWork,
        router: Router,
        a: Assignment,
        owner: str,
        reason: str,
        by: str,
    ) -> None:
        previous = Ref(key=a.owner_key, name=a.owner_name)
        now = self._clock.now()
        a.owner_key, a.owner_name = owner, router.owners[owner].name
        a.history = {
            "reassignments": [
                *a.history.get("reassignments", []),
                {
                    "at": now.isoformat(),
                    "from": previous.key,
                    "to": owner,
                    "reason": reason,
                    "by": by,
                },
            ]
        }
        uow.outbox.add(
            ComplaintReassignedV1(
                complaint_id=a.complaint_id,
                customer_id=a.customer_id,
                journey=Ref(key=a.journey_key, name=a.journey_name),
                stage=a.stage,
                owner=Ref(key=owner, name=a.owner_name),
                previous_owner=previous,
                reason=reason,
                by=by,
                reassigned_at=now,
            ),
            topic=self._topic,
            key=a.customer_id,
            subject=str(a.complaint_id),
            correlationid=a.complaint_id,
        )

    def handover(self, principal: Principal, owner: str, to: str | None) -> list[AssignmentOut]:
        """Move every open loop of an owner who is away for long to others in each team."""
        now = self._clock.now()
        with self._uow() as uow:
            _, router = self.router(uow)
            if owner not in router.owners:
                raise NotFound(f"no owner {owner!r}")
            self._may_manage_owner(principal, router, owner)
            avail = uow.repo.availability([owner]).get(owner, Availability())
            threshold = timedelta(hours=self._settings.handover_after_hours)
            if not avail.away_at(now) or (
                avail.away_until is not None and avail.away_until - now < threshold
            ):
                hours = self._settings.handover_after_hours
                raise Conflict(
                    f"{owner!r} is not away for at least {hours:g} h; "
                    "reassign single complaints instead"
                )
            moved = []
            keys = list(router.owners)
            for a in uow.repo.open_assignments_of(owner):
                journey = router.journeys.get(a.journey_key)
                if journey is None:
                    continue
                if to is not None:
                    if to not in journey.team:
                        raise Unprocessable(
                            f"{to!r} is not in the {journey.key!r} team",
                            errors=[
                                {"field": "to", "message": "not a member of every team involved"}
                            ],
                        )
                    target = to
                else:
                    facts = Facts.of(a.facts)
                    target = select_owner(
                        journey,
                        router,
                        facts,
                        now,
                        uow.repo.loads(keys),
                        uow.repo.availability(keys),
                    ).owner
                if target == owner:
                    continue
                self._move(uow, router, a, target, f"handover: {owner} away", principal.subject)
                moved.append(to_out(a))
                uow.session.flush()  # the next selection sees this load
            uow.commit()
            return moved

    def set_availability(
        self,
        principal: Principal,
        owner: str,
        away_from: datetime | None,
        away_until: datetime | None,
        delegate: str | None,
    ) -> OwnerAvailability:
        with self._uow() as uow:
            _, router = self.router(uow)
            if owner not in router.owners:
                raise NotFound(f"no owner {owner!r}")
            self._may_manage_owner(principal, router, owner, self_ok=True)
            if delegate is not None and delegate not in router.owners:
                raise Unprocessable(
                    f"unknown delegate {delegate!r}",
                    errors=[{"field": "delegate", "message": "not an owner"}],
                )
            if delegate == owner:
                raise Unprocessable(
                    "an owner cannot delegate to themselves",
                    errors=[{"field": "delegate", "message": "same as the owner"}],
                )
            if away_from and away_until and away_until <= away_from:
                raise Unprocessable(
                    "away_until must be after away_from",
                    errors=[{"field": "away_until", "message": "before away_from"}],
                )
            row = uow.repo.availability_row(owner)
            if row is None:
                row = OwnerAvailability(owner_key=owner)
                uow.session.add(row)
            row.away_from, row.away_until, row.delegate = away_from, away_until, delegate
            row.updated_at, row.updated_by = self._clock.now(), principal.subject
            uow.commit()
            return row

    def availability_of(self, owner: str) -> Availability:
        with self._uow() as uow:
            return uow.repo.availability([owner]).get(owner, Availability())

    @staticmethod
    def _may_manage_owner(p: Principal, router: Router, owner: str, self_ok: bool = False) -> None:
        if p.is_admin or (self_ok and p.role == "owner" and p.subject == owner):
            return
        teams = {j.key for j in router.catalog.journeys if owner in j.team}
        if p.role == "manager" and teams & set(p.journeys):
            return
        raise Forbidden(f"you may not change {owner!r}")

    def stats(self, principal: Principal) -> dict[str, Any]:
        """Assignments per journey and the share that fell through to triage (a manager: theirs)."""
        with self._uow() as uow:
            counts = uow.repo.journey_counts()
        if not principal.is_admin:
            counts = {k: n for k, n in counts.items() if k in principal.journeys}
        total = sum(counts.values())
        triage = counts.get(cat.TRIAGE, 0)
        return {
            "total": total,
            "by_journey": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
            "triage": triage,
            "triage_share": round(triage / total, 4) if total else 0.0,
        }

    # --- dry-run -----------------------------------------------------------------------------
    def dry_run(
        self,
        principal: Principal,
        candidate: Any,
        complaints: list[dict[str, Any]] | None,
        last: int | None,
    ) -> dict[str, Any]:
        """Route given (or the last N received) complaints with a candidate catalog; compare."""
        try:
            new = Router(cat.parse(candidate))
        except cat.CatalogError as exc:
            raise CatalogInvalid(
                f"{len(exc.errors)} problem(s) in the candidate catalog", errors=exc.errors
            ) from exc
        now = self._clock.now()
        with self._uow() as uow:
            _, current = self.router(uow)
            items: list[tuple[str, dict[str, Any], Assignment | None]]
            if complaints is None:
                journeys = None if principal.is_admin else list(principal.journeys)
                rows = uow.repo.recent(last or self._settings.dry_run_default_last, journeys)
                items = [(str(a.complaint_id), a.facts, a) for a in rows]
            else:
                items = [
                    (str(c.get("id") or f"given-{i}"), c, None) for i, c in enumerate(complaints)
                ]
            keys = list(set(current.owners) | set(new.owners))
            loads = uow.repo.loads(keys)
            avail = uow.repo.availability(keys)
            results = []
            changed = {"journey": 0, "stage": 0, "owner": 0}
            for cid, data, a in items:
                facts = Facts.of(data)
                before = current.decide(facts) if a is None else None
                cand = new.decide(facts)
                own_loads = loads
                if a is not None and a.open and a.owner_key in loads:
                    # Its own weight must not count against its current owner while replaying it.
                    mine = loads[a.owner_key]
                    own_loads = {
                        **loads,
                        a.owner_key: Load(
                            max(0, mine.open_loops - 1), max(0.0, mine.weighted - a.weight)
                        ),
                    }
                owner = select_owner(
                    new.journeys[cand.journey], new, facts, now, own_loads, avail
                ).owner
                cur = {
                    "journey": a.journey_key if a else before.journey if before else None,
                    "stage": a.stage if a else before.stage if before else None,
                    "owner": a.owner_key if a else None,
                    "rule": a.rule_key if a else before.rule if before else None,
                }
                nxt = {
                    "journey": cand.journey,
                    "stage": cand.stage,
                    "owner": owner,
                    "rule": cand.rule,
                }
                diff = [
                    k
                    for k in ("journey", "stage", "owner")
                    if cur[k] is not None and cur[k] != nxt[k]
                ]
                for k in diff:
                    changed[k] += 1
                results.append(
                    {"complaint_id": cid, "current": cur, "candidate": nxt, "changes": diff}
                )
        by_journey: dict[str, int] = {}
        for r in results:
            key = str(r["candidate"]["journey"])  # type: ignore[index]
            by_journey[key] = by_journey.get(key, 0) + 1
        return {
            "totals": {
                "complaints": len(results),
                "journey_changed": changed["journey"],
                "stage_changed": changed["stage"],
                "owner_changed": changed["owner"],
                "to_triage": by_journey.get(cat.TRIAGE, 0),
                "by_journey": by_journey,
            },
            "results": results,
        }


def _explanation(rule: str | None, selection: Selection, version: int) -> dict[str, Any]:
    return {
        "rule": rule,
        "rule_reason": f"matched rule {rule!r}" if rule else "no rule matched: triage",
        "owner_reason": selection.reason,
        "candidates": [c.as_dict() for c in selection.candidates],
        "over_capacity": selection.over_capacity,
        "catalog_version": version,
    }


def _facts_doc(event: ComplaintReceivedV1) -> dict[str, Any]:
    data = event.model_dump(mode="json")
    keep = (
        "channel",
        "severity",
        "summary",
        "description",
        "product",
        "category",
        "touchpoint",
        "language",
        "customer",
        "repeat_contact",
    )
    return {k: data[k] for k in keep if data.get(k) is not None}


def to_out(a: Assignment) -> AssignmentOut:
    return AssignmentOut(
        complaint_id=a.complaint_id,
        customer_id=a.customer_id,
        journey={"key": a.journey_key, "name": a.journey_name},
        stage=a.stage,
        owner={"key": a.owner_key, "name": a.owner_name},
        severity=a.severity,
        rule=a.rule_key,
        catalog_version=a.catalog_version,
        explanation=Explanation.model_validate(a.explanation),
        assigned_at=a.assigned_at,
        open=a.open,
        loop_id=a.loop_id,
        reassignments=list(a.history.get("reassignments", [])),
    )

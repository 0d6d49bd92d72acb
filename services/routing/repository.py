"""Routing queries. Repositories may flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.routing.domain import Availability, Load
from services.routing.models import Assignment, CatalogVersion, OwnerAvailability, RoundRobinCursor


class RoutingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def latest_version(self) -> int | None:
        return self.session.scalar(select(func.max(CatalogVersion.version)))

    def catalog_version(self, version: int) -> CatalogVersion | None:
        return self.session.get(CatalogVersion, version)

    def versions(self, limit: int = 50) -> list[CatalogVersion]:
        return list(
            self.session.scalars(
                select(CatalogVersion).order_by(CatalogVersion.version.desc()).limit(limit)
            )
        )

    def assignment(self, complaint_id: uuid.UUID) -> Assignment | None:
        return self.session.get(Assignment, complaint_id)

    def loads(self, owners: Sequence[str]) -> dict[str, Load]:
        """Open loops per owner and their severity-weighted sum (the workload read model).

        Complaints joined into one loop count once, with the loop's highest severity weight.
        """
        loop = func.coalesce(Assignment.loop_id, Assignment.complaint_id).label("loop")
        per_loop = (
            select(Assignment.owner_key, loop, func.max(Assignment.weight).label("w"))
            .where(Assignment.owner_key.in_(owners), Assignment.open.is_(True))
            .group_by(Assignment.owner_key, loop)
            .subquery()
        )
        rows = self.session.execute(
            select(per_loop.c.owner_key, func.count(), func.sum(per_loop.c.w)).group_by(
                per_loop.c.owner_key
            )
        )
        return {key: Load(int(n), float(w or 0.0)) for key, n, w in rows.all()}

    def availability(self, owners: Sequence[str] | None = None) -> dict[str, Availability]:
        q = select(OwnerAvailability)
        if owners is not None:
            q = q.where(OwnerAvailability.owner_key.in_(owners))
        return {
            a.owner_key: Availability(a.away_from, a.away_until, a.delegate)
            for a in self.session.scalars(q)
        }

    def availability_row(self, owner: str) -> OwnerAvailability | None:
        return self.session.get(OwnerAvailability, owner)

    def continuity_owner(self, customer_id: uuid.UUID, journey: str) -> str | None:
        """The owner of the customer's most recent open assignment on this journey."""
        return self.session.scalar(
            select(Assignment.owner_key)
            .where(
                Assignment.customer_id == customer_id,
                Assignment.journey_key == journey,
                Assignment.open.is_(True),
            )
            .order_by(Assignment.assigned_at.desc())
            .limit(1)
        )

    def cursor(self, journey: str) -> RoundRobinCursor | None:
        return self.session.get(RoundRobinCursor, journey)

    def open_assignments_of(self, owner: str) -> list[Assignment]:
        return list(
            self.session.scalars(
                select(Assignment)
                .where(Assignment.owner_key == owner, Assignment.open.is_(True))
                .order_by(Assignment.assigned_at)
            )
        )

    def recent(self, limit: int, journeys: Sequence[str] | None = None) -> list[Assignment]:
        q = select(Assignment)
        if journeys is not None:
            q = q.where(Assignment.journey_key.in_(journeys))
        return list(self.session.scalars(q.order_by(Assignment.assigned_at.desc()).limit(limit)))

    def by_complaints(self, ids: Sequence[uuid.UUID]) -> list[Assignment]:
        return list(
            self.session.scalars(select(Assignment).where(Assignment.complaint_id.in_(ids)))
        )

    def journey_counts(self) -> dict[str, int]:
        rows = self.session.execute(
            select(Assignment.journey_key, func.count()).group_by(Assignment.journey_key)
        )
        return {k: int(n) for k, n in rows.all()}

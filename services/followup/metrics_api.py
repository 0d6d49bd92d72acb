"""Followup metrics (`/v1/metrics/...`): how each journey is doing, for owners and managers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime

from services.followup.auth import StaffDep
from services.followup.bootstrap import FollowupContainer
from services.followup.metrics_query import MetricsQuery
from services.followup.metrics_schemas import JourneyMetricsOut, MetricsGroup
from shared.http import problem_responses

router = APIRouter()

_PROBLEMS = problem_responses(
    {
        401: "No valid bearer token",
        403: "Not allowed for this role",
        422: "Invalid fields, or `to` not after `from`, or a period over 366 days",
    }
)


@router.get("/metrics/journeys", response_model=JourneyMetricsOut, responses=_PROBLEMS)
def journey_metrics(
    request: Request,
    principal: StaffDep,
    from_: Annotated[
        AwareDatetime | None,
        Query(alias="from", description="Start of the period (default: 30 days before `to`)."),
    ] = None,
    to: Annotated[
        AwareDatetime | None, Query(description="End of the period, excluded (default: now).")
    ] = None,
    journey: Annotated[str | None, Query(description="Only this journey.")] = None,
    group: Annotated[
        MetricsGroup, Query(description="Break each journey down by stage or by owner.")
    ] = "stage",
) -> JourneyMetricsOut:
    """Per journey and stage (or owner), and per owner: volume, times to acknowledge and resolve,
    promise-kept rate, overdue now, escalations, repeat contacts, CSAT, top root causes.

    An owner sees the figures of their own loops, a manager those of their journeys, an admin all.
    The definitions are in `services/followup/metrics_query.py`.
    """
    container: FollowupContainer = request.app.state.container
    return MetricsQuery(container.uow, container.clock).journeys(
        principal, start=from_, end=to, journey=journey, group=group
    )

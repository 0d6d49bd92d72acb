"""Followup HTTP API (`/v1/...`): the loop queue and what owners do with a loop."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request

from services.followup import console, metrics_api, policies_api
from services.followup.auth import StaffDep
from services.followup.bootstrap import FollowupContainer, bootstrap
from services.followup.config import FollowupSettings
from services.followup.domain import LoopStatus
from services.followup.schemas import (
    AlertOut,
    AlertPage,
    CancelIn,
    LoopOut,
    LoopPage,
    NoteIn,
    NoteOut,
    PromiseIn,
    PromiseOut,
    RenegotiateIn,
    ResolveIn,
    WaitIn,
)
from services.followup.service import FollowupService
from shared.http import create_service_app, problem_responses

router = APIRouter(prefix="/v1")

_PROBLEMS = problem_responses(
    {
        401: "No valid bearer token",
        403: "Not allowed for this role",
        404: "No such loop or promise, or not yours to see",
        409: "Action not allowed in the loop's or promise's current state",
        422: "Invalid fields",
    }
)


def _service(request: Request) -> FollowupService:
    container: FollowupContainer = request.app.state.container
    return container.service


@router.get("/loops", response_model=LoopPage, responses=_PROBLEMS)
def list_loops(
    request: Request,
    principal: StaffDep,
    owner: str | None = None,
    journey: str | None = None,
    status: LoopStatus | None = None,
    overdue: bool = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> LoopPage:
    """Loops by next due time (none last): an owner's own, a manager's journeys, all for admins."""
    return _service(request).page(
        principal,
        owner=owner,
        journey=journey,
        status=status,
        overdue=overdue,
        cursor=cursor,
        limit=limit,
    )


@router.get("/loops/{loop_id}", response_model=LoopOut, responses=_PROBLEMS)
def get_loop(loop_id: uuid.UUID, request: Request, principal: StaffDep) -> LoopOut:
    """One loop with its complaints, promises, timeline and notes."""
    return _service(request).loop(principal, loop_id)


@router.post("/loops/{loop_id}/acknowledge", response_model=LoopOut, responses=_PROBLEMS)
def acknowledge(loop_id: uuid.UUID, request: Request, principal: StaffDep) -> LoopOut:
    """The owner has seen the loop and taken it on (loop.acknowledged)."""
    return _service(request).acknowledge(principal, loop_id)


@router.post(
    "/loops/{loop_id}/promises", status_code=201, response_model=PromiseOut, responses=_PROBLEMS
)
def make_promise(
    loop_id: uuid.UUID, body: PromiseIn, request: Request, principal: StaffDep
) -> PromiseOut:
    """Record a promise made to the customer, due in the future (promise.made)."""
    return _service(request).make_promise(principal, loop_id, body.text, body.due_at)


@router.post("/promises/{promise_id}/keep", response_model=PromiseOut, responses=_PROBLEMS)
def keep_promise(promise_id: uuid.UUID, request: Request, principal: StaffDep) -> PromiseOut:
    """The promise was kept (promise.kept)."""
    return _service(request).keep_promise(principal, promise_id)


@router.post("/promises/{promise_id}/renegotiate", response_model=PromiseOut, responses=_PROBLEMS)
def renegotiate_promise(
    promise_id: uuid.UUID, body: RenegotiateIn, request: Request, principal: StaffDep
) -> PromiseOut:
    """A new due time agreed with the customer (promise.renegotiated)."""
    return _service(request).renegotiate_promise(principal, promise_id, body.due_at, body.reason)


@router.post("/promises/{promise_id}/cancel", response_model=PromiseOut, responses=_PROBLEMS)
def cancel_promise(
    promise_id: uuid.UUID, body: CancelIn, request: Request, principal: StaffDep
) -> PromiseOut:
    """The promise no longer applies (promise.cancelled)."""
    return _service(request).cancel_promise(principal, promise_id, body.reason)


@router.post("/loops/{loop_id}/notes", status_code=201, response_model=NoteOut, responses=_PROBLEMS)
def add_note(loop_id: uuid.UUID, body: NoteIn, request: Request, principal: StaffDep) -> NoteOut:
    """An internal note on the loop."""
    return _service(request).add_note(principal, loop_id, body.text)


@router.post("/loops/{loop_id}/resolve", response_model=LoopOut, responses=_PROBLEMS)
def resolve(loop_id: uuid.UUID, body: ResolveIn, request: Request, principal: StaffDep) -> LoopOut:
    """Resolved with a root cause; the customer's confirmation closes it (loop.resolved)."""
    return _service(request).resolve(
        principal, loop_id, body.resolution_code, body.root_cause, body.summary
    )


@router.post("/loops/{loop_id}/wait", response_model=LoopOut, responses=_PROBLEMS)
def wait_on_customer(
    loop_id: uuid.UUID, body: WaitIn, request: Request, principal: StaffDep
) -> LoopOut:
    """Waiting on the customer (documents, a reply): the SLA clock stops until resumed."""
    return _service(request).wait_on_customer(principal, loop_id, body.reason)


@router.post("/loops/{loop_id}/resume", response_model=LoopOut, responses=_PROBLEMS)
def resume(loop_id: uuid.UUID, request: Request, principal: StaffDep) -> LoopOut:
    """The customer replied: the SLA clock runs again without counting the wait."""
    return _service(request).resume(principal, loop_id)


@router.get("/alerts", response_model=AlertPage, responses=_PROBLEMS)
def list_alerts(
    request: Request,
    principal: StaffDep,
    acked: bool | None = None,
    journey: str | None = None,
    loop_id: uuid.UUID | None = None,
    kind: Literal["reminder", "overdue", "sla_breach"] | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertPage:
    """Alerts newest first: a manager's journeys, an owner's own loops, all for admins."""
    container: FollowupContainer = request.app.state.container
    return container.alerts.page(
        principal,
        acked=acked,
        journey=journey,
        loop_id=loop_id,
        kind=kind,
        cursor=cursor,
        limit=limit,
    )


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut, responses=_PROBLEMS)
def ack_alert(alert_id: uuid.UUID, request: Request, principal: StaffDep) -> AlertOut:
    """Someone has taken the alert on; a second acknowledgement keeps the first."""
    container: FollowupContainer = request.app.state.container
    return container.alerts.ack(principal, alert_id)


router.include_router(policies_api.router)
router.include_router(metrics_api.router)


def create_app(
    settings: FollowupSettings | None = None, container: FollowupContainer | None = None
) -> FastAPI:
    """The followup app; builds its own container from settings unless one is given (tests)."""
    settings = settings or (container.settings if container else FollowupSettings())
    app = create_service_app(
        service="followup",
        title="closeloop followup",
        description="Loops and promises: every complaint followed up until the customer confirms.",
        router=router,
        container=container,
        build=lambda: bootstrap(settings),
    )
    console.install(app)
    return app

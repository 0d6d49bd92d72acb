"""Intake HTTP API (`/v1/...`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from services.intake.auth import ClientDep
from services.intake.bootstrap import IntakeContainer, bootstrap
from services.intake.config import IntakeSettings
from services.intake.schemas import (
    BatchIn,
    BatchOut,
    ComplaintIn,
    ComplaintOut,
    ComplaintPage,
    ConfirmationIn,
    ConfirmationOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPage,
)
from services.intake.service import Created, IntakeService
from shared.http import create_service_app, problem_responses

router = APIRouter(prefix="/v1")

# 1,000 complaints of up to ~24 KB each; single complaints keep the 64 KB app-wide limit.
BATCH_MAX_BODY_BYTES = 32 * 1024 * 1024

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Replays return the first response; another body with the same key is 409.",
    ),
]

_PROBLEMS = problem_responses(
    {
        401: "No valid bearer token",
        403: "The token's role may not do this",
        404: "Not found (or another client's)",
        409: "Conflict",
        413: "Request body too large",
        422: "Invalid fields (listed in `errors`)",
        429: "Rate limited; see Retry-After",
    }
)


def _service(request: Request) -> IntakeService:
    container: IntakeContainer = request.app.state.container
    return container.service


def _created(result: Created) -> JSONResponse:
    headers = {"Location": result.location} if result.location else {}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(result.body, status_code=result.status, headers=headers)


@router.post(
    "/complaints",
    status_code=status.HTTP_201_CREATED,
    response_model=ComplaintOut,
    responses=_PROBLEMS,
    summary="Submit a complaint",
)
def post_complaint(
    body: ComplaintIn,
    request: Request,
    principal: ClientDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """201 means the complaint and its `complaint.received` event are committed together."""
    return _created(_service(request).submit(principal.subject, body, idempotency_key))


@router.post(
    "/complaints:batch",
    response_model=BatchOut,
    responses=_PROBLEMS,
    summary="Submit up to 1,000 complaints",
    max_body_size=BATCH_MAX_BODY_BYTES,
)
def post_batch(
    body: BatchIn, request: Request, principal: ClientDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Valid items are committed in one transaction; each invalid item is reported alone."""
    return _created(_service(request).submit_batch(principal.subject, body.items, idempotency_key))


@router.get("/complaints/{complaint_id}", response_model=ComplaintOut, responses=_PROBLEMS)
def get_complaint(complaint_id: uuid.UUID, request: Request, principal: ClientDep) -> ComplaintOut:
    """The complaint with its live status, journey, owner, promises and timeline."""
    return _service(request).get(principal, complaint_id)


@router.get("/complaints", response_model=ComplaintPage, responses=_PROBLEMS)
def list_complaints(
    request: Request,
    principal: ClientDep,
    external_ref: Annotated[str | None, Query(max_length=200)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ComplaintPage:
    """This client's complaints, newest first; filter by `external_ref`."""
    return _service(request).page(principal, external_ref=external_ref, cursor=cursor, limit=limit)


@router.get("/customers/{ref}/complaints", response_model=ComplaintPage, responses=_PROBLEMS)
def customer_complaints(
    ref: str,
    request: Request,
    principal: ClientDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ComplaintPage:
    """A customer's contact history with this client, newest first."""
    return _service(request).page(principal, customer_ref=ref, cursor=cursor, limit=limit)


@router.post(
    "/complaints/{complaint_id}/confirmation",
    status_code=status.HTTP_201_CREATED,
    response_model=ConfirmationOut,
    responses=_PROBLEMS,
)
def confirm(
    complaint_id: uuid.UUID, body: ConfirmationIn, request: Request, principal: ClientDep
) -> ConfirmationOut:
    """The customer's verdict: resolved closes the loop, not resolved reopens it."""
    return _service(request).confirm(principal, complaint_id, body)


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    response_model_exclude_none=True,
    responses=_PROBLEMS,
)
def subscribe(body: SubscriptionIn, request: Request, principal: ClientDep) -> SubscriptionOut:
    """Receive this client's complaint status changes as HMAC-SHA256 signed webhooks."""
    container: IntakeContainer = request.app.state.container
    return container.service.subscribe(principal, body, container.dispatcher.screen)


@router.get(
    "/subscriptions",
    response_model=SubscriptionPage,
    response_model_exclude_none=True,
    responses=_PROBLEMS,
)
def list_subscriptions(request: Request, principal: ClientDep) -> SubscriptionPage:
    return SubscriptionPage(items=_service(request).subscriptions(principal))


@router.get(
    "/subscriptions/{sub_id}",
    response_model=SubscriptionOut,
    response_model_exclude_none=True,
    responses=_PROBLEMS,
)
def get_subscription(sub_id: uuid.UUID, request: Request, principal: ClientDep) -> SubscriptionOut:
    """A subscription with its recent deliveries and their outcome."""
    return _service(request).subscription(principal, sub_id)


@router.delete("/subscriptions/{sub_id}", status_code=204, responses=_PROBLEMS)
def unsubscribe(sub_id: uuid.UUID, request: Request, principal: ClientDep) -> Response:
    _service(request).unsubscribe(principal, sub_id)
    return Response(status_code=204)


def create_app(
    settings: IntakeSettings | None = None, container: IntakeContainer | None = None
) -> FastAPI:
    """The intake app; builds its own container from settings unless one is given (tests)."""
    settings = settings or (container.settings if container else IntakeSettings())
    return create_service_app(
        service="intake",
        title="closeloop intake",
        description="Accepts complaints from contact-center tools and answers their live status.",
        router=router,
        container=container,
        build=lambda: bootstrap(settings),
        max_body_bytes=settings.max_body_bytes,
    )

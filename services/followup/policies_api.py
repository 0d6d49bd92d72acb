"""Followup configuration API (`/v1/...`): calendars, SLA policies, escalation ladders,
notification channels and the resolution taxonomy.

Each resource is read by staff and written whole by admins: `PUT` creates or replaces it
(idempotent), `DELETE` removes it. Responses carry the resource's `version` and an `ETag`;
`If-Match` on a write is honoured (412 when the resource has changed), and `If-None-Match: *`
makes a `PUT` create-only.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Request, Response

from services.followup.auth import AdminDep, StaffDep
from services.followup.bootstrap import FollowupContainer
from services.followup.policies import PolicyService, Preconditions, etag_of
from services.followup.policy_schemas import (
    JOURNEY_PATTERN,
    KEY_PATTERN,
    CalendarIn,
    CalendarList,
    CalendarOut,
    ChannelIn,
    ChannelList,
    ChannelOut,
    LadderIn,
    LadderList,
    LadderOut,
    SlaPolicyIn,
    SlaPolicyList,
    SlaPolicyOut,
    TaxonomyIn,
    TaxonomyKind,
    TaxonomyList,
    TaxonomyOut,
)
from shared.http import problem_responses

router = APIRouter()

# Configuration changes what every loop owes and who hears about it: admins only.

_PROBLEMS = problem_responses(
    {
        401: "No valid bearer token",
        403: "Not allowed for this role",
        404: "No such configuration item",
        409: "Still in use, or conflicts with another item",
        412: "If-Match / If-None-Match does not hold: the item changed meanwhile",
        422: "Invalid fields (each error names its field)",
    }
)
_WRITES: dict[int | str, dict[str, Any]] = {**_PROBLEMS, 201: {"description": "Created"}}


def _service(request: Request) -> PolicyService:
    container: FollowupContainer = request.app.state.container
    return PolicyService(container.uow, container.clock)


def _preconditions(
    if_match: Annotated[
        str | None, Header(description='Write only if the ETag still matches ("*": exists).')
    ] = None,
    if_none_match: Annotated[
        str | None, Header(description='"*": create only, refuse to replace.')
    ] = None,
) -> Preconditions:
    return Preconditions(if_match=if_match, if_none_match=if_none_match)


PreconditionsDep = Annotated[Preconditions, Depends(_preconditions)]
Item = TypeVar("Item", CalendarOut, SlaPolicyOut, LadderOut, ChannelOut, TaxonomyOut)


def _read(response: Response, out: Item) -> Item:
    response.headers["ETag"] = etag_of(out)
    return out


def _written(request: Request, response: Response, result: tuple[Item, bool]) -> Item:
    out, created = result
    response.headers["ETag"] = etag_of(out)
    if created:
        response.status_code = 201
        response.headers["Location"] = str(request.url.path)
    return out


def _deleted() -> Response:
    return Response(status_code=204)


Key = Annotated[str, Path(pattern=KEY_PATTERN)]
Journey = Annotated[str, Path(pattern=JOURNEY_PATTERN, description='A journey key or "*".')]


# --- calendars -------------------------------------------------------------------------------


@router.get("/calendars", response_model=CalendarList, responses=_PROBLEMS)
def list_calendars(request: Request, principal: StaffDep) -> CalendarList:
    """Every business calendar, by key."""
    return _service(request).calendars()


@router.get("/calendars/{key}", response_model=CalendarOut, responses=_PROBLEMS)
def get_calendar(
    key: str, request: Request, response: Response, principal: StaffDep
) -> CalendarOut:
    """One calendar: time zone, weekly hours, holidays."""
    return _read(response, _service(request).calendar(key))


@router.put("/calendars/{key}", response_model=CalendarOut, responses=_WRITES)
def put_calendar(
    key: Key,
    body: CalendarIn,
    request: Request,
    response: Response,
    principal: AdminDep,
    pre: PreconditionsDep,
) -> CalendarOut:
    """Create (201) or replace a calendar; checked as the scheduler will read it."""
    return _written(request, response, _service(request).put_calendar(key, body, pre))


@router.delete("/calendars/{key}", status_code=204, response_class=Response, responses=_PROBLEMS)
def delete_calendar(
    key: str, request: Request, principal: AdminDep, pre: PreconditionsDep
) -> Response:
    """Remove a calendar; 409 while an SLA policy counts in it."""
    _service(request).delete_calendar(key, pre)
    return _deleted()


# --- SLA policies ----------------------------------------------------------------------------


@router.get("/sla-policies", response_model=SlaPolicyList, responses=_PROBLEMS)
def list_sla_policies(
    request: Request,
    principal: StaffDep,
    journey: str | None = None,
    severity: str | None = None,
) -> SlaPolicyList:
    """SLA policies by journey and severity ("*" rows are the fallbacks)."""
    return _service(request).policies(journey=journey, severity=severity)


@router.get("/sla-policies/{policy_id}", response_model=SlaPolicyOut, responses=_PROBLEMS)
def get_sla_policy(
    policy_id: uuid.UUID, request: Request, response: Response, principal: StaffDep
) -> SlaPolicyOut:
    """One SLA policy."""
    return _read(response, _service(request).policy(policy_id))


@router.put(
    "/sla-policies/{policy_id}",
    response_model=SlaPolicyOut,
    responses=_WRITES,
)
def put_sla_policy(
    policy_id: uuid.UUID,
    body: SlaPolicyIn,
    request: Request,
    response: Response,
    principal: AdminDep,
    pre: PreconditionsDep,
) -> SlaPolicyOut:
    """Create (201) or replace the business minutes allowed for a journey x severity."""
    return _written(request, response, _service(request).put_policy(policy_id, body, pre))


@router.delete(
    "/sla-policies/{policy_id}", status_code=204, response_class=Response, responses=_PROBLEMS
)
def delete_sla_policy(
    policy_id: uuid.UUID, request: Request, principal: AdminDep, pre: PreconditionsDep
) -> Response:
    """Remove an SLA policy; loops it covered fall back to a more general one."""
    _service(request).delete_policy(policy_id, pre)
    return _deleted()


# --- escalation ladders ----------------------------------------------------------------------


@router.get("/escalation-ladders", response_model=LadderList, responses=_PROBLEMS)
def list_escalation_ladders(request: Request, principal: StaffDep) -> LadderList:
    """Every journey's ladder ("*": the default for journeys without one)."""
    return _service(request).ladders()


@router.get("/escalation-ladders/{journey}", response_model=LadderOut, responses=_PROBLEMS)
def get_escalation_ladder(
    journey: str, request: Request, response: Response, principal: StaffDep
) -> LadderOut:
    """One journey's ladder, earliest level first."""
    return _read(response, _service(request).ladder(journey))


@router.put(
    "/escalation-ladders/{journey}",
    response_model=LadderOut,
    responses=_WRITES,
)
def put_escalation_ladder(
    journey: Journey,
    body: LadderIn,
    request: Request,
    response: Response,
    principal: AdminDep,
    pre: PreconditionsDep,
) -> LadderOut:
    """Create (201) or replace a journey's ladder; every level's channel must exist."""
    return _written(request, response, _service(request).put_ladder(journey, body, pre))


@router.delete(
    "/escalation-ladders/{journey}", status_code=204, response_class=Response, responses=_PROBLEMS
)
def delete_escalation_ladder(
    journey: str, request: Request, principal: AdminDep, pre: PreconditionsDep
) -> Response:
    """Remove a journey's ladder; it falls back to the default ("*")."""
    _service(request).delete_ladder(journey, pre)
    return _deleted()


# --- notification channels -------------------------------------------------------------------


@router.get("/notification-channels", response_model=ChannelList, responses=_PROBLEMS)
def list_notification_channels(request: Request, principal: StaffDep) -> ChannelList:
    """Every channel; secrets and passwords are never returned."""
    return _service(request).channels()


@router.get("/notification-channels/{key}", response_model=ChannelOut, responses=_PROBLEMS)
def get_notification_channel(
    key: str, request: Request, response: Response, principal: StaffDep
) -> ChannelOut:
    """One channel; `secret_set` / `password_set` instead of the secret itself."""
    return _read(response, _service(request).channel(key))


@router.put(
    "/notification-channels/{key}",
    response_model=ChannelOut,
    responses=_WRITES,
)
def put_notification_channel(
    key: Key,
    body: ChannelIn,
    request: Request,
    response: Response,
    principal: AdminDep,
    pre: PreconditionsDep,
) -> ChannelOut:
    """Create (201) or replace a webhook, e-mail or chat channel; omitted secrets are kept."""
    return _written(request, response, _service(request).put_channel(key, body, pre))


@router.delete(
    "/notification-channels/{key}", status_code=204, response_class=Response, responses=_PROBLEMS
)
def delete_notification_channel(
    key: str, request: Request, principal: AdminDep, pre: PreconditionsDep
) -> Response:
    """Remove a channel; 409 while a ladder sends on it."""
    _service(request).delete_channel(key, pre)
    return _deleted()


# --- the resolution taxonomy -----------------------------------------------------------------


@router.get("/taxonomy", response_model=TaxonomyList, responses=_PROBLEMS)
def list_taxonomy(
    request: Request, principal: StaffDep, kind: TaxonomyKind | None = None
) -> TaxonomyList:
    """Resolution codes and root causes, by kind and key."""
    return _service(request).taxonomy(kind)


@router.get("/taxonomy/{kind}/{key}", response_model=TaxonomyOut, responses=_PROBLEMS)
def get_taxonomy_entry(
    kind: TaxonomyKind, key: str, request: Request, response: Response, principal: StaffDep
) -> TaxonomyOut:
    """One resolution code or root cause."""
    return _read(response, _service(request).taxonomy_entry(kind, key))


@router.put("/taxonomy/{kind}/{key}", response_model=TaxonomyOut, responses=_WRITES)
def put_taxonomy_entry(
    kind: TaxonomyKind,
    key: Key,
    body: TaxonomyIn,
    request: Request,
    response: Response,
    principal: AdminDep,
    pre: PreconditionsDep,
) -> TaxonomyOut:
    """Create (201) or relabel a resolution code or root cause."""
    return _written(request, response, _service(request).put_taxonomy(kind, key, body, pre))


@router.delete(
    "/taxonomy/{kind}/{key}", status_code=204, response_class=Response, responses=_PROBLEMS
)
def delete_taxonomy_entry(
    kind: TaxonomyKind,
    key: str,
    request: Request,
    principal: AdminDep,
    pre: PreconditionsDep,
) -> Response:
    """Remove a resolution code or root cause; loops already resolved with it keep it."""
    _service(request).delete_taxonomy(kind, key, pre)
    return _deleted()

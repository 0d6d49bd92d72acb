"""Routing HTTP API (`/v1/...`)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from services.routing import catalog as cat
from services.routing.auth import AdminDep, ManagerDep, StaffDep
from services.routing.bootstrap import RoutingContainer, bootstrap
from services.routing.config import RoutingSettings
from services.routing.schemas import (
    AssignmentOut,
    AvailabilityIn,
    AvailabilityOut,
    CatalogApplied,
    DryRunIn,
    HandoverIn,
    HandoverOut,
    ReassignIn,
)
from services.routing.service import RoutingService
from shared.errors import Conflict, NotFound, Unprocessable
from shared.http import create_service_app, problem_responses

router = APIRouter(prefix="/v1")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")

_PROBLEMS = problem_responses(
    {
        401: "No valid bearer token",
        403: "Not allowed for this role or journey",
        404: "Not found",
        409: "Conflict",
        422: "Invalid fields or catalog (each error names its path)",
    }
)


def _service(request: Request) -> RoutingService:
    container: RoutingContainer = request.app.state.container
    return container.service


# --- the whole catalog ---------------------------------------------------------------------


@router.get("/catalog", responses=_PROBLEMS)
def get_catalog(request: Request, principal: StaffDep) -> Response:
    """The current catalog; YAML when asked for with `Accept: application/yaml`."""
    version, catalog = _service(request).current()
    headers = {"Catalog-Version": str(version)}
    if any(t in request.headers.get("accept", "") for t in YAML_TYPES):
        return Response(cat.dump_yaml(catalog), media_type="application/yaml", headers=headers)
    body = {"version": version, "catalog": catalog.model_dump(mode="json")}
    return Response(json.dumps(body), media_type="application/json", headers=headers)


async def _document(request: Request) -> Any:
    raw = await request.body()
    try:
        if any(t in request.headers.get("content-type", "") for t in YAML_TYPES):
            return yaml.safe_load(raw)
        data = json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise Unprocessable(
            f"the body is not valid YAML/JSON: {exc}",
            errors=[{"path": "(document)", "message": "not parseable"}],
        ) from exc
    # Accept the GET shape too, so an exported document can be PUT back as it is.
    return data["catalog"] if isinstance(data, dict) and "catalog" in data else data


@router.put("/catalog", response_model=CatalogApplied, responses=_PROBLEMS)
async def put_catalog(request: Request, principal: AdminDep) -> CatalogApplied:
    """Replace the whole catalog (YAML or JSON); a new version, applied in one transaction."""
    document = await _document(request)
    version = await run_in_threadpool(_service(request).apply, document, principal.subject)
    return CatalogApplied(version=version)


@router.post("/rules/dry-run", responses=_PROBLEMS)
def dry_run(body: DryRunIn, request: Request, principal: ManagerDep) -> dict[str, Any]:
    """Route given or recent complaints with a candidate catalog and report what would change."""
    if (body.catalog is None) == (body.rules is None):
        raise Unprocessable(
            "give either a candidate `catalog` or candidate `rules`",
            errors=[{"field": "catalog", "message": "exactly one of catalog and rules"}],
        )
    candidate = body.catalog
    if candidate is None:
        _, current = _service(request).current()
        candidate = current.model_dump(mode="json") | {"rules": body.rules}
    return _service(request).dry_run(principal, candidate, body.complaints, body.last)


# --- journeys, owners, rules: each change is a new catalog version -------------------------

_KINDS: dict[str, type[BaseModel]] = {
    "journeys": cat.Journey,
    "owners": cat.Owner,
    "rules": cat.Rule,
}


def _validated(model: type[BaseModel], body: dict[str, Any]) -> dict[str, Any]:
    """Validate one catalog item; errors name their fields like any 422."""
    try:
        return model.model_validate(body).model_dump(mode="json")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


def _crud(kind: str, model: type[BaseModel]) -> None:
    def find(document: dict[str, Any], key: str) -> int:
        for i, item in enumerate(document[kind]):
            if item["key"] == key:
                return i
        raise NotFound(f"no {kind[:-1]} {key!r}")

    @router.get(f"/{kind}", name=f"list_{kind}", responses=_PROBLEMS)
    def list_items(request: Request, principal: StaffDep) -> dict[str, Any]:
        version, catalog = _service(request).current()
        return {"version": version, "items": catalog.model_dump(mode="json")[kind]}

    @router.get(f"/{kind}/{{key}}", name=f"get_{kind}", responses=_PROBLEMS)
    def get_item(key: str, request: Request, principal: StaffDep) -> dict[str, Any]:
        _, catalog = _service(request).current()
        document = catalog.model_dump(mode="json")
        return dict(document[kind][find(document, key)])

    @router.post(f"/{kind}", name=f"create_{kind}", status_code=201, responses=_PROBLEMS)
    def create(
        body: Annotated[dict[str, Any], Body()], request: Request, principal: AdminDep
    ) -> dict[str, Any]:
        item = _validated(model, body)

        def change(document: dict[str, Any]) -> None:
            if any(x["key"] == item["key"] for x in document[kind]):
                raise Conflict(f"{kind[:-1]} {item['key']!r} exists")
            document[kind].append(item)

        version = _service(request).edit(principal.subject, change)
        return {"version": version, "item": item}

    @router.put(f"/{kind}/{{key}}", name=f"replace_{kind}", responses=_PROBLEMS)
    def replace(
        key: str, body: Annotated[dict[str, Any], Body()], request: Request, principal: AdminDep
    ) -> dict[str, Any]:
        item = _validated(model, body)
        if item["key"] != key:
            raise Unprocessable(
                "the key in the body differs from the URL", errors=[{"field": "key"}]
            )

        def change(document: dict[str, Any]) -> None:
            document[kind][find(document, key)] = item

        return {"version": _service(request).edit(principal.subject, change), "item": item}

    @router.delete(f"/{kind}/{{key}}", name=f"delete_{kind}", responses=_PROBLEMS)
    def delete(key: str, request: Request, principal: AdminDep) -> dict[str, Any]:
        def change(document: dict[str, Any]) -> None:
            del document[kind][find(document, key)]

        return {"version": _service(request).edit(principal.subject, change)}


for _kind, _model in _KINDS.items():
    _crud(_kind, _model)


# --- availability and handover ----------------------------------------------------------------


def _availability_out(request: Request, owner: str) -> AvailabilityOut:
    service = _service(request)
    _, catalog = service.current()
    if owner not in {o.key for o in catalog.owners}:
        raise NotFound(f"no owner {owner!r}")
    a = service.availability_of(owner)
    container: RoutingContainer = request.app.state.container
    return AvailabilityOut(
        owner=owner,
        away_from=a.away_from,
        away_until=a.away_until,
        delegate=a.delegate,
        away_now=a.away_at(container.clock.now()),
    )


@router.get("/owners/{key}/availability", response_model=AvailabilityOut, responses=_PROBLEMS)
def get_availability(key: str, request: Request, principal: StaffDep) -> AvailabilityOut:
    return _availability_out(request, key)


@router.put("/owners/{key}/availability", response_model=AvailabilityOut, responses=_PROBLEMS)
def put_availability(
    key: str, body: AvailabilityIn, request: Request, principal: StaffDep
) -> AvailabilityOut:
    """Away from/until with a delegate: admins, the owner's journey managers, or the owner."""
    _service(request).set_availability(
        principal, key, body.away_from, body.away_until, body.delegate
    )
    return _availability_out(request, key)


@router.post("/owners/{key}/handover", response_model=HandoverOut, responses=_PROBLEMS)
def handover(key: str, body: HandoverIn, request: Request, principal: StaffDep) -> HandoverOut:
    """Move every open loop of an owner who is away for long (complaint.reassigned each)."""
    moved = _service(request).handover(principal, key, body.to)
    return HandoverOut(moved=moved)


# --- assignments -----------------------------------------------------------------------------


@router.get("/assignments:stats", responses=_PROBLEMS)
def assignment_stats(request: Request, principal: ManagerDep) -> dict[str, Any]:
    """How many complaints each journey received, and the share routed to triage."""
    return _service(request).stats(principal)


@router.get("/assignments/{complaint_id}", response_model=AssignmentOut, responses=_PROBLEMS)
def get_assignment(complaint_id: uuid.UUID, request: Request, principal: StaffDep) -> AssignmentOut:
    """Journey, stage, owner, the rule matched and why this owner (every candidate)."""
    return _service(request).assignment(principal, complaint_id)


@router.post(
    "/assignments/{complaint_id}/reassign", response_model=AssignmentOut, responses=_PROBLEMS
)
def reassign(
    complaint_id: uuid.UUID, body: ReassignIn, request: Request, principal: StaffDep
) -> AssignmentOut:
    """Hand the complaint to another member of its journey team."""
    return _service(request).reassign(principal, complaint_id, body.owner, body.reason)


def create_app(
    settings: RoutingSettings | None = None, container: RoutingContainer | None = None
) -> FastAPI:
    """The routing app; builds its own container from settings unless one is given (tests)."""
    settings = settings or (container.settings if container else RoutingSettings())
    return create_service_app(
        service="routing",
        title="closeloop routing",
        description="Assigns each complaint to the cross-functional owner of its customer journey.",
        router=router,
        container=container,
        build=lambda: bootstrap(settings),
        max_body_bytes=4 * 1024 * 1024,
    )

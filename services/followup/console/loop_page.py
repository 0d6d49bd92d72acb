"""The loop page: one loop's complaints, promises, SLA targets, timeline and notes, and the forms
that work it (acknowledge, promise, keep/renegotiate/cancel, note, resolve, wait/resume).

Every action goes through FollowupService, so the API's object-level checks apply as they are:
another owner's loop is a 404 here too. A 409 or 422 re-renders the page with the message.

Who owns the loop is routing's business: the page asks routing (as the viewer) why this owner,
and its owner can hand the complaint over within the team or set themselves away with a delegate;
a journey manager can reassign it. Those forms call routing's API (routing_client.py) and come
back here with a `?done=` message, or the page again with routing's message. When routing cannot
be reached the rest of the page keeps working.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from services.followup.console.render import duration, templates, viewer_zone
from services.followup.console.routing_client import RoutingFailed, routing_for, routing_url
from services.followup.console.session import ConsoleUser, FormUser, container
from services.followup.domain import Calendar, add_business_time, business_time_between
from services.followup.models import ComplaintCopy, TaxonomyEntry
from services.followup.policy_lookup import PolicyLookup
from services.followup.schemas import LoopOut, PromiseOut, SlaTargetOut
from shared.auth import Principal
from shared.errors import DomainError, Forbidden, NotFound, Unprocessable

router = APIRouter(prefix="/console", include_in_schema=False)

OPEN_PROMISES = ("pending", "overdue", "renegotiated")
QUICK_CHOICES = (
    ("2bh", "In 2 business hours"),
    ("tomorrow10", "Tomorrow 10:00"),
    ("1h", "In 1 hour"),
)
INPUT_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and shows

ShortText = Annotated[str, Form(max_length=2000)]
LongText = Annotated[str, Form(max_length=10_000)]
OwnerKey = Annotated[str, Form(max_length=100)]
MANAGER_ROLES = ("manager", "admin")

# What `?done=` may say after a routing action (fixed texts: the URL carries only the code).
DONE = {
    "handed-over": "Handed over in routing. The loop moves to its new owner as soon as routing's "
    "event reaches followup.",
    "away": "Routing now knows you are away; new complaints go to your delegate or your team.",
    "back": "Routing knows you are back and assigns you new complaints again.",
    "reassigned": "Reassigned in routing. The loop follows its new owner as soon as routing's "
    "event reaches followup.",
}


def _loop_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no loop {value}") from None


def _promise_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no promise {value}") from None


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlaRow:
    target: SlaTargetOut
    left: timedelta | None  # business time (or wall time without a policy) until due
    business: bool
    overdue: bool

    @property
    def left_text(self) -> str:
        """ "5 h 30 min business time" (business days are not 24 h, so hours), or wall time."""
        if self.left is None:
            return ""
        if not self.business:
            return duration(self.left)
        minutes = int(abs(self.left).total_seconds()) // 60
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h {minutes} min business time" if hours else f"{minutes} min business time"


@dataclass(frozen=True)
class PromiseRow:
    promise: PromiseOut
    open: bool
    overdue: bool
    due_input: str  # the due time as a datetime-local value in the viewer's zone


def _calendar(request: Request, loop: LoopOut) -> Calendar | None:
    with container(request).uow() as uow:
        found = PolicyLookup(uow.session).sla_for(loop.journey["key"], loop.severity)
    return None if found is None else found[1]


def _left(calendar: Calendar | None, now: datetime, due: datetime) -> timedelta:
    if calendar is None:
        return due - now
    return business_time_between(calendar, now, due)


def _as_input(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime(INPUT_FORMAT)


@dataclass
class RoutingView:
    """What routing says about the loop's complaint, as far as the viewer may know it."""

    assignment: dict[str, Any] | None = None
    team: list[dict[str, str]] = field(default_factory=list)  # teammates: key, name
    availability: dict[str, Any] | None = None
    error: RoutingFailed | None = None


def _team(catalog: dict[str, Any], journey: str, leave_out: set[str]) -> list[dict[str, str]]:
    """The journey's team from routing's catalog document, without `leave_out`."""
    doc = catalog.get("catalog")
    if not isinstance(doc, dict):
        return []
    names = {
        str(o.get("key")): str(o.get("name") or o.get("key"))
        for o in doc.get("owners") or []
        if isinstance(o, dict)
    }
    for j in doc.get("journeys") or []:
        if isinstance(j, dict) and j.get("key") == journey:
            return [
                {"key": str(k), "name": names.get(str(k), str(k))}
                for k in j.get("team") or []
                if str(k) not in leave_out
            ]
    return []


def _instant(value: object) -> object:
    """An ISO instant from routing's JSON as a datetime (shown in the viewer's zone)."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def _instants(doc: dict[str, Any] | None, *keys: str) -> None:
    if doc is not None:
        for key in keys:
            if doc.get(key) is not None:
                doc[key] = _instant(doc[key])


def routing_view(request: Request, user: Principal, loop: LoopOut) -> RoutingView:
    """Ask routing (as the viewer) about the loop's complaint; a failure becomes the message."""
    view = RoutingView()
    client = routing_for(request)
    try:
        view.assignment = client.assignment(loop.complaint_id)
    except RoutingFailed as exc:
        view.error = exc
        if exc.unreachable:
            return view  # no point asking again
    is_owner = user.subject == loop.owner["key"]
    if not (is_owner or user.role in MANAGER_ROLES):
        return view
    journey = loop.journey["key"]
    current = loop.owner["key"]
    if view.assignment is not None:
        journey = str(view.assignment.get("journey", {}).get("key") or journey)
        current = str(view.assignment.get("owner", {}).get("key") or current)
    try:
        view.team = _team(client.catalog(), journey, {current, user.subject})
        if is_owner:
            view.availability = client.availability(user.subject)
    except RoutingFailed as exc:
        view.error = view.error or exc
    _instants(view.assignment, "assigned_at")
    for step in (view.assignment or {}).get("reassignments") or []:
        if isinstance(step, dict):
            _instants(step, "at")
    _instants(view.availability, "away_from", "away_until")
    return view


def _page(
    request: Request,
    user: Principal,
    loop_id: uuid.UUID,
    *,
    alert: DomainError | None = None,
    status_code: int = 200,
    done: str | None = None,
) -> Response:
    c = container(request)
    loop = c.service.loop(user, loop_id)  # NotFound for a loop the viewer may not see
    routing = routing_view(request, user, loop)
    now = c.clock.now()
    zone = viewer_zone(request)
    with c.uow() as uow:
        copies = {
            copy.complaint_id: copy
            for copy in uow.session.scalars(
                select(ComplaintCopy).where(ComplaintCopy.complaint_id.in_(loop.complaint_ids))
            )
        }
        taxonomy: dict[str, list[TaxonomyEntry]] = {"resolution_code": [], "root_cause": []}
        for entry in uow.session.scalars(select(TaxonomyEntry).order_by(TaxonomyEntry.label)):
            taxonomy.setdefault(entry.kind, []).append(entry)
        found = PolicyLookup(uow.session).sla_for(loop.journey["key"], loop.severity)
        uow.session.expunge_all()  # read-only copies: keep their loaded values after the unit
    calendar = None if found is None else found[1]
    sla = [
        SlaRow(
            target=t,
            left=None if t.due_at is None else _left(calendar, now, t.due_at),
            business=calendar is not None,
            overdue=t.state == "missed"
            or (t.state == "pending" and t.due_at is not None and t.due_at < now),
        )
        for t in loop.sla
    ]
    promises = [
        PromiseRow(
            promise=p,
            open=p.status in OPEN_PROMISES,
            overdue=p.status == "overdue" or (p.status in OPEN_PROMISES and p.due_at < now),
            due_input=_as_input(p.due_at, zone),
        )
        for p in loop.promises
    ]
    complaints = [(cid, copies.get(cid)) for cid in loop.complaint_ids]
    complaints.sort(key=lambda pair: (pair[1] is None, pair[1].received_at if pair[1] else now))
    errors: list[dict[str, Any]] = list(alert.extra.get("errors") or []) if alert else []
    context = {
        "user": user,
        "csrf": request.state.csrf,
        "loop": loop,
        "loop_id": str(loop.id),  # `loop` is Jinja's loop variable inside {% for %}
        "closed": loop.status == "closed",
        "complaints": complaints,
        "promises": promises,
        "sla": sla,
        "timeline": list(reversed(loop.timeline)),
        "notes": list(reversed(loop.notes)),
        "taxonomy": taxonomy,
        "routing_url": routing_url(),  # the same routing address the manager pages link to
        "routing": routing,
        "routing_errors": list(routing.error.extra.get("errors") or []) if routing.error else [],
        "is_loop_owner": user.subject == loop.owner["key"],
        "may_reassign": user.role in MANAGER_ROLES,
        "done": DONE.get(done or ""),
        "quick_choices": QUICK_CHOICES,
        "now": now,
        "zone": zone,
        "min_input": _as_input(now, zone),
        "alert": alert,
        "alert_errors": errors,
        "can": set(loop.allowed_actions),
        "waiting": loop.waiting_since is not None,
        "is_open": loop.status not in ("resolved", "closed"),
    }
    return templates.TemplateResponse(request, "loop.html", context, status_code=status_code)


@router.get("/loops/{loop_id}", response_class=HTMLResponse)
def loop_page(
    request: Request,
    user: ConsoleUser,
    loop_id: str,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    try:
        return _page(request, user, _loop_id(loop_id), done=done)
    except NotFound:
        if done in ("handed-over", "reassigned"):
            # The loop already followed its new owner: back to the viewer's own loops.
            return RedirectResponse("/console/loops", status_code=303)
        raise


# --- acting ----------------------------------------------------------------------------------


def _act(
    request: Request, user: Principal, loop_id: uuid.UUID, action: Callable[[], object]
) -> Response:
    """Run one action; back to the loop page, or the page again with the message for 409/422."""
    try:
        action()
    except DomainError as exc:
        if exc.status not in (409, 422):
            raise
        return _page(request, user, loop_id, alert=exc, status_code=exc.status)
    return RedirectResponse(f"/console/loops/{loop_id}", status_code=303)


def _required(value: str, field: str, label: str) -> str:
    value = value.strip()
    if not value:
        raise Unprocessable(
            f"{label} is required", errors=[{"field": field, "message": "required"}]
        )
    return value


def _parse_local(value: str, zone: ZoneInfo, field: str) -> datetime:
    """A datetime-local value, read as wall-clock time in the viewer's zone, in UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Unprocessable(
            "the date and time are not valid",
            errors=[{"field": field, "message": "expected a date and time"}],
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def quick_due(choice: str, now: datetime, zone: ZoneInfo, calendar: Calendar | None) -> datetime:
    """The due time of a quick choice: business hours of the loop's SLA calendar when it has one
    (wall clock otherwise), tomorrow 10:00 in the viewer's zone, or an hour from now."""
    if choice == "2bh":
        if calendar is not None:
            try:
                return add_business_time(calendar, now, timedelta(hours=2))
            except ValueError:
                pass  # a calendar without working time: fall back to the wall clock
        return now + timedelta(hours=2)
    if choice == "tomorrow10":
        tomorrow = now.astimezone(zone).date() + timedelta(days=1)
        return datetime.combine(tomorrow, time(10, 0), tzinfo=zone).astimezone(UTC)
    if choice == "1h":
        return now + timedelta(hours=1)
    raise Unprocessable(
        f"unknown quick choice {choice!r}", errors=[{"field": "quick", "message": "unknown"}]
    )


@router.post("/loops/{loop_id}/acknowledge")
def acknowledge(request: Request, user: FormUser, loop_id: str) -> Response:
    lid = _loop_id(loop_id)
    return _act(request, user, lid, lambda: container(request).service.acknowledge(user, lid))


@router.post("/loops/{loop_id}/promises")
def make_promise(
    request: Request,
    user: FormUser,
    loop_id: str,
    text: ShortText = "",
    due: Annotated[str, Form(max_length=40)] = "",
    quick: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    lid = _loop_id(loop_id)
    c = container(request)

    def act() -> None:
        promise_text = _required(text, "text", "What you promise")
        zone = viewer_zone(request)
        if quick:
            loop = c.service.loop(user, lid)
            due_at = quick_due(quick, c.clock.now(), zone, _calendar(request, loop))
        else:
            due_at = _parse_local(_required(due, "due_at", "The due time"), zone, "due_at")
        c.service.make_promise(user, lid, promise_text, due_at)

    return _act(request, user, lid, act)


@router.post("/loops/{loop_id}/promises/{promise_id}/keep")
def keep_promise(request: Request, user: FormUser, loop_id: str, promise_id: str) -> Response:
    lid, pid = _loop_id(loop_id), _promise_id(promise_id)
    return _act(request, user, lid, lambda: container(request).service.keep_promise(user, pid))


@router.post("/loops/{loop_id}/promises/{promise_id}/renegotiate")
def renegotiate_promise(
    request: Request,
    user: FormUser,
    loop_id: str,
    promise_id: str,
    due: Annotated[str, Form(max_length=40)] = "",
    reason: ShortText = "",
) -> Response:
    lid, pid = _loop_id(loop_id), _promise_id(promise_id)

    def act() -> None:
        why = _required(reason, "reason", "The reason")
        due_at = _parse_local(
            _required(due, "due_at", "The new due time"), viewer_zone(request), "due_at"
        )
        container(request).service.renegotiate_promise(user, pid, due_at, why)

    return _act(request, user, lid, act)


@router.post("/loops/{loop_id}/promises/{promise_id}/cancel")
def cancel_promise(
    request: Request, user: FormUser, loop_id: str, promise_id: str, reason: ShortText = ""
) -> Response:
    lid, pid = _loop_id(loop_id), _promise_id(promise_id)

    def act() -> None:
        why = _required(reason, "reason", "The reason")
        container(request).service.cancel_promise(user, pid, why)

    return _act(request, user, lid, act)


@router.post("/loops/{loop_id}/notes")
def add_note(request: Request, user: FormUser, loop_id: str, text: LongText = "") -> Response:
    lid = _loop_id(loop_id)

    def act() -> None:
        container(request).service.add_note(user, lid, _required(text, "text", "The note"))

    return _act(request, user, lid, act)


@router.post("/loops/{loop_id}/resolve")
def resolve(
    request: Request,
    user: FormUser,
    loop_id: str,
    resolution_code: Annotated[str, Form(max_length=100)] = "",
    root_cause: ShortText = "",
    summary: LongText = "",
) -> Response:
    lid = _loop_id(loop_id)

    def act() -> None:
        code = _required(resolution_code, "resolution_code", "The resolution code")
        cause = _required(root_cause, "root_cause", "The root cause")
        text = _required(summary, "summary", "The summary")
        container(request).service.resolve(user, lid, code, cause, text)

    return _act(request, user, lid, act)


@router.post("/loops/{loop_id}/wait")
def wait_on_customer(
    request: Request, user: FormUser, loop_id: str, reason: ShortText = ""
) -> Response:
    lid = _loop_id(loop_id)

    def act() -> None:
        why = _required(reason, "reason", "What you are waiting for")
        container(request).service.wait_on_customer(user, lid, why)

    return _act(request, user, lid, act)


@router.post("/loops/{loop_id}/resume")
def resume(request: Request, user: FormUser, loop_id: str) -> Response:
    lid = _loop_id(loop_id)
    return _act(request, user, lid, lambda: container(request).service.resume(user, lid))


# --- routing's actions: hand over, away, reassign ----------------------------------------------


def _routing_act(
    request: Request,
    user: Principal,
    loop_id: uuid.UUID,
    action: Callable[[], object],
    done: str,
) -> Response:
    """Run an action that calls routing; back with `?done=`, or the page with the message."""
    try:
        action()
    except RoutingFailed as exc:
        return _page(request, user, loop_id, alert=exc, status_code=exc.status)
    except DomainError as exc:
        if exc.status not in (409, 422):
            raise
        return _page(request, user, loop_id, alert=exc, status_code=exc.status)
    return RedirectResponse(f"/console/loops/{loop_id}?done={done}", status_code=303)


def _loop_of_owner(request: Request, user: Principal, loop_id: uuid.UUID) -> LoopOut:
    loop = container(request).service.loop(user, loop_id)
    if user.subject != loop.owner["key"]:
        raise Forbidden("only the loop's owner hands it over or sets themselves away here")
    return loop


def reassign_loop(
    request: Request, user: Principal, loop_id: uuid.UUID, owner: str, reason: str
) -> None:
    """A journey manager (or admin) moves the loop's complaint to another owner in routing."""
    if user.role not in MANAGER_ROLES:
        raise Forbidden("reassigning is for journey managers")
    loop = container(request).service.loop(user, loop_id)  # NotFound outside my journeys
    to = _required(owner, "owner", "The new owner")
    why = _required(reason, "reason", "The reason")
    routing_for(request).reassign(loop.complaint_id, to, why)


@router.post("/loops/{loop_id}/handover")
def hand_over(
    request: Request, user: FormUser, loop_id: str, to: OwnerKey = "", reason: ShortText = ""
) -> Response:
    """The owner hands this complaint to a teammate (routing's reassign, as the owner)."""
    lid = _loop_id(loop_id)

    def act() -> None:
        loop = _loop_of_owner(request, user, lid)
        teammate = _required(to, "owner", "The teammate")
        why = _required(reason, "reason", "The reason")
        routing_for(request).reassign(loop.complaint_id, teammate, why)

    return _routing_act(request, user, lid, act, "handed-over")


@router.post("/loops/{loop_id}/away")
def set_away(
    request: Request,
    user: FormUser,
    loop_id: str,
    delegate: OwnerKey = "",
    until: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """The owner is away from now (until a time, or until they are back), with a delegate."""
    lid = _loop_id(loop_id)
    c = container(request)

    def act() -> None:
        _loop_of_owner(request, user, lid)
        now = c.clock.now()
        away_until = None
        if until.strip():
            away_until = _parse_local(until, viewer_zone(request), "away_until")
            if away_until <= now:
                raise Unprocessable(
                    "“Until” must be in the future",
                    errors=[{"field": "away_until", "message": "in the past"}],
                )
        routing_for(request).set_availability(
            user.subject, now, away_until, delegate.strip() or None
        )

    return _routing_act(request, user, lid, act, "away")


@router.post("/loops/{loop_id}/back")
def set_back(request: Request, user: FormUser, loop_id: str) -> Response:
    """The owner is back: clear the away window and delegate in routing."""
    lid = _loop_id(loop_id)

    def act() -> None:
        _loop_of_owner(request, user, lid)
        routing_for(request).set_availability(user.subject, None, None, None)

    return _routing_act(request, user, lid, act, "back")


@router.post("/loops/{loop_id}/reassign")
def reassign(
    request: Request, user: FormUser, loop_id: str, owner: OwnerKey = "", reason: ShortText = ""
) -> Response:
    """A journey manager reassigns the loop's complaint in routing."""
    lid = _loop_id(loop_id)
    return _routing_act(
        request, user, lid, lambda: reassign_loop(request, user, lid, owner, reason), "reassigned"
    )

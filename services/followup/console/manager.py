"""Console pages for managers: the escalation board (with reassigning overdue loops), journey
metrics (with a CSV download) and the journey catalog.

Reassigning and the journey catalog belong to routing (another service). Where the manager waits
for the answer these pages call routing's API with the manager's own token (routing_client.py):
reassign a loop's complaint from the board, read the catalog (journeys, stages, teams, rules) and
dry-run a changed catalog against recent complaints. Routing unreachable or refusing is a message
on the page, never a failed page.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, cast
from zoneinfo import ZoneInfo

import yaml
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Select, func, select

from services.followup.bootstrap import FollowupContainer
from services.followup.console import queries
from services.followup.console.loop_page import DONE, reassign_loop
from services.followup.console.render import duration, templates, viewer_zone
from services.followup.console.routing_client import RoutingFailed, routing_for, routing_url
from services.followup.console.session import (
    ConsoleUser,
    FormUser,
    container,
    page_context,
)
from services.followup.metrics_query import DEFAULT_PERIOD, ESCALATION_KINDS, MetricsQuery
from services.followup.metrics_schemas import FiguresOut, JourneyMetricsOut
from services.followup.models import Loop
from services.followup.schemas import AlertOut
from shared.auth import Principal
from shared.errors import DomainError, Forbidden, NotFound, Unprocessable

router = APIRouter(prefix="/console", include_in_schema=False)

MANAGER_ROLES = ("manager", "admin")
BOARD_LIMIT = 200
CANDIDATE_MAX_CHARS = 60_000  # the console's request body limit is 64 KiB


def _require_manager(user: Principal) -> None:
    if user.role not in MANAGER_ROLES:
        raise Forbidden("this page is for journey managers")


# --- the escalation board -----------------------------------------------------------------------


def escalations(c: FollowupContainer, user: Principal, *, acked: bool) -> list[AlertOut]:
    """Overdue and SLA-breach alerts the principal may see, newest first (unacked unless asked)."""
    items: list[AlertOut] = []
    for kind in ESCALATION_KINDS:
        page = c.alerts.page(user, acked=None if acked else False, kind=kind, limit=BOARD_LIMIT)
        items.extend(page.items)
    items.sort(key=lambda a: (a.fired_at, str(a.id)), reverse=True)
    return items[:BOARD_LIMIT]


def teams_of(catalog: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Journey key → its team ({key, name}) from routing's catalog document."""
    doc = catalog.get("catalog")
    if not isinstance(doc, dict):
        return {}
    names = {
        str(o.get("key")): str(o.get("name") or o.get("key"))
        for o in doc.get("owners") or []
        if isinstance(o, dict)
    }
    return {
        str(j.get("key")): [
            {"key": str(k), "name": names.get(str(k), str(k))} for k in j.get("team") or []
        ]
        for j in doc.get("journeys") or []
        if isinstance(j, dict)
    }


def _board_page(
    request: Request,
    user: Principal,
    *,
    acked: bool = False,
    partial: bool = False,
    alert: DomainError | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> Response:
    c = container(request)
    teams: dict[str, list[dict[str, str]]] = {}
    routing_error: RoutingFailed | None = None
    if not partial:  # the teams the reassign forms offer (asked before holding a connection)
        try:
            teams = teams_of(routing_for(request).catalog())
        except RoutingFailed as exc:
            routing_error = exc
    now = c.clock.now()
    alerts = escalations(c, user, acked=acked)
    with c.uow() as uow:
        queue = queries.queue(uow.session, user, now)
        overdue = [row for row in queue.rows if row.overdue]
        context = {
            **page_context(request, user),
            "alerts": alerts,
            "overdue": overdue,
            "show_acked": acked,
            "now": now,
            "zone": viewer_zone(request),
            "late": lambda seconds: timedelta(seconds=seconds),
            "routing_url": routing_url(),
            "teams": teams,
            "routing_error": routing_error,
            "alert": alert,
            "alert_errors": list(alert.extra.get("errors") or []) if alert else [],
            "done": DONE.get(done or ""),
        }
        return templates.TemplateResponse(
            request,
            "board_list.html" if partial else "board.html",
            context,
            status_code=status_code,
        )


@router.get("/board", response_class=HTMLResponse)
def board(
    request: Request,
    user: ConsoleUser,
    acked: bool = False,
    partial: bool = False,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Unacknowledged escalations in my journeys, and the loops overdue now; `partial` renders
    only the list (the page polls it)."""
    _require_manager(user)
    return _board_page(request, user, acked=acked, partial=partial, done=done)


@router.post("/board/loops/{loop_id}/reassign")
def board_reassign(
    request: Request,
    user: FormUser,
    loop_id: str,
    owner: Annotated[str, Form(max_length=100)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Reassign an overdue loop's complaint in routing; back to the board."""
    _require_manager(user)
    try:
        lid = uuid.UUID(loop_id)
    except ValueError:
        raise NotFound(f"no loop {loop_id}") from None
    try:
        reassign_loop(request, user, lid, owner, reason)
    except RoutingFailed as exc:
        return _board_page(request, user, alert=exc, status_code=exc.status)
    except DomainError as exc:
        if exc.status not in (409, 422):
            raise
        return _board_page(request, user, alert=exc, status_code=exc.status)
    return RedirectResponse("/console/board?done=reassigned", status_code=303)


@router.post("/alerts/{alert_id}/ack")
def acknowledge(alert_id: uuid.UUID, user: FormUser, request: Request) -> Response:
    _require_manager(user)
    container(request).alerts.ack(user, alert_id)
    return RedirectResponse("/console/board", status_code=303)


# --- metrics ------------------------------------------------------------------------------------


class PeriodError(Exception):
    pass


def _parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise PeriodError(f"“{name}” is not a date (YYYY-MM-DD).") from exc


@dataclass(frozen=True)
class Period:
    """Days in the viewer's zone: [from 00:00, to 00:00)."""

    start: date
    end: date
    zone: ZoneInfo

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), self.zone)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end, time(), self.zone)


def _period(request: Request, from_: str | None, to: str | None, now: datetime) -> Period:
    zone = viewer_zone(request)
    end = _parse_day(to, "to") or (now.astimezone(zone).date() + timedelta(days=1))
    start = _parse_day(from_, "from") or (end - DEFAULT_PERIOD)
    if start >= end:
        raise PeriodError("The period is empty: “from” must be before “to”.")
    return Period(start, end, zone)


def _metrics(c: FollowupContainer, user: Principal, p: Period) -> JourneyMetricsOut:
    return MetricsQuery(c.uow, c.clock).journeys(user, start=p.since, end=p.until, group="stage")


@dataclass(frozen=True)
class MetricsRow:
    journey: str
    journey_name: str
    stage: str
    stage_name: str
    figures: FiguresOut
    total: bool


def metrics_rows(m: JourneyMetricsOut) -> list[MetricsRow]:
    """One row per journey and stage, then the journey's total (stage "*")."""
    rows: list[MetricsRow] = []
    for j in m.journeys:
        for r in j.rows:
            rows.append(MetricsRow(j.journey.key, j.journey.name, r.key, r.name, r, False))
        rows.append(MetricsRow(j.journey.key, j.journey.name, "*", "All stages", j.totals, True))
    return rows


@dataclass(frozen=True)
class Bar:
    label: str
    fraction: float  # of the chart's width, 0..1
    text: str


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    bars: list[Bar]

    @property
    def summary(self) -> str:
        return f"{self.title}: " + "; ".join(f"{b.label} {b.text}" for b in self.bars)


def _bars(
    items: list[tuple[str, float | None]], fmt: Callable[[float], str], scale: float | None = None
) -> list[Bar]:
    top = scale if scale is not None else max((v or 0.0 for _, v in items), default=0.0)
    return [
        Bar(
            label,
            0.0 if value is None or top <= 0 else min(value / top, 1.0),
            "—" if value is None else fmt(value),
        )
        for label, value in items
    ]


def charts(m: JourneyMetricsOut) -> dict[str, list[Chart]]:
    """Per journey: bar charts across its stages (the template draws them as inline SVG)."""
    out: dict[str, list[Chart]] = {}
    for i, j in enumerate(m.journeys):
        stages = j.rows
        key = str(i)
        out[j.journey.key] = [
            Chart(
                f"kept-{key}",
                "Promise-kept rate",
                _bars(
                    [(r.name, r.promises.kept_rate) for r in stages],
                    lambda v: f"{v:.0%}",
                    scale=1.0,
                ),
            ),
            Chart(
                f"volume-{key}",
                "Volume (loops opened)",
                _bars([(r.name, float(r.volume.loops)) for r in stages], lambda v: f"{v:.0f}"),
            ),
            Chart(
                f"resolve-{key}",
                "Median time to resolve",
                _bars(
                    [(r.name, r.time_to_resolve.median_s) for r in stages],
                    lambda v: duration(timedelta(seconds=v)),
                ),
            ),
            Chart(
                f"overdue-{key}",
                "Overdue now",
                _bars([(r.name, float(r.overdue_now)) for r in stages], lambda v: f"{v:.0f}"),
            ),
        ]
    return out


@router.get("/metrics", response_class=HTMLResponse)
def metrics(
    request: Request,
    user: ConsoleUser,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Per journey and stage over a period of days (default: the last 30)."""
    _require_manager(user)
    c = container(request)
    now = c.clock.now()
    context: dict[str, Any] = {
        **page_context(request, user),
        "form": {"from": from_ or "", "to": to or ""},
        "error": None,
        "data": None,
        "rows": [],
        "charts": {},
        "span": lambda seconds: timedelta(seconds=seconds),
        "zone": viewer_zone(request),
    }
    try:
        p = _period(request, from_, to, now)
        context["form"] = {"from": p.start.isoformat(), "to": p.end.isoformat()}
        data = _metrics(c, user, p)
    except PeriodError as exc:
        context["error"] = str(exc)
        return templates.TemplateResponse(request, "metrics.html", context, status_code=422)
    except DomainError as exc:
        context["error"] = exc.detail or exc.title
        return templates.TemplateResponse(request, "metrics.html", context, status_code=exc.status)
    context["data"] = data
    context["rows"] = metrics_rows(data)
    context["charts"] = charts(data)
    context["csv_url"] = f"/console/metrics.csv?from={p.start.isoformat()}&to={p.end.isoformat()}"
    return templates.TemplateResponse(request, "metrics.html", context)


CSV_COLUMNS = (
    "journey",
    "journey_name",
    "stage",
    "stage_name",
    "loops",
    "complaints",
    "promises_due",
    "promises_kept_on_time",
    "promise_kept_rate",
    "acknowledged",
    "time_to_acknowledge_median_s",
    "time_to_acknowledge_p90_s",
    "resolved",
    "time_to_resolve_median_s",
    "time_to_resolve_p90_s",
    "overdue_now",
    "escalations",
    "repeat_contact_loops",
    "repeat_contact_rate",
    "csat_count",
    "csat_mean",
    "top_root_causes",
)


def _cell(value: object) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with a '."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def csv_line(row: MetricsRow) -> list[str]:
    f = row.figures
    causes = "; ".join(f"{rc.root_cause} ({rc.count})" for rc in f.top_root_causes)
    values: list[object] = [
        row.journey,
        row.journey_name,
        row.stage,
        row.stage_name,
        f.volume.loops,
        f.volume.complaints,
        f.promises.due,
        f.promises.kept_on_time,
        f.promises.kept_rate,
        f.time_to_acknowledge.count,
        f.time_to_acknowledge.median_s,
        f.time_to_acknowledge.p90_s,
        f.time_to_resolve.count,
        f.time_to_resolve.median_s,
        f.time_to_resolve.p90_s,
        f.overdue_now,
        f.escalations,
        f.repeat_contacts.loops,
        f.repeat_contacts.rate,
        f.csat.count,
        f.csat.mean,
        causes,
    ]
    return [_cell(v) for v in values]


@router.get("/metrics.csv")
def metrics_csv(
    request: Request,
    user: ConsoleUser,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The rows of the metrics page as CSV (durations in seconds, rates as fractions)."""
    _require_manager(user)
    c = container(request)
    try:
        p = _period(request, from_, to, c.clock.now())
    except PeriodError as exc:
        return Response(str(exc) + "\n", status_code=422, media_type="text/plain")
    data = _metrics(c, user, p)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in metrics_rows(data):
        writer.writerow(csv_line(row))
    name = f"closeloop-metrics-{p.start.isoformat()}-{p.end.isoformat()}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- the journeys followup knows ----------------------------------------------------------------


@dataclass(frozen=True)
class OwnerSeen:
    key: str
    name: str
    loops: int
    open: int


@dataclass
class StageSeen:
    key: str
    owners: list[OwnerSeen]


@dataclass
class JourneySeen:
    key: str
    name: str
    managers: set[str]
    stages: dict[str, StageSeen]


def journeys_seen(c: FollowupContainer, user: Principal) -> list[JourneySeen]:
    """Journeys, stages and owners of the loops the principal may see, with loop counts."""
    columns: Select[Any] = cast(
        "Select[Any]",
        select(
            Loop.journey_key,
            func.max(Loop.journey_name),
            Loop.stage,
            Loop.owner_key,
            func.max(Loop.owner_name),
            func.max(Loop.journey_manager),
            func.count(),
            func.count().filter(Loop.status.in_(queries.OPEN_STATUSES)),
        ),
    )
    q = queries.visible(columns, user).group_by(Loop.journey_key, Loop.stage, Loop.owner_key)
    with c.uow() as uow:
        rows = list(uow.session.execute(q))
    journeys: dict[str, JourneySeen] = {}
    for jkey, jname, stage, okey, oname, mgr, loops, open_ in rows:
        j = journeys.setdefault(jkey, JourneySeen(jkey, jname, set(), {}))
        if mgr:
            j.managers.add(mgr)
        s = j.stages.setdefault(stage, StageSeen(stage, []))
        s.owners.append(OwnerSeen(okey, oname, loops, open_))
    for j in journeys.values():
        for s in j.stages.values():
            s.owners.sort(key=lambda o: o.key)
    return sorted(journeys.values(), key=lambda j: j.key)


# --- routing's catalog, and a dry-run of a changed one -------------------------------------------


@dataclass(frozen=True)
class RuleRow:
    key: str
    priority: int
    description: str
    when: list[str]  # "product: Credit card", one per condition; empty: matches everything
    journey: str
    stage: str
    severity: str | None


def _condition(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def rule_rows(doc: dict[str, Any]) -> list[RuleRow]:
    """Routing's rules in the order it tries them (lower priority first; ties as listed)."""
    rows = []
    for r in doc.get("rules") or []:
        if not isinstance(r, dict):
            continue
        when = r.get("when") if isinstance(r.get("when"), dict) else {}
        rows.append(
            RuleRow(
                key=str(r.get("key")),
                priority=int(r.get("priority", 100)),
                description=str(r.get("description") or ""),
                when=[
                    f"{k.replace('_', ' ')}: {_condition(v)}"
                    for k, v in (when or {}).items()
                    if v is not None
                ],
                journey=str(r.get("journey")),
                stage=str(r.get("stage")),
                severity=r.get("severity"),
            )
        )
    return sorted(rows, key=lambda row: row.priority)


@dataclass
class DryRunRow:
    complaint_id: str
    current: dict[str, Any]
    candidate: dict[str, Any]
    changes: list[str]


@dataclass
class DryRunView:
    totals: dict[str, Any]
    rows: list[DryRunRow]  # what would change first

    @property
    def changed(self) -> int:
        return sum(1 for r in self.rows if r.changes)


def dry_run_view(report: dict[str, Any]) -> DryRunView:
    rows = [
        DryRunRow(
            complaint_id=str(x.get("complaint_id")),
            current=dict(x.get("current") or {}),
            candidate=dict(x.get("candidate") or {}),
            changes=[str(c) for c in x.get("changes") or []],
        )
        for x in report.get("results") or []
        if isinstance(x, dict)
    ]
    rows.sort(key=lambda r: not r.changes)  # stable: routing's order within each group
    totals = report.get("totals")
    return DryRunView(totals=dict(totals) if isinstance(totals, dict) else {}, rows=rows)


def _catalog_page(
    request: Request,
    user: Principal,
    *,
    candidate: str | None = None,
    last: str = "",
    report: DryRunView | None = None,
    alert: DomainError | None = None,
    status_code: int = 200,
) -> Response:
    """Routing's catalog as read-only tables, the dry-run form, and what followup has seen."""
    routing = routing_for(request)
    current: dict[str, Any] | None = None
    routing_error: RoutingFailed | None = None
    try:
        current = routing.catalog()
        if candidate is None:
            candidate = routing.catalog_yaml()
    except RoutingFailed as exc:
        routing_error = exc
    doc = current.get("catalog") if current else None
    doc = doc if isinstance(doc, dict) else None
    context = {
        **page_context(request, user),
        "journeys": journeys_seen(container(request), user),
        "routing_url": routing_url(),
        "routing_error": routing_error,
        "catalog": doc,
        "version": current.get("version") if current else None,
        "rules": rule_rows(doc) if doc else [],
        "candidate": candidate or "",
        "candidate_max": CANDIDATE_MAX_CHARS,
        "last": last,
        "report": report,
        "alert": alert,
        "alert_errors": list(alert.extra.get("errors") or []) if alert else [],
    }
    return templates.TemplateResponse(request, "catalog.html", context, status_code=status_code)


@router.get("/catalog", response_class=HTMLResponse)
def catalog(request: Request, user: ConsoleUser) -> Response:
    """Routing's journeys, stages, teams, owners and rules (read-only), a dry-run form for a
    changed catalog, and the journeys followup has seen in its loops."""
    _require_manager(user)
    return _catalog_page(request, user)


def _candidate_document(text: str) -> Any:
    """The candidate catalog from the form's YAML (or JSON, which is YAML too)."""
    if not text.strip():
        raise Unprocessable(
            "paste a changed catalog to dry-run",
            errors=[{"field": "candidate", "message": "required"}],
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise Unprocessable(
            f"the candidate is not valid YAML: {exc}",
            errors=[{"field": "candidate", "message": "not parseable"}],
        ) from None
    # The exported JSON shape ({"version", "catalog"}) is accepted as it is.
    if isinstance(data, dict) and isinstance(data.get("catalog"), dict):
        data = data["catalog"]
    if not isinstance(data, dict):
        raise Unprocessable(
            "the candidate must be a catalog document (journeys, owners, rules)",
            errors=[{"field": "candidate", "message": "not a mapping"}],
        )
    return data


def _last(value: str) -> int | None:
    if not value.strip():
        return None
    try:
        n = int(value.strip())
    except ValueError:
        n = 0
    if not 1 <= n <= 10_000:
        raise Unprocessable(
            "“Recent complaints” must be a whole number from 1 to 10000",
            errors=[{"field": "last", "message": "1 to 10000"}],
        )
    return n


@router.post("/catalog/dry-run", response_class=HTMLResponse)
def catalog_dry_run(
    request: Request,
    user: FormUser,
    candidate: Annotated[str, Form(max_length=CANDIDATE_MAX_CHARS)] = "",
    last: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Route recent complaints with the pasted catalog (routing changes nothing) and show what
    would change."""
    _require_manager(user)
    try:
        document = _candidate_document(candidate)
        report = routing_for(request).dry_run(document, _last(last))
    except DomainError as exc:
        if not isinstance(exc, RoutingFailed) and exc.status != 422:
            raise
        return _catalog_page(
            request, user, candidate=candidate, last=last, alert=exc, status_code=exc.status
        )
    return _catalog_page(request, user, candidate=candidate, last=last, report=dry_run_view(report))

"""Console pages for managers: the escalation board, journey metrics (with a CSV download) and a
read-only view of the journeys followup knows.

Reassigning and the journey catalog belong to routing (another service, another origin); these
pages explain where, and never call it.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, cast
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Select, func, select

from services.followup.bootstrap import FollowupContainer
from services.followup.console import queries
from services.followup.console.render import duration, templates, viewer_zone
from services.followup.console.session import COOKIE, ConsoleUser, FormUser, csrf_for
from services.followup.metrics_query import DEFAULT_PERIOD, ESCALATION_KINDS, MetricsQuery
from services.followup.metrics_schemas import FiguresOut, JourneyMetricsOut
from services.followup.models import Loop
from services.followup.schemas import AlertOut
from shared.auth import Principal
from shared.errors import DomainError, Forbidden

router = APIRouter(prefix="/console", include_in_schema=False)

MANAGER_ROLES = ("manager", "admin")
BOARD_LIMIT = 200
ROUTING_URL_ENV = "CLOSELOOP_ROUTING_URL"
ROUTING_URL_DEFAULT = "http://127.0.0.1:8002"


def _container(request: Request) -> FollowupContainer:
    c: FollowupContainer = request.app.state.container
    return c


def _require_manager(user: Principal) -> None:
    if user.role not in MANAGER_ROLES:
        raise Forbidden("this page is for journey managers")


def _base_context(request: Request, user: Principal) -> dict[str, Any]:
    return {"user": user, "csrf": csrf_for(request, request.cookies[COOKIE])}


def routing_url() -> str:
    """The routing service's base URL, for links (never called from here)."""
    return (os.environ.get(ROUTING_URL_ENV) or ROUTING_URL_DEFAULT).rstrip("/")


# --- the escalation board -----------------------------------------------------------------------


def escalations(c: FollowupContainer, user: Principal, *, acked: bool) -> list[AlertOut]:
    """Overdue and SLA-breach alerts the principal may see, newest first (unacked unless asked)."""
    items: list[AlertOut] = []
    for kind in ESCALATION_KINDS:
        page = c.alerts.page(user, acked=None if acked else False, kind=kind, limit=BOARD_LIMIT)
        items.extend(page.items)
    items.sort(key=lambda a: (a.fired_at, str(a.id)), reverse=True)
    return items[:BOARD_LIMIT]


@router.get("/board", response_class=HTMLResponse)
def board(
    request: Request, user: ConsoleUser, acked: bool = False, partial: bool = False
) -> Response:
    """Unacknowledged escalations in my journeys, and the loops overdue now; `partial` renders
    only the list (the page polls it)."""
    _require_manager(user)
    c = _container(request)
    now = c.clock.now()
    alerts = escalations(c, user, acked=acked)
    with c.uow() as uow:
        queue = queries.queue(uow.session, user, now)
        overdue = [row for row in queue.rows if row.overdue]
        context = {
            **_base_context(request, user),
            "alerts": alerts,
            "overdue": overdue,
            "show_acked": acked,
            "now": now,
            "zone": viewer_zone(request),
            "late": lambda seconds: timedelta(seconds=seconds),
            "routing_url": routing_url(),
        }
        return templates.TemplateResponse(
            request, "board_list.html" if partial else "board.html", context
        )


@router.post("/alerts/{alert_id}/ack")
def acknowledge(alert_id: uuid.UUID, user: FormUser, request: Request) -> Response:
    _require_manager(user)
    _container(request).alerts.ack(user, alert_id)
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
    c = _container(request)
    now = c.clock.now()
    context: dict[str, Any] = {
        **_base_context(request, user),
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
    c = _container(request)
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


@router.get("/catalog", response_class=HTMLResponse)
def catalog(request: Request, user: ConsoleUser) -> Response:
    """Read-only: what followup has seen; the catalog itself lives in routing."""
    _require_manager(user)
    c = _container(request)
    context = {
        **_base_context(request, user),
        "journeys": journeys_seen(c, user),
        "routing_url": routing_url(),
    }
    return templates.TemplateResponse(request, "catalog.html", context)

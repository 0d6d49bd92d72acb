"""Console pages: sign-in and sign-out, and "My loops" (the owner's queue)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.followup.console import queries
from services.followup.console.render import templates, viewer_zone
from services.followup.console.session import (
    COOKIE,
    STAFF_ROLES,
    ConsoleUser,
    FormUser,
    container,
    page_context,
)
from shared.auth import TokenVerifier
from shared.errors import DomainError

router = APIRouter(prefix="/console", include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect."""
    if not target:
        return "/console/loops"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console"):
        return "/console/loops"
    return parts.path


@router.get("", response_class=HTMLResponse)
def home(user: ConsoleUser) -> Response:
    return RedirectResponse("/console/loops", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return templates.TemplateResponse(
        request, "login.html", {"next": _safe_next(next), "error": None}
    )


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    token: Annotated[str, Form(min_length=1, max_length=8192)],
    next: Annotated[str, Form()] = "/console/loops",
) -> Response:
    """Check the token (the one `closeloop token issue` prints, or the identity provider's) and
    keep it in an HTTP-only, SameSite=Strict cookie."""
    token = token.strip()
    verifier: TokenVerifier = request.app.state.verifier
    try:
        principal = verifier.verify(token)
        error = (
            None if principal.role in STAFF_ROLES else "This token is not an owner's or manager's."
        )
    except DomainError as exc:
        error = f"This token was not accepted: {exc.detail}"
    if error is not None:
        return templates.TemplateResponse(
            request, "login.html", {"next": _safe_next(next), "error": error}, status_code=401
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/console",
    )
    return response


@router.post("/logout")
def logout(user: FormUser) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/loops", response_class=HTMLResponse)
def my_loops(
    request: Request,
    user: ConsoleUser,
    journey: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    severity: Annotated[str | None, Query(max_length=10)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    partial: bool = False,
) -> Response:
    """Open loops by next due time, overdue first; `partial` renders only the list (polling)."""
    c = container(request)
    now = c.clock.now()
    with c.uow() as uow:
        queue = queries.queue(
            uow.session,
            user,
            now,
            journey=journey or None,
            status=status or None,
            severity=severity or None,
            search=q or None,
        )
        context = {
            **page_context(request, user),
            "queue": queue,
            "now": now,
            "zone": viewer_zone(request),
            "filters": {"journey": journey, "status": status, "severity": severity, "q": q},
            "statuses": queries.OPEN_STATUSES,
            "severities": ("critical", "high", "medium", "low"),
        }
        return templates.TemplateResponse(
            request, "queue_list.html" if partial else "loops.html", context
        )

"""The web console at /console: journey owners work their loops, managers see what is overdue.

Server-rendered (Jinja2) pages over the same services and object-level checks as the API; a few
lines of plain JavaScript refresh parts of a page. Sign-in keeps the bearer token in an
HTTP-only cookie (see session.py).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.followup.console import loop_page, manager, pages
from services.followup.console.render import templates
from services.followup.console.session import SignInRequired
from shared.errors import DomainError

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Mount the console's pages, static files and its HTML error pages on the followup app."""
    app.include_router(pages.router)
    app.include_router(loop_page.router)
    app.include_router(manager.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    problem_handler = app.exception_handlers[DomainError]

    async def domain_error(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith("/console"):
            response = problem_handler(request, exc)
            assert inspect.isawaitable(response)  # the problem handlers are async
            return await response
        if isinstance(exc, SignInRequired):
            target = request.url.path if request.method == "GET" else "/console"
            return RedirectResponse(f"/console/login?next={target}", status_code=303)
        assert isinstance(exc, DomainError)
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": exc.status, "title": exc.title, "detail": exc.detail},
            status_code=exc.status,
        )

    app.add_exception_handler(DomainError, domain_error)

"""The FastAPI app every service starts from: problems, limits, health, readiness, metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import TokenVerifier
from shared.container import ServiceContainer
from shared.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, install_problem_handlers
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], bool]


class MetricsMiddleware:
    """Counts requests and records latency per route template (not per raw path)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(self.service, method, path, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, path).observe(time.perf_counter() - start)


class ProblemBodyLimit:
    """Starlette answers an oversized body with plain text; clients get problem details."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 413:
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type", b"").startswith(b"text/plain"):
                    replaced = True
                    body = json.dumps(
                        {
                            "type": PROBLEM_BASE + "content-too-large",
                            "title": "Request body too large",
                            "status": 413,
                            "detail": "the request body exceeds this endpoint's limit",
                            "instance": scope.get("path"),
                        }
                    ).encode()
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 413,
                            "headers": [
                                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                                (b"content-length", str(len(body)).encode()),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
            if replaced:
                return  # drop the plain-text body
            await send(message)

        await self.app(scope, receive, send_wrapper)


C = TypeVar("C", bound=ServiceContainer)


def problem_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting problem-details answers, e.g. {404: "Not found"}."""
    return {
        code: {"description": desc, "content": {PROBLEM_MEDIA_TYPE: {}}}
        for code, desc in descriptions.items()
    }


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    router: APIRouter,
    container: C | None,
    build: Callable[[], C],
    max_body_bytes: int = 64 * 1024,
) -> FastAPI:
    """A service's app: uses the given container (tests) or builds one at start-up and closes it.

    The container is on `app.state.container`, the token verifier on `app.state.verifier`, and
    /readyz checks the container's database and broker.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = container or build()
        app.state.container = c
        app.state.verifier = TokenVerifier(c.settings, c.clock)
        app.state.readiness.update(database=c.database_ready, broker=c.broker_ready)
        try:
            yield
        finally:
            if container is None:
                c.close()

    app = create_app(
        service=service,
        title=title,
        description=description,
        lifespan=lifespan,
        max_body_bytes=max_body_bytes,
    )
    app.include_router(router)
    return app


def create_app(
    *,
    service: str,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]] | None,
    max_body_bytes: int = 64 * 1024,
) -> FastAPI:
    """An app with problem details, a body limit enforced before reading, and ops endpoints.

    `app.state.readiness` holds name -> check callables, filled in by the service's lifespan.
    """
    # The body limit is enforced before the body is read: by Content-Length up front, and by
    # counting bytes of a chunked body. Routes may raise it (batch intake).
    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.readiness = {}
    install_problem_handlers(app)
    # A route's own `max_body_size` (batch intake) raises this limit for that route.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=max_body_bytes)
    app.add_middleware(ProblemBodyLimit)
    app.add_middleware(MetricsMiddleware, service=service)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        checks: dict[str, ReadinessCheck] = app.state.readiness
        results = {}
        for name, check in checks.items():
            try:
                results[name] = "ok" if check() else "unavailable"
            except Exception:
                log.warning("readiness check %s failed", name, exc_info=True)
                results[name] = "unavailable"
        ready = all(v == "ok" for v in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": results},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app

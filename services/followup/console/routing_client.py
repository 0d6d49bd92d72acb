"""The console's calls to the routing service, made as the signed-in user.

Routing owns assignments, availability and the journey catalog. Where a person in the console
waits for an answer (why this owner, hand over, set away, reassign, the catalog and its dry-run)
the console calls routing's HTTP API synchronously with that person's own bearer token (the one in
the session cookie), so routing applies its own authorisation. Followup never imports routing.

The `httpx.Client` lives on the app state (`app.state.routing_http`); tests put one there (a
TestClient of the routing app is one), otherwise it is made on first use from `routing_url()`.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request

from services.followup.console.session import SignInRequired, session_token
from shared.errors import DomainError

log = logging.getLogger(__name__)

ROUTING_URL_ENV = "CLOSELOOP_ROUTING_URL"
ROUTING_URL_DEFAULT = "http://127.0.0.1:8002"
TIMEOUT_S = 5.0
JSON = "application/json"
YAML = "application/yaml"

_client_lock = threading.Lock()


def routing_url() -> str:
    """The routing service's base URL (env CLOSELOOP_ROUTING_URL), without a trailing slash."""
    return (os.environ.get(ROUTING_URL_ENV) or ROUTING_URL_DEFAULT).rstrip("/")


class RoutingFailed(DomainError):
    """Routing could not be asked (unreachable, a 5xx) or refused (its 4xx problem details).

    The console shows it as a message (`title`, `detail`, `extra["errors"]`) instead of failing
    the page."""

    status = 502
    type_slug = "routing-unavailable"
    title = "Routing is not reachable"

    def __init__(
        self,
        detail: str,
        *,
        status: int = 502,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(detail, errors=errors or [])
        self.status = status
        if title is not None:
            self.title = title

    @property
    def unreachable(self) -> bool:
        """Routing did not answer usefully (as opposed to refusing this request)."""
        return self.status >= 500


def _unreachable(why: str) -> RoutingFailed:
    return RoutingFailed(
        f"routing is not reachable ({why}); try again in a moment. "
        "Everything else on this page works without it."
    )


def _field_errors(raw: object) -> list[dict[str, str]]:
    """Routing's `errors` ({field|path, message}) as {field, message} for the page."""
    out: list[dict[str, str]] = []
    if not isinstance(raw, list):
        return out
    for e in raw:
        if isinstance(e, dict):
            field = e.get("field") or e.get("path") or ""
            message = e.get("message") or e.get("msg") or ""
            out.append({"field": str(field), "message": str(message)})
    return out


def _refused(r: httpx.Response) -> RoutingFailed:
    """A 4xx from routing: its problem details' title, detail and field errors."""
    title, detail, errors = "", "", []
    try:
        body = r.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        title = str(body.get("title") or "")
        detail = str(body.get("detail") or "")
        errors = _field_errors(body.get("errors"))
    if not detail:
        detail = r.text[:300] if body is None and r.text else f"HTTP {r.status_code}"
    return RoutingFailed(
        detail,
        status=r.status_code,
        title=f"Routing refused: {title}" if title else "Routing refused",
        errors=errors,
    )


def http_client(request: Request) -> httpx.Client:
    """The app's client for routing; made on first use unless one was put there (tests)."""
    state = request.app.state
    client = getattr(state, "routing_http", None)
    if client is None:
        with _client_lock:
            client = getattr(state, "routing_http", None)
            if client is None:
                client = httpx.Client(
                    base_url=routing_url(), timeout=TIMEOUT_S, follow_redirects=False
                )
                state.routing_http = client
    assert isinstance(client, httpx.Client)
    return client


class RoutingClient:
    """Routing's API as one person: every call carries their bearer token."""

    def __init__(self, http: httpx.Client, token: str) -> None:
        self._http = http
        self._token = token

    def _send(
        self, method: str, path: str, *, body: Any = None, accept: str = JSON
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": accept}
        try:
            r = self._http.request(method, path, json=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            log.warning("routing call %s %s failed: %r", method, path, exc)
            raise _unreachable(type(exc).__name__) from exc
        if r.status_code >= 500 or 300 <= r.status_code < 400:
            log.warning("routing call %s %s answered %s", method, path, r.status_code)
            raise _unreachable(f"it answered HTTP {r.status_code}")
        if r.status_code >= 400:
            raise _refused(r)
        return r

    def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        r = self._send(method, path, body=body)
        try:
            data = r.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise _unreachable("its answer was not the JSON object expected")
        return data

    # --- assignments ----------------------------------------------------------------------------

    def assignment(self, complaint_id: uuid.UUID) -> dict[str, Any]:
        """Journey, stage, owner, rule and the explanation with every candidate."""
        return self._json("GET", f"/v1/assignments/{complaint_id}")

    def reassign(self, complaint_id: uuid.UUID, owner: str, reason: str) -> dict[str, Any]:
        return self._json(
            "POST",
            f"/v1/assignments/{complaint_id}/reassign",
            {"owner": owner, "reason": reason},
        )

    # --- owners -------------------------------------------------------------------------------

    def availability(self, owner: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/owners/{quote(owner, safe='')}/availability")

    def set_availability(
        self,
        owner: str,
        away_from: datetime | None,
        away_until: datetime | None,
        delegate: str | None,
    ) -> dict[str, Any]:
        body = {
            "away_from": None if away_from is None else away_from.isoformat(),
            "away_until": None if away_until is None else away_until.isoformat(),
            "delegate": delegate,
        }
        return self._json("PUT", f"/v1/owners/{quote(owner, safe='')}/availability", body)

    # --- the catalog --------------------------------------------------------------------------

    def catalog(self) -> dict[str, Any]:
        """`{"version": n, "catalog": {journeys, owners, rules}}`."""
        return self._json("GET", "/v1/catalog")

    def catalog_yaml(self) -> str:
        return self._send("GET", "/v1/catalog", accept=YAML).text

    def dry_run(self, catalog: Any, last: int | None = None) -> dict[str, Any]:
        """Route recent complaints with a candidate catalog: `{totals, results}`."""
        body: dict[str, Any] = {"catalog": catalog}
        if last is not None:
            body["last"] = last
        return self._json("POST", "/v1/rules/dry-run", body)


def routing_for(request: Request) -> RoutingClient:
    """Routing as the signed-in person (their token from the session cookie)."""
    token = session_token(request)
    if not token:
        raise SignInRequired("sign in first")
    return RoutingClient(http_client(request), token)

"""Console sign-in: the bearer token lives in an HTTP-only, SameSite=Strict cookie; every form
carries a CSRF token bound to that session.

The CSRF token is an HMAC of the session token under the service's signing key: a page can only
have it if it was rendered for this session, and a cross-site form cannot read it. SameSite
already keeps the cookie off cross-site requests; the token is the second lock.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import Depends, Form, Request

from services.followup.bootstrap import FollowupContainer
from shared.auth import Principal, TokenVerifier
from shared.errors import DomainError, Forbidden

COOKIE = "closeloop_console"
STAFF_ROLES = ("owner", "manager", "admin")


class SignInRequired(DomainError):
    """No valid session: the console answers with a redirect to its sign-in page."""

    status = 401
    title = "Sign-in required"


def csrf_for(request: Request, token: str) -> str:
    key = request.app.state.container.settings.auth_signing_key.encode()
    return hmac.new(key, b"console-csrf:" + token.encode(), hashlib.sha256).hexdigest()


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE)


def current_principal(request: Request) -> Principal:
    """The signed-in person; SignInRequired when there is no valid session."""
    token = session_token(request)
    if not token:
        raise SignInRequired("sign in first")
    verifier: TokenVerifier = request.app.state.verifier
    try:
        principal = verifier.verify(token)
    except DomainError as exc:
        raise SignInRequired("the session has expired; sign in again") from exc
    if principal.role not in STAFF_ROLES:
        raise Forbidden(f"role {principal.role!r} has no console")
    request.state.principal = principal
    request.state.csrf = csrf_for(request, token)
    return principal


def checked_form(request: Request, csrf: Annotated[str, Form()] = "") -> Principal:
    """A form post: a valid session and the CSRF token rendered into its page."""
    principal = current_principal(request)
    if not hmac.compare_digest(csrf, request.state.csrf):
        raise Forbidden("the form is stale or not from this console; reload the page")
    return principal


ConsoleUser = Annotated[Principal, Depends(current_principal)]
FormUser = Annotated[Principal, Depends(checked_form)]


def container(request: Request) -> FollowupContainer:
    """The followup container the app was built with."""
    c: FollowupContainer = request.app.state.container
    return c


def page_context(request: Request, user: Principal) -> dict[str, Any]:
    """What every signed-in page's layout needs: who it is for and the session's CSRF token."""
    return {"user": user, "csrf": request.state.csrf}

"""Bearer JWT auth: roles from DESIGN.md, local HS256 tokens or an identity provider's JWKS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, get_args

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.clock import Clock
from shared.config import ServiceSettings
from shared.errors import Forbidden, Unauthorized

Role = Literal["intake-client", "owner", "manager", "admin"]
ROLES: tuple[str, ...] = get_args(Role)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject (client, owner or manager key) and role."""

    subject: str
    role: Role
    journeys: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def issue_token(
    settings: ServiceSettings,
    clock: Clock,
    *,
    role: str,
    subject: str,
    journeys: Sequence[str] = (),
    ttl: timedelta = timedelta(hours=12),
) -> str:
    """A locally signed token (development and tests; production uses the identity provider)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    now = clock.now()
    claims: dict[str, Any] = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": subject,
        "role": role,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    if journeys:
        claims["journeys"] = list(journeys)
    return jwt.encode(claims, settings.auth_signing_key, algorithm="HS256")


class TokenVerifier:
    """Verifies bearer tokens with the local key or, when configured, the JWKS URL."""

    def __init__(self, settings: ServiceSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._jwks = jwt.PyJWKClient(settings.auth_jwks_url) if settings.auth_jwks_url else None

    def verify(self, token: str) -> Principal:
        s = self._settings
        try:
            if self._jwks is not None:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = s.auth_jwks_algorithms
            else:
                key, algorithms = s.auth_signing_key, ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=s.auth_audience,
                issuer=s.auth_issuer,
                # Time claims are checked below against the injected clock, not the wall clock.
                options={
                    "require": ["exp", "sub"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}", headers=_CHALLENGE) from exc
        now = self._clock.now().timestamp()
        if now >= float(claims["exp"]):
            raise Unauthorized("token expired", headers=_CHALLENGE)
        if now < float(claims.get("nbf", now)) - _LEEWAY_S:
            raise Unauthorized("token not valid yet", headers=_CHALLENGE)
        role = claims.get("role")
        if role not in ROLES:
            raise Unauthorized("token has no known role", headers=_CHALLENGE)
        journeys = claims.get("journeys") or []
        if not isinstance(journeys, list) or not all(isinstance(j, str) for j in journeys):
            raise Unauthorized("the journeys claim must be a list of keys", headers=_CHALLENGE)
        return Principal(subject=str(claims["sub"]), role=role, journeys=tuple(journeys))


_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_LEEWAY_S = 30
_bearer = HTTPBearer(auto_error=False)


def require_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting the given roles (and admin); 401 without a valid token, else 403."""
    allowed = set(roles) | {"admin"}

    # async: verifying a token is quick CPU work, and a sync dependency would cost a hop through
    # the thread pool on every request.
    async def dependency(
        request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> Principal:
        if creds is None or creds.scheme.lower() != "bearer":
            raise Unauthorized("a bearer token is required", headers=_CHALLENGE)
        verifier: TokenVerifier = request.app.state.verifier
        principal = verifier.verify(creds.credentials)
        if principal.role not in allowed:
            raise Forbidden(f"role {principal.role!r} may not do this")
        request.state.principal = principal
        return principal

    return dependency

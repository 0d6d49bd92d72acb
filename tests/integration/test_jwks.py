"""Tokens of an identity provider, verified through its JWKS URL (served here on loopback)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from support import T0

from shared.auth import TokenVerifier
from shared.clock import FrozenClock
from shared.config import ServiceSettings
from shared.errors import Unauthorized

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_url() -> Iterator[str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key())) | {"kid": "idp-1", "use": "sig"}
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def idp_token(role: str = "manager", key: rsa.RSAPrivateKey = KEY, **claims: object) -> str:
    payload = {
        "iss": "closeloop",
        "aud": "closeloop",
        "sub": "mia",
        "role": role,
        "journeys": ["borrow"],
        "exp": int((T0 + timedelta(hours=1)).timestamp()),
        **claims,
    }
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "idp-1"})


def test_a_token_signed_by_the_identity_provider_is_accepted(jwks_url: str) -> None:
    verifier = TokenVerifier(ServiceSettings(auth_jwks_url=jwks_url), FrozenClock(T0))
    principal = verifier.verify(idp_token())
    assert (principal.subject, principal.role, principal.journeys) == (
        "mia",
        "manager",
        ("borrow",),
    )


def test_a_token_signed_by_another_key_is_refused(jwks_url: str) -> None:
    verifier = TokenVerifier(ServiceSettings(auth_jwks_url=jwks_url), FrozenClock(T0))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized):
        verifier.verify(idp_token(key=other))


def test_a_local_hs256_token_is_refused_when_jwks_is_configured(jwks_url: str) -> None:
    settings = ServiceSettings(auth_jwks_url=jwks_url)
    forged = jwt.encode(
        {"iss": "closeloop", "aud": "closeloop", "sub": "x", "role": "admin", "exp": 4102444800},
        settings.auth_signing_key,
        algorithm="HS256",
        headers={"kid": "idp-1"},
    )
    with pytest.raises(Unauthorized):
        TokenVerifier(settings, FrozenClock(T0)).verify(forged)


def test_an_expired_identity_provider_token_is_refused(jwks_url: str) -> None:
    clock = FrozenClock(T0 + timedelta(hours=2))
    with pytest.raises(Unauthorized, match="expired"):
        TokenVerifier(ServiceSettings(auth_jwks_url=jwks_url), clock).verify(idp_token())

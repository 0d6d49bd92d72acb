"""Shared foundations: clock, ids, auth tokens, settings, JSON logs and rate limiting."""

from __future__ import annotations

import io
import itertools
import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import pytest
from pydantic import ValidationError
from support import T0

from shared.auth import ROLES, TokenVerifier, issue_token
from shared.clock import FrozenClock
from shared.config import DEV_SIGNING_KEY, ServiceSettings
from shared.errors import Unauthorized
from shared.ids import new_id
from shared.logging import configure_logging, correlated, redact
from shared.ratelimit import ClientRateLimiter, RateLimited

KEY = "unit-test-signing-key-0123456789abcdef"

# --- clock -----------------------------------------------------------------------------------


def test_frozen_clock_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        FrozenClock(datetime(2026, 11, 23, 9, 0))  # naive on purpose


def test_frozen_clock_reports_utc_for_any_aware_start() -> None:
    clock = FrozenClock(datetime(2026, 11, 23, 10, 0, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == T0
    assert clock.now().utcoffset() == timedelta(0)


def test_frozen_clock_only_moves_when_advanced() -> None:
    clock = FrozenClock(T0)
    assert clock.now() == clock.now() == T0
    assert clock.advance(timedelta(minutes=5)) == T0 + timedelta(minutes=5)
    assert clock.now() == T0 + timedelta(minutes=5)
    clock.advance(timedelta(hours=1))
    assert clock.now() == T0 + timedelta(hours=1, minutes=5)
    assert clock.now().tzinfo is not None


def test_frozen_clock_set_refuses_naive_datetimes() -> None:
    clock = FrozenClock(T0)
    with pytest.raises(ValueError, match="aware"):
        clock.set(datetime(2026, 11, 23, 9, 0))  # naive on purpose


# --- ids -------------------------------------------------------------------------------------


def test_new_id_is_a_uuid7() -> None:
    value = new_id()
    assert isinstance(value, uuid.UUID)
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_new_ids_increase_over_successive_calls() -> None:
    ids = [new_id() for _ in range(2000)]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert all(str(a) < str(b) for a, b in itertools.pairwise(ids))


# --- auth ------------------------------------------------------------------------------------


@pytest.fixture
def settings() -> ServiceSettings:
    return ServiceSettings(auth_signing_key=KEY, auth_jwks_url=None)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.mark.parametrize("role", ROLES)
def test_token_round_trip(settings: ServiceSettings, clock: FrozenClock, role: str) -> None:
    token = issue_token(settings, clock, role=role, subject="o-kim", journeys=["cards", "loans"])

    principal = TokenVerifier(settings, clock).verify(token)

    assert principal.role == role
    assert principal.subject == "o-kim"
    assert principal.journeys == ("cards", "loans")
    assert principal.is_admin is (role == "admin")


def test_token_without_journeys_has_none(settings: ServiceSettings, clock: FrozenClock) -> None:
    token = issue_token(settings, clock, role="intake-client", subject="cc-1")
    assert TokenVerifier(settings, clock).verify(token).journeys == ()


def test_token_expires_by_the_injected_clock(settings: ServiceSettings, clock: FrozenClock) -> None:
    token = issue_token(settings, clock, role="owner", subject="o-kim", ttl=timedelta(minutes=10))
    verifier = TokenVerifier(settings, clock)

    clock.advance(timedelta(minutes=9, seconds=59))
    assert verifier.verify(token).subject == "o-kim"

    clock.advance(timedelta(seconds=1))
    with pytest.raises(Unauthorized, match="expired") as exc:
        verifier.verify(token)
    assert exc.value.status == 401
    assert exc.value.extra["headers"] == {"WWW-Authenticate": "Bearer"}


def test_token_signed_with_another_key_is_refused(
    settings: ServiceSettings, clock: FrozenClock
) -> None:
    other = ServiceSettings(auth_signing_key="another-signing-key-0123456789abcdef")
    token = issue_token(other, clock, role="admin", subject="mallory")
    with pytest.raises(Unauthorized):
        TokenVerifier(settings, clock).verify(token)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c"])
def test_garbage_token_is_refused(
    settings: ServiceSettings, clock: FrozenClock, token: str
) -> None:
    with pytest.raises(Unauthorized):
        TokenVerifier(settings, clock).verify(token)


def test_issue_token_refuses_an_unknown_role(settings: ServiceSettings, clock: FrozenClock) -> None:
    with pytest.raises(ValueError, match="superuser"):
        issue_token(settings, clock, role="superuser", subject="x")


def _signed(settings: ServiceSettings, clock: FrozenClock, **claims: Any) -> str:
    now = int(clock.now().timestamp())
    body = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": "x",
        "iat": now,
        "exp": now + 3600,
        **claims,
    }
    return jwt.encode({k: v for k, v in body.items() if v is not None}, KEY, algorithm="HS256")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"role": "superuser"}, id="unknown-role"),
        pytest.param({"role": None}, id="no-role"),
        pytest.param({"role": "admin", "aud": "someone-else"}, id="other-audience"),
        pytest.param({"role": "admin", "iss": "someone-else"}, id="other-issuer"),
        pytest.param({"role": "admin", "sub": None}, id="no-subject"),
        pytest.param({"role": "admin", "exp": None}, id="no-expiry"),
    ],
)
def test_validly_signed_token_with_bad_claims_is_refused(
    settings: ServiceSettings, clock: FrozenClock, claims: dict[str, Any]
) -> None:
    token = _signed(settings, clock, **claims)
    with pytest.raises(Unauthorized):
        TokenVerifier(settings, clock).verify(token)


def test_unsigned_token_is_refused(settings: ServiceSettings, clock: FrozenClock) -> None:
    now = int(clock.now().timestamp())
    claims = {"iss": "closeloop", "aud": "closeloop", "sub": "x", "role": "admin", "exp": now + 60}
    token = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(Unauthorized):
        TokenVerifier(settings, clock).verify(token)


# --- settings --------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLOSELOOP_ENV", "CLOSELOOP_AUTH_SIGNING_KEY", "CLOSELOOP_AUTH_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("clean_env")
def test_prod_refuses_the_default_dev_signing_key() -> None:
    with pytest.raises(ValidationError, match="CLOSELOOP_AUTH_SIGNING_KEY"):
        ServiceSettings(env="prod")


@pytest.mark.usefixtures("clean_env")
def test_prod_refuses_the_dev_key_even_when_given_explicitly() -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(env="prod", auth_signing_key=DEV_SIGNING_KEY)


@pytest.mark.usefixtures("clean_env")
def test_prod_starts_with_a_secret_key() -> None:
    settings = ServiceSettings(env="prod", auth_signing_key=KEY)
    assert settings.env == "prod"
    assert settings.auth_signing_key == KEY


@pytest.mark.usefixtures("clean_env")
def test_prod_starts_with_an_identity_provider_instead() -> None:
    settings = ServiceSettings(env="prod", auth_jwks_url="https://idp.example.com/jwks.json")
    assert settings.auth_jwks_url == "https://idp.example.com/jwks.json"


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("env", ["dev", "test"])
def test_dev_and_test_accept_the_dev_key(env: str) -> None:
    assert ServiceSettings(env=env).auth_signing_key == DEV_SIGNING_KEY


@pytest.mark.usefixtures("clean_env")
def test_prod_check_also_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOSELOOP_ENV", "prod")
    with pytest.raises(ValidationError):
        ServiceSettings()
    monkeypatch.setenv("CLOSELOOP_AUTH_SIGNING_KEY", KEY)
    assert ServiceSettings().env == "prod"


# --- logging ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to ada.lovelace+cards@example.co.uk now", "write to [email] now"),
        ("from ADA@Example.COM", "from [email]"),
        ("call +44 20 7946 0958 today", "call [phone] today"),
        ("sms 0171/5551234", "sms [phone]"),
        ("a@b.io or +1 415 555 0100", "[email] or [phone]"),
    ],
)
def test_redact_masks_emails_and_phone_numbers(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "secret"),
    [("call (555) 010-4477", "010-4477"), ("tel:+4915112345678", "12345678"), ("x@y.de", "x@y")],
)
def test_redact_removes_the_contact_detail_whatever_its_shape(text: str, secret: str) -> None:
    assert secret not in redact(text)


@pytest.mark.parametrize("text", ["complaint received", "severity high, 3 promises", "csat 5"])
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "due 2026-11-23",
        "at 2026-11-23 09:00:00,123",
        "complaint 01936754-2231-7abc-8def-0123456789ab",
    ],
)
def test_redact_leaves_dates_and_ids_alone(text: str) -> None:
    assert redact(text) == text


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """configure_logging onto a buffer; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    buf = io.StringIO()
    configure_logging("intake", stream=buf)
    try:
        yield buf
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def records(buf: io.StringIO) -> list[dict[str, Any]]:
    lines = buf.getvalue().splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


def test_logs_are_one_json_object_per_line(log_stream: io.StringIO) -> None:
    log = logging.getLogger("closeloop.test")
    log.info("first")
    log.warning("second\nwith a newline")

    first, second = records(log_stream)

    assert first["message"] == "first"
    assert first["level"] == "INFO"
    assert first["logger"] == "closeloop.test"
    assert first["service"] == "intake"
    assert second["message"] == "second\nwith a newline"
    assert second["level"] == "WARNING"


def test_logs_carry_the_correlation_id_only_inside_correlated(log_stream: io.StringIO) -> None:
    log = logging.getLogger("closeloop.test")
    with correlated("abc"):
        log.info("inside")
    log.info("outside")

    inside, outside = records(log_stream)

    assert inside["correlation_id"] == "abc"
    assert inside["service"] == "intake"
    assert "correlation_id" not in outside
    assert outside["service"] == "intake"


def test_contact_details_never_reach_a_log_line(log_stream: io.StringIO) -> None:
    log = logging.getLogger("closeloop.test")
    with correlated("abc"):
        log.info("mail ada@example.com")
        log.info("customer %s called", "ada@example.com")
        log.info("callback", extra={"to": "+44 20 7946 0958"})

    output = log_stream.getvalue()
    assert "ada@example.com" not in output
    assert "7946" not in output
    first, second, _ = records(log_stream)
    assert first["message"] == "mail [email]"
    assert second["message"] == "customer [email] called"
    assert first["correlation_id"] == "abc"


def test_log_time_and_uuid_correlation_ids_stay_readable(log_stream: io.StringIO) -> None:
    cid = "01936754-2231-7abc-8def-0123456789ab"
    with correlated(cid):
        logging.getLogger("closeloop.test").info("accepted")

    (line,) = records(log_stream)

    assert line["correlation_id"] == cid
    assert re.match(r"\d{4}-\d{2}-\d{2}", line["time"])


# --- rate limiting ---------------------------------------------------------------------------


def test_rate_limit_lets_the_rate_pass_then_refuses_with_retry_after() -> None:
    limiter = ClientRateLimiter("2/minute")
    limiter.check("cc-1")
    limiter.check("cc-1")

    with pytest.raises(RateLimited) as exc:
        limiter.check("cc-1")

    assert exc.value.status == 429
    retry_after = exc.value.extra["headers"]["Retry-After"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 60


def test_rate_limit_counts_each_client_on_its_own() -> None:
    limiter = ClientRateLimiter("2/minute")
    limiter.check("cc-1")
    limiter.check("cc-1")
    with pytest.raises(RateLimited):
        limiter.check("cc-1")

    limiter.check("cc-2")
    limiter.check("cc-2")
    with pytest.raises(RateLimited):
        limiter.check("cc-2")
    with pytest.raises(RateLimited):
        limiter.check("cc-1")

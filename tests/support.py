"""Test support importable from every test module (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from services.intake.bootstrap import IntakeContainer
from services.intake.config import IntakeSettings
from shared.auth import issue_token
from shared.clock import FrozenClock
from shared.worker import Worker

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

# Settings every test uses: fast consumer-group joins (6 s session, ~3 s join) and no back-off
# sleeps between handling attempts.
TEST_KAFKA = {
    "kafka_session_timeout_ms": 6000,
    "kafka_heartbeat_interval_ms": 2000,
    "kafka_fetch_max_wait_ms": 100,
    "consumer_retry_backoff_s": 0.0,
    "consumer_max_attempts": 3,
    "relay_backoff_max_s": 0.2,
    "kafka_request_timeout_ms": 3000,
}


@dataclass
class Intake:
    """Intake under test: its container, an HTTP client, and helpers to act as a client."""

    container: IntakeContainer
    http: TestClient
    clock: FrozenClock

    @property
    def settings(self) -> IntakeSettings:
        return self.container.settings

    def token(self, subject: str = "cc-1", role: str = "intake-client") -> str:
        return issue_token(self.settings, self.clock, role=role, subject=subject)

    def headers(self, subject: str = "cc-1", role: str = "intake-client") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, role)}"}

    def post(self, body: dict[str, Any], subject: str = "cc-1", **headers: str) -> Any:
        return self.http.post("/v1/complaints", json=body, headers=self.headers(subject) | headers)

    def worker(self) -> Worker:
        w = self.container.worker()
        self._workers.append(w)
        return w

    _workers: list[Worker] = field(default_factory=list)


IntakeFactory = Callable[..., Intake]


def complaint(**overrides: Any) -> dict[str, Any]:
    """A valid complaint body; keyword arguments replace fields."""
    body: dict[str, Any] = {
        "channel": "phone",
        "customer": {"ref": "cust-1", "name": "Ada Lovelace", "email": "ada@example.com"},
        "summary": "Card declined at checkout twice",
        "description": "The customer's card was declined although the balance is fine.",
        "product": "Credit card",
        "severity": "high",
        "language": "en",
        "occurred_at": "2026-11-23T08:30:00Z",
    }
    body.update(overrides)
    return body

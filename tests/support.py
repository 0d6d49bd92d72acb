"""Test support importable from every test module (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from services.followup.bootstrap import FollowupContainer
from services.followup.config import FollowupSettings
from services.intake.bootstrap import IntakeContainer
from services.intake.config import IntakeSettings
from services.routing.bootstrap import RoutingContainer
from services.routing.config import RoutingSettings
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


@dataclass
class Routing:
    """Routing under test: container, HTTP client, tokens per role."""

    container: RoutingContainer
    http: TestClient
    clock: FrozenClock
    _workers: list[Worker] = field(default_factory=list)

    @property
    def settings(self) -> RoutingSettings:
        return self.container.settings

    def headers(
        self, subject: str = "admin", role: str = "admin", journeys: tuple[str, ...] = ()
    ) -> dict[str, str]:
        token = issue_token(
            self.settings, self.clock, role=role, subject=subject, journeys=journeys
        )
        return {"Authorization": f"Bearer {token}"}

    def worker(self) -> Worker:
        w = self.container.worker()
        self._workers.append(w)
        return w


RoutingFactory = Callable[..., Routing]


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


def small_catalog(**changes: Any) -> dict[str, Any]:
    """A two-journey catalog (plus triage) for routing tests; keyword arguments replace parts."""
    doc: dict[str, Any] = {
        "journeys": [
            {
                "key": "cards",
                "name": "Cards and payments",
                "manager": "mgr-cards",
                "stages": [{"key": "dispute", "name": "Dispute"}, {"key": "fix", "name": "Fix"}],
                "team": ["ana", "ben", "cho"],
                "strategy": "least_loaded",
            },
            {
                "key": "borrow",
                "name": "Borrow",
                "manager": "mgr-borrow",
                "stages": [{"key": "servicing", "name": "Servicing"}],
                "team": ["dev", "eli"],
                "strategy": "round_robin",
            },
            {
                "key": "triage",
                "name": "Triage",
                "manager": "mgr-cx",
                "stages": [{"key": "sort", "name": "Sort"}],
                "team": ["tia"],
            },
        ],
        "owners": [
            {"key": "ana", "name": "Ana", "department": "Payments", "capacity": 3},
            {"key": "ben", "name": "Ben", "department": "Risk", "capacity": 3, "languages": ["es"]},
            {"key": "cho", "name": "Cho", "department": "Digital", "capacity": 3},
            {"key": "dev", "name": "Dev", "department": "Lending", "capacity": 5},
            {"key": "eli", "name": "Eli", "department": "Operations", "capacity": 5},
            {"key": "tia", "name": "Tia", "department": "Customer Care", "capacity": 50},
        ],
        "rules": [
            {
                "key": "card-disputes",
                "priority": 10,
                "when": {"product": ["Credit card"]},
                "journey": "cards",
                "stage": "dispute",
            },
            {
                "key": "mortgages",
                "priority": 20,
                "when": {"text_any": ["mortgage", "loan"]},
                "journey": "borrow",
                "stage": "servicing",
                "severity": "high",
            },
        ],
    }
    doc.update(changes)
    return doc


@dataclass
class Followup:
    """Followup under test: container, HTTP client, tokens per role."""

    container: FollowupContainer
    http: TestClient
    clock: FrozenClock
    _workers: list[Worker] = field(default_factory=list)

    @property
    def settings(self) -> FollowupSettings:
        return self.container.settings

    def headers(
        self, subject: str = "admin", role: str = "admin", journeys: tuple[str, ...] = ()
    ) -> dict[str, str]:
        token = issue_token(
            self.settings, self.clock, role=role, subject=subject, journeys=journeys
        )
        return {"Authorization": f"Bearer {token}"}

    def worker(self) -> Worker:
        w = self.container.worker()
        self._workers.append(w)
        return w


FollowupFactory = Callable[..., Followup]

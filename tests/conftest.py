"""Fixtures shared by every test layer: broker, databases, intake under a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support import (
    T0,
    TEST_KAFKA,
    Followup,
    FollowupFactory,
    Intake,
    IntakeFactory,
    Routing,
    RoutingFactory,
    small_catalog,
)

from services.followup import MIGRATIONS as FOLLOWUP_MIGRATIONS
from services.followup.api import create_app as create_followup_app
from services.followup.bootstrap import bootstrap as bootstrap_followup
from services.followup.config import FollowupSettings
from services.intake import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.api import create_app
from services.intake.bootstrap import bootstrap
from services.intake.config import IntakeSettings
from services.routing import MIGRATIONS as ROUTING_MIGRATIONS
from services.routing.api import create_app as create_routing_app
from services.routing.bootstrap import bootstrap as bootstrap_routing
from services.routing.config import RoutingSettings
from shared.bus.kafka import ensure_topics
from shared.clock import FrozenClock
from shared.events import topics
from shared.testing.broker import TansuBroker
from shared.testing.plugin import BACKENDS, DatabaseFactory

pytest_plugins = ["shared.testing.plugin"]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
    return str(request.param)


@pytest.fixture
def intake_db(database_factory: DatabaseFactory, backend: str) -> str:
    return database_factory.create(INTAKE_MIGRATIONS, backend)


@pytest.fixture
def intake_factory(intake_db: str, clock: FrozenClock) -> Iterator[IntakeFactory]:
    """Build intake on this test's database; keyword arguments override settings."""
    made: list[Intake] = []

    def make(**overrides: Any) -> Intake:
        settings = IntakeSettings(
            database_url=intake_db,
            kafka_bootstrap=overrides.pop("kafka_bootstrap", "127.0.0.1:9"),
            **{**TEST_KAFKA, "rate_limit": "1000/second", **overrides},
        )
        container = bootstrap(settings, clock)
        client = TestClient(create_app(container=container))
        client.__enter__()
        intake = Intake(container=container, http=client, clock=clock)
        made.append(intake)
        return intake

    yield make
    for intake in made:
        for w in intake._workers:
            w.close()
        intake.http.__exit__(None, None, None)
        intake.container.close()


@pytest.fixture
def intake(intake_factory: IntakeFactory) -> Intake:
    """Intake without a reachable broker: the API never needs one."""
    return intake_factory()


@pytest.fixture
def kafka(broker: TansuBroker, topic_prefix: str) -> dict[str, Any]:
    """Settings overrides for a test's own topics on the session broker (topics created)."""
    overrides = {"kafka_bootstrap": broker.bootstrap, "topic_prefix": topic_prefix}
    settings = IntakeSettings(**overrides)
    ensure_topics(settings, [settings.topic(t) for t in topics.ALL])
    return overrides


@pytest.fixture
def intake_bus(intake_factory: IntakeFactory, kafka: dict[str, Any]) -> Intake:
    """Intake connected to the test broker."""
    return intake_factory(**kafka)


@pytest.fixture
def routing_factory(
    database_factory: DatabaseFactory, backend: str, clock: FrozenClock
) -> Iterator[RoutingFactory]:
    """Routing on its own migrated database with the small test catalog applied."""
    url = database_factory.create(ROUTING_MIGRATIONS, backend)
    made: list[Routing] = []

    def make(catalog: dict[str, Any] | None = None, **overrides: Any) -> Routing:
        settings = RoutingSettings(
            database_url=url,
            kafka_bootstrap=overrides.pop("kafka_bootstrap", "127.0.0.1:9"),
            **{**TEST_KAFKA, **overrides},
        )
        container = bootstrap_routing(settings, clock)
        if not container.service.has_catalog():
            container.service.apply(catalog or small_catalog(), "test")
        client = TestClient(create_routing_app(container=container))
        client.__enter__()
        routing = Routing(container=container, http=client, clock=clock)
        made.append(routing)
        return routing

    yield make
    for routing in made:
        for w in routing._workers:
            w.close()
        routing.http.__exit__(None, None, None)
        routing.container.close()


@pytest.fixture
def routing(routing_factory: RoutingFactory) -> Routing:
    return routing_factory()


@pytest.fixture
def followup_factory(
    database_factory: DatabaseFactory, backend: str, clock: FrozenClock
) -> Iterator[FollowupFactory]:
    """Followup on its own migrated database; keyword arguments override settings."""
    url = database_factory.create(FOLLOWUP_MIGRATIONS, backend)
    made: list[Followup] = []

    def make(**overrides: Any) -> Followup:
        settings = FollowupSettings(
            database_url=url,
            kafka_bootstrap=overrides.pop("kafka_bootstrap", "127.0.0.1:9"),
            **{**TEST_KAFKA, **overrides},
        )
        container = bootstrap_followup(settings, clock)
        client = TestClient(create_followup_app(container=container))
        client.__enter__()
        followup = Followup(container=container, http=client, clock=clock)
        made.append(followup)
        return followup

    yield make
    for followup in made:
        for w in followup._workers:
            w.close()
        followup.http.__exit__(None, None, None)
        followup.container.close()


@pytest.fixture
def followup(followup_factory: FollowupFactory) -> Followup:
    return followup_factory()

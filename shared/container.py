"""What every service's composition root shares: readiness checks and worker assembly."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Table, text
from sqlalchemy.orm import Session, sessionmaker

from shared.bus.consumer import EventConsumer, Handler
from shared.bus.dlq import DeadLetterPublisher
from shared.bus.kafka import Producer, ping
from shared.bus.relay import OutboxRelay
from shared.clock import Clock
from shared.config import ServiceSettings
from shared.db.uow import UnitOfWork
from shared.worker import ConsumerPump, Periodic, RelayPump, Worker


@dataclass
class ServiceContainer:
    settings: Any
    clock: Clock
    engine: Engine
    session_factory: sessionmaker[Session]
    _broker_checked: tuple[float, bool] = field(default=(0.0, False), init=False)

    def database_ready(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def broker_ready(self) -> bool:
        # Cached for a few seconds: probes must not open a broker connection per request.
        checked_at, ok = self._broker_checked
        if time.monotonic() - checked_at > 5:
            ok = ping(self.settings)
            self._broker_checked = (time.monotonic(), ok)
        return ok

    def build_worker(
        self,
        *,
        uow_factory: Callable[[], UnitOfWork],
        outbox: Table,
        inbox: Table,
        group: str,
        topics: list[str],
        handlers: dict[str, Handler],
        periodic: list[Periodic],
    ) -> Worker:
        """Relay + one consumer group + periodic jobs, in one drain()-able loop."""
        s: ServiceSettings = self.settings
        producer = Producer(s, f"{s.service_name}-relay")
        dlq_producer = Producer(s, f"{s.service_name}-dlq")
        relay = OutboxRelay(self.engine, outbox, producer, s, self.clock, s.service_name)
        consumer = EventConsumer(
            settings=s,
            group_id=group,
            topics=topics,
            handlers=handlers,
            uow_factory=uow_factory,
            inbox_table=inbox,
            dead_letters=DeadLetterPublisher(dlq_producer, s, self.clock),
            clock=self.clock,
        )
        return Worker(
            relay=RelayPump(relay, self.engine, outbox),
            consumers=[ConsumerPump(consumer)],
            periodic=periodic,
            idle_sleep_s=s.worker_idle_sleep_s,
            on_close=[producer.close, dlq_producer.close],
        )

    def close(self) -> None:
        self.engine.dispose()

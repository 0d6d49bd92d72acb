"""The worker loop: plain calls to relay, consumers and periodic jobs, so tests can drain it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, Table, func, select

from shared.bus.consumer import EventConsumer
from shared.bus.relay import OutboxRelay

log = logging.getLogger(__name__)


class RelayPump:
    """drain()-able wrapper of the relay: idle when the outbox holds nothing unsent."""

    def __init__(self, relay: OutboxRelay, engine: Engine, table: Table) -> None:
        self.relay = relay
        self._engine = engine
        self._table = table

    def run_once(self) -> int:
        return self.relay.run_once()

    def idle(self) -> bool:
        t = self._table
        with self._engine.connect() as conn:
            pending = conn.execute(
                select(func.count()).select_from(t).where(t.c.sent_at.is_(None))
            ).scalar_one()
        return int(pending) == 0


class ConsumerPump:
    def __init__(self, consumer: EventConsumer) -> None:
        self.consumer = consumer

    def run_once(self) -> int:
        return self.consumer.poll_once()

    def idle(self) -> bool:
        return self.consumer.caught_up()


@dataclass
class Periodic:
    """A job run every `interval_s` seconds (monotonic time), e.g. the reconciliation sweep."""

    name: str
    interval_s: float
    job: Callable[[], int]
    _next: float = field(default=0.0)

    def run_once(self) -> int:
        now = time.monotonic()
        if now < self._next:
            return 0
        self._next = now + self.interval_s
        return self.job()

    def idle(self) -> bool:
        return True


class Worker:
    """Runs every pump once per pass; sleeps briefly only when a whole pass moved nothing."""

    def __init__(
        self,
        relay: RelayPump,
        consumers: list[ConsumerPump],
        periodic: list[Periodic],
        idle_sleep_s: float = 0.05,
        on_close: list[Callable[[], None]] | None = None,
    ) -> None:
        self.relay = relay
        self.consumers = consumers
        self.periodic = periodic
        self._idle_sleep_s = idle_sleep_s
        self._on_close = on_close or []

    @property
    def pumps(self) -> list[RelayPump | ConsumerPump | Periodic]:
        return [self.relay, *self.consumers, *self.periodic]

    def run_once(self) -> int:
        """One pass over every pump (tests drain these passes)."""
        return self._step(self.pumps)

    @staticmethod
    def _step(pumps: Sequence[RelayPump | ConsumerPump | Periodic]) -> int:
        moved = 0
        for pump in pumps:
            try:
                moved += pump.run_once()
            except Exception:
                # One failing part (e.g. the broker away) must not stop the others.
                log.exception("worker step failed", extra={"step": type(pump).__name__})
        return moved

    def run_forever(self, stop: threading.Event) -> None:
        """Relay on a thread of its own, consumers and periodic jobs on this one.

        A consumer poll blocks up to the fetch wait; a relay behind it in the same loop would
        hold every committed event back by that long (measured: ~100 ms of the end-to-end p50).
        """
        log.info("worker started")
        relay = threading.Thread(target=self._relay_forever, args=(stop,), name="relay")
        relay.start()
        others: list[ConsumerPump | Periodic] = [*self.consumers, *self.periodic]
        while not stop.is_set():
            if self._step(others) == 0:
                stop.wait(self._idle_sleep_s)
        relay.join(timeout=30)
        log.info("worker stopping")

    def _relay_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if self._step([self.relay]) == 0:
                stop.wait(self._idle_sleep_s)

    def close(self) -> None:
        for consumer in self.consumers:
            consumer.consumer.close()
        self.relay.relay.close()
        for fn in self._on_close:
            fn()

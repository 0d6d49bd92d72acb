"""Idempotent consumer: inbox + effects in one transaction, offsets committed afterwards.

A message that keeps failing is moved to the dead-letter topic after bounded attempts, so it
never blocks its partition. Messages that are not valid events go there at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pydantic import ValidationError
from sqlalchemy import Table

from shared.bus import inbox
from shared.bus.dlq import DeadLetterPublisher
from shared.bus.kafka import TP, Consumer
from shared.clock import Clock
from shared.config import ServiceSettings
from shared.db.uow import UnitOfWork
from shared.events.envelope import Envelope, EnvelopeError, KafkaMessage
from shared.events.models import EventModel
from shared.events.registry import UnknownEventType, parse_data
from shared.logging import correlated
from shared.metrics import (
    CONSUMER_LAG,
    EVENTS_DEAD_LETTERED,
    EVENTS_DUPLICATE,
    EVENTS_FAILED,
    EVENTS_HANDLED,
)

log = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, Envelope, EventModel], None]


class EventConsumer:
    """Polls a consumer group and dispatches events by name (e.g. `complaint.assigned`)."""

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        group_id: str,
        topics: list[str],
        handlers: dict[str, Handler],
        uow_factory: Callable[[], UnitOfWork],
        inbox_table: Table,
        dead_letters: DeadLetterPublisher,
        clock: Clock,
    ) -> None:
        self.group_id = group_id
        self._settings = settings
        self._handlers = handlers
        self._uow_factory = uow_factory
        self._inbox = inbox_table
        self._dlq = dead_letters
        self._clock = clock
        self._topics = topics
        self._client: Consumer | None = None

    @property
    def _consumer(self) -> Consumer:
        # Created on first use so a worker can start before the broker is reachable.
        if self._client is None:
            self._client = Consumer(self._settings, self.group_id, self._topics)
        return self._client

    def poll_once(self, timeout_ms: int | None = None) -> int:
        """Handle one poll's worth of records; return how many were consumed."""
        timeout = self._settings.kafka_fetch_max_wait_ms if timeout_ms is None else timeout_ms
        messages = self._consumer.poll(timeout)
        done: dict[TP, int] = {}
        stalled: set[TP] = set()
        for msg in messages:
            assert msg.partition is not None
            assert msg.offset is not None
            tp = (msg.topic, msg.partition)
            if tp in stalled:
                continue
            if not self._process(msg):
                # Could not even dead-letter it (broker gone): rewind and try again next poll.
                self._consumer.seek(msg.topic, msg.partition, msg.offset)
                stalled.add(tp)
                continue
            done[tp] = msg.offset + 1
        self._consumer.commit(done)
        self._report_lag()
        return sum(1 for m in messages if (m.topic, m.partition) not in stalled)

    def _process(self, msg: KafkaMessage) -> bool:
        """Handle or dead-letter one message; False only if it could be neither."""
        try:
            envelope = Envelope.from_kafka(msg)
        except (EnvelopeError, UnicodeDecodeError) as exc:
            return self._dead_letter(msg, "unknown", f"malformed event: {exc}", 1)
        name = _event_name(envelope.type)
        handler = self._handlers.get(name) if name else None
        if handler is None:
            return True  # another service's event on a shared topic
        with correlated(envelope.correlationid):
            try:
                event = parse_data(envelope)
            except (ValidationError, UnknownEventType) as exc:
                return self._dead_letter(msg, envelope.type, f"invalid event body: {exc}", 1)
            except Exception as exc:  # a faulty upcaster: retrying cannot help either
                return self._dead_letter(msg, envelope.type, f"cannot read event: {exc!r}", 1)
            attempts = self._settings.consumer_max_attempts
            backoff = self._settings.consumer_retry_backoff_s
            for attempt in range(1, attempts + 1):
                try:
                    self._handle(envelope, event, handler)
                    return True
                except Exception as exc:
                    EVENTS_FAILED.labels(self.group_id, envelope.type).inc()
                    log.warning(
                        "handling %s failed (attempt %d/%d)",
                        envelope.type,
                        attempt,
                        attempts,
                        extra={"event_id": envelope.id, "error": repr(exc)},
                    )
                    if attempt == attempts:
                        return self._dead_letter(msg, envelope.type, repr(exc), attempt)
                    if backoff:
                        time.sleep(backoff * 2 ** (attempt - 1))
        return True

    def _handle(self, envelope: Envelope, event: EventModel, handler: Handler) -> None:
        with self._uow_factory() as uow:
            fresh = inbox.record(
                uow.session,
                self._inbox,
                self.group_id,
                envelope.id,
                envelope.type,
                self._clock.now(),
            )
            if not fresh:
                EVENTS_DUPLICATE.labels(self.group_id, envelope.type).inc()
                log.info("duplicate %s skipped", envelope.type, extra={"event_id": envelope.id})
                return
            handler(uow, envelope, event)
            uow.commit()
        EVENTS_HANDLED.labels(self.group_id, envelope.type).inc()

    def _dead_letter(self, msg: KafkaMessage, event_type: str, error: str, attempts: int) -> bool:
        try:
            self._dlq.publish(msg, self.group_id, error, attempts)
        except Exception:
            log.exception("could not publish to the dead-letter topic")
            return False
        EVENTS_DEAD_LETTERED.labels(self.group_id, event_type).inc()
        log.error(
            "event dead-lettered",
            extra={
                "topic": msg.topic,
                "partition": msg.partition,
                "offset": msg.offset,
                "error": error,
            },
        )
        return True

    def _report_lag(self) -> None:
        for (topic, partition), lag in self._consumer.lag().items():
            if lag is not None:
                CONSUMER_LAG.labels(self.group_id, topic, str(partition)).set(lag)

    def lag(self) -> dict[TP, int | None]:
        return self._client.lag() if self._client is not None else {}

    def caught_up(self) -> bool:
        """True once the group has partitions and has read each to its high watermark."""
        lag = self.lag()
        return bool(lag) and all(v == 0 for v in lag.values())

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _event_name(ce_type: str) -> str | None:
    """`closeloop.complaint.received.v1` -> `complaint.received`."""
    if not ce_type.startswith("closeloop.") or ".v" not in ce_type:
        return None
    return ce_type[len("closeloop.") : ce_type.rindex(".v")]

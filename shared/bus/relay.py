"""Outbox relay: publishes committed outbox rows in order and marks them sent once acknowledged."""

from __future__ import annotations

import logging
import time
import zlib
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, select, text, update

from shared.bus.kafka import Producer
from shared.clock import Clock
from shared.config import ServiceSettings
from shared.events.envelope import KafkaMessage
from shared.metrics import OUTBOX_ERRORS, OUTBOX_OLDEST_AGE, OUTBOX_PENDING, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)

_PURGE_EVERY_S = 600.0


class OutboxRelay:
    """One pass = read a batch of unsent rows, produce them, mark the acknowledged prefix sent.

    Only the contiguous acknowledged prefix is marked: rows after a failure are sent again in
    their original order on the next pass (consumers drop the duplicates through their inbox), so
    order per key survives a failure mid-batch. On PostgreSQL one relay per database holds a
    session advisory lock and publishes; other replicas stand by and take over if it dies.
    """

    def __init__(
        self,
        engine: Engine,
        table: Table,
        producer: Producer,
        settings: ServiceSettings,
        clock: Clock,
        service: str,
    ) -> None:
        self._engine = engine
        self._table = table
        self._producer = producer
        self._settings = settings
        self._clock = clock
        self._service = service
        self._lock_conn: Connection | None = None
        self._lock_key = zlib.crc32(f"closeloop-relay:{service}".encode())
        self._failures = 0
        self._retry_at = 0.0
        self._last_purge = 0.0

    def run_once(self) -> int:
        """Publish one batch; return how many rows were published."""
        if time.monotonic() < self._retry_at or not self._is_leader():
            return 0
        rows = self._pending()
        if not rows:
            return 0
        messages = [self._message(r) for r in rows]
        results = self._producer.send_all(
            messages, timeout_s=self._settings.kafka_request_timeout_ms / 1000
        )
        sent = []
        for row, err in zip(rows, results, strict=True):
            if err is not None:
                self._record_failure(row, err)
                break
            sent.append(row.seq)
        if sent:
            self._mark_sent(sent)
            OUTBOX_PUBLISHED.labels(self._service).inc(len(sent))
        if len(sent) == len(rows):
            self._failures = 0
        self._maybe_purge()
        return len(sent)

    def _pending(self) -> list[Any]:
        t = self._table
        with self._engine.begin() as conn:
            rows = list(
                conn.execute(
                    select(t)
                    .where(t.c.sent_at.is_(None))
                    .order_by(t.c.seq)
                    .limit(self._settings.relay_batch_size)
                )
            )
            if rows:
                pending = len(rows)
                if pending == self._settings.relay_batch_size:
                    pending = conn.execute(
                        select(func.count()).select_from(t).where(t.c.sent_at.is_(None))
                    ).scalar_one()
                OUTBOX_PENDING.labels(self._service).set(pending)
                age = (self._clock.now() - rows[0].created_at).total_seconds()
                OUTBOX_OLDEST_AGE.labels(self._service).set(max(0.0, age))
            else:
                OUTBOX_PENDING.labels(self._service).set(0)
                OUTBOX_OLDEST_AGE.labels(self._service).set(0)
        return rows

    @staticmethod
    def _message(row: Any) -> KafkaMessage:
        return KafkaMessage(
            topic=row.topic,
            key=row.key.encode() if row.key is not None else None,
            value=row.payload.encode(),
            headers=[(k, v.encode()) for k, v in row.headers],
        )

    def _mark_sent(self, seqs: list[int]) -> None:
        t = self._table
        with self._engine.begin() as conn:
            conn.execute(update(t).where(t.c.seq.in_(seqs)).values(sent_at=self._clock.now()))

    def _record_failure(self, row: Any, err: Exception) -> None:
        self._failures += 1
        delay = min(self._settings.relay_backoff_max_s, 0.5 * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + delay
        OUTBOX_ERRORS.labels(self._service).inc()
        log.warning(
            "outbox publish failed; retrying in %.1fs",
            delay,
            extra={"event_id": row.event_id, "error": str(err), "attempts": row.attempts + 1},
        )
        t = self._table
        with self._engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.seq == row.seq)
                .values(attempts=t.c.attempts + 1, last_error=str(err)[:2000])
            )

    def _is_leader(self) -> bool:
        if self._engine.dialect.name != "postgresql":
            return True  # SQLite: one worker process per database file
        try:
            if self._lock_conn is not None:
                self._lock_conn.execute(text("SELECT 1"))
                return True
            conn = self._engine.connect()
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": self._lock_key}
            ).scalar_one()
            conn.commit()
            if got:
                self._lock_conn = conn
                return True
            conn.close()
            return False
        except Exception:
            log.warning("relay lost its database connection", exc_info=True)
            self._release()
            return False

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < _PURGE_EVERY_S:
            return
        self._last_purge = now
        cutoff = self._clock.now() - timedelta(hours=self._settings.outbox_retention_hours)
        t = self._table
        with self._engine.begin() as conn:
            conn.execute(delete(t).where(t.c.sent_at.is_not(None), t.c.sent_at < cutoff))

    def _release(self) -> None:
        if self._lock_conn is not None:
            try:
                self._lock_conn.close()
            except Exception:
                log.debug("closing relay lock connection failed", exc_info=True)
            self._lock_conn = None

    def close(self) -> None:
        self._release()

"""The only module that imports kafka-python. Everything else speaks `KafkaMessage`.

kafka-python's defaults are wrong for closeloop, so every client here sets them deliberately:
- consumers: `enable_auto_commit=False` (the offset is committed only after the database commit
  that recorded the event, otherwise a crash in between loses it); `auto_offset_reset="earliest"`
  (a new consumer group must see events published before it first joined, not only later ones);
  the session timeout comes from settings (the 45 s default makes each group join take ~23 s).
- producers: `acks="all"` + idempotence (no loss, no duplicates from retries, order per key);
  `max_block_ms` bounded so a relay facing a dead broker fails fast and backs off.
- all: `bootstrap_timeout_ms` bounded (default 30 s): a dead broker must not stall the worker
  loop or a readiness probe for half a minute.
- both: `allow_auto_create_topics=False`; a broker that lost its state would otherwise recreate
  topics with its own defaults (4 partitions on Tansu). Topics are created by `ensure_topics`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from shared.config import ServiceSettings
from shared.events.envelope import KafkaMessage

log = logging.getLogger(__name__)

TP = tuple[str, int]


class BrokerError(Exception):
    """The broker could not be reached or refused a request."""


def _admin(settings: ServiceSettings) -> Any:
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{settings.service_name}-admin",
        request_timeout_ms=settings.kafka_request_timeout_ms,
        bootstrap_timeout_ms=settings.kafka_request_timeout_ms,
    )


def ensure_topics(settings: ServiceSettings, names: Iterable[str]) -> list[str]:
    """Create the named (full) topics that do not exist yet; return the ones created."""
    try:
        admin = _admin(settings)
    except KafkaError as exc:
        raise BrokerError(f"cannot reach the broker at {settings.kafka_bootstrap}: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        missing = [n for n in names if n not in existing]
        created = []
        for name in missing:
            try:
                admin.create_topics(
                    [NewTopic(name, settings.topic_partitions, settings.topic_replication)]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    except KafkaError as exc:
        raise BrokerError(str(exc)) from exc
    finally:
        admin.close()


def ping(settings: ServiceSettings, timeout_s: float = 2.0) -> bool:
    """True when the broker answers a metadata request."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap,
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(timeout_s * 1000),  # default 30 s: a probe must answer fast
        )
    except Exception:  # kafka-python raises several unrelated types while connecting
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


class Producer:
    """Idempotent, acks=all producer that rebuilds itself after a fatal error.

    kafka-python's idempotent producer stays broken after e.g. a broker restart
    (UnknownProducerIdError forever), so any failure closes it and the next call makes a new one.
    """

    def __init__(self, settings: ServiceSettings, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        self._producer: Any = None

    def _get(self) -> Any:
        if self._producer is None:
            s = self._settings
            try:
                self._producer = KafkaProducer(
                    bootstrap_servers=s.kafka_bootstrap,
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=True,
                    allow_auto_create_topics=False,
                    linger_ms=5,
                    batch_size=256 * 1024,
                    max_block_ms=s.kafka_request_timeout_ms,
                    bootstrap_timeout_ms=s.kafka_request_timeout_ms,
                    request_timeout_ms=s.kafka_request_timeout_ms,
                    delivery_timeout_ms=max(3 * s.kafka_request_timeout_ms, 30_000),
                )
            except KafkaError as exc:
                raise BrokerError(f"cannot reach the broker: {exc}") from exc
        return self._producer

    def send_all(self, messages: list[KafkaMessage], timeout_s: float) -> list[Exception | None]:
        """Send in order; return, per message, None when the broker acknowledged it."""
        results: list[Exception | None] = [None] * len(messages)
        futures: list[Any] = []
        try:
            producer = self._get()
            for msg in messages:
                futures.append(
                    producer.send(
                        msg.topic,
                        key=msg.key,
                        value=msg.value,
                        headers=list(msg.headers),
                        partition=msg.partition,
                    )
                )
            producer.flush(timeout=timeout_s)
        except Exception as exc:  # a send that cannot even be queued fails all that follow
            for i in range(len(futures), len(messages)):
                results[i] = exc
        failed = False
        for i, fut in enumerate(futures):
            try:
                fut.get(timeout=max(0.0, timeout_s))
            except Exception as exc:
                results[i] = exc
                failed = True
        if failed or any(results):
            self.reset()
        return results

    def send(self, msg: KafkaMessage, timeout_s: float = 10.0) -> None:
        """Send one message and wait for the acknowledgement."""
        (err,) = self.send_all([msg], timeout_s)
        if err is not None:
            raise BrokerError(str(err)) from err

    def reset(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:
                log.debug("closing a broken producer failed", exc_info=True)
            self._producer = None

    def close(self) -> None:
        self.reset()


def _to_message(record: Any) -> KafkaMessage:
    return KafkaMessage(
        topic=record.topic,
        key=record.key,
        value=record.value,
        headers=[(k, v) for k, v in (record.headers or [])],
        partition=record.partition,
        offset=record.offset,
    )


class Consumer:
    """A consumer-group member with manual offset commits."""

    def __init__(self, settings: ServiceSettings, group_id: str, topics: list[str]) -> None:
        s = settings
        self.group_id = group_id
        self.topics = topics
        self._session_timeout_ms = s.kafka_session_timeout_ms
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=s.kafka_bootstrap,
                client_id=f"{s.service_name}-{group_id}",
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                allow_auto_create_topics=False,
                session_timeout_ms=s.kafka_session_timeout_ms,
                heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
                fetch_max_wait_ms=s.kafka_fetch_max_wait_ms,
                max_poll_records=s.kafka_max_poll_records,
                bootstrap_timeout_ms=s.kafka_request_timeout_ms,
                request_timeout_ms=max(
                    s.kafka_request_timeout_ms, s.kafka_session_timeout_ms + 5000
                ),
            )
        except KafkaError as exc:
            raise BrokerError(f"cannot reach the broker: {exc}") from exc
        self._consumer.subscribe(topics)

    def poll(self, timeout_ms: int) -> list[KafkaMessage]:
        """The next records, in partition order."""
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        if not batches and not self._consumer.assignment():
            batches = self._join()
        out: list[KafkaMessage] = []
        for records in batches.values():
            out.extend(_to_message(r) for r in records)
        return out

    def _join(self) -> Any:
        """Poll back to back until the group join completes (at most one session timeout).

        kafka-python 3 throws away a JoinGroup/SyncGroup round that completes while nobody is
        inside poll() and starts a new one; a worker that also relays and handles between short
        polls could rejoin forever (seen here: 30 s without an assignment). Staying inside
        poll() until assigned lets the join finish once; this only happens at start-up and after
        a rebalance.
        """
        deadline = time.monotonic() + self._session_timeout_ms / 1000
        while not self._consumer.assignment() and time.monotonic() < deadline:
            batches = self._consumer.poll(timeout_ms=200)
            if batches:
                return batches
        return {}

    def commit(self, offsets: dict[TP, int]) -> None:
        """Commit the next offset to read per partition."""
        if offsets:
            self._consumer.commit(
                {
                    TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                    for (t, p), o in offsets.items()
                }
            )

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self._consumer.seek(TopicPartition(topic, partition), offset)

    def assignment(self) -> set[TP]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def lag(self) -> dict[TP, int | None]:
        """Per partition: fetch high watermark minus position (None before the first fetch).

        The high watermark comes from the last fetch response: Tansu's `end_offsets()` is wrong.
        """
        out: dict[TP, int | None] = {}
        for tp in self._consumer.assignment():
            hw = self._consumer.highwater(tp)
            if hw is None:
                out[(tp.topic, tp.partition)] = None
                continue
            pos = self._consumer.position(tp)
            out[(tp.topic, tp.partition)] = max(0, hw - pos)
        return out

    def close(self) -> None:
        try:
            self._consumer.close(autocommit=False)
        except Exception:
            log.debug("consumer close failed", exc_info=True)


def read_topic(
    settings: ServiceSettings, topic: str, timeout_s: float = 5.0
) -> Iterator[KafkaMessage]:
    """Every message of a topic from the beginning up to now, without a consumer group."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        allow_auto_create_topics=False,
        fetch_max_wait_ms=100,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        done: set[Any] = set()
        while len(done) < len(tps) and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=200)
            for records in batches.values():
                for r in records:
                    yield _to_message(r)
            for tp in tps:
                hw = consumer.highwater(tp)
                if hw is not None and consumer.position(tp) >= hw:
                    done.add(tp)
    finally:
        consumer.close()

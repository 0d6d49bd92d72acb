"""Dead letters: publish a failed message with its error; list and replay them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.bus.kafka import Producer, read_topic
from shared.clock import Clock
from shared.config import ServiceSettings
from shared.events import topics
from shared.events.envelope import KafkaMessage

_PREFIX = "dlq_"


class DeadLetterPublisher:
    def __init__(self, producer: Producer, settings: ServiceSettings, clock: Clock) -> None:
        self._producer = producer
        self._topic = settings.topic(topics.DEAD_LETTERS)
        self._clock = clock

    def publish(self, msg: KafkaMessage, group: str, error: str, attempts: int) -> None:
        """Send the original key, value and headers plus where and why it failed."""
        extra = {
            "error": error[:4000],
            "original_topic": msg.topic,
            "original_partition": str(msg.partition),
            "original_offset": str(msg.offset),
            "consumer_group": group,
            "attempts": str(attempts),
            "failed_at": self._clock.now().isoformat(),
        }
        headers = [h for h in msg.headers if not h[0].startswith(_PREFIX)]
        headers += [(_PREFIX + k, v.encode()) for k, v in extra.items()]
        self._producer.send(
            KafkaMessage(topic=self._topic, key=msg.key, value=msg.value, headers=headers)
        )


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    partition: int
    event_id: str | None
    event_type: str | None
    error: str
    original_topic: str
    original_offset: str
    consumer_group: str
    failed_at: datetime | None
    message: KafkaMessage

    def original(self) -> KafkaMessage:
        """The message as it was first published, ready to be sent again."""
        return KafkaMessage(
            topic=self.original_topic,
            key=self.message.key,
            value=self.message.value,
            headers=[h for h in self.message.headers if not h[0].startswith(_PREFIX)],
        )


def list_dead_letters(settings: ServiceSettings) -> list[DeadLetter]:
    """Every message in the dead-letter topic, oldest first per partition."""
    out = []
    for msg in read_topic(settings, settings.topic(topics.DEAD_LETTERS)):
        failed = msg.header(_PREFIX + "failed_at")
        out.append(
            DeadLetter(
                offset=msg.offset or 0,
                partition=msg.partition or 0,
                event_id=msg.header("ce_id"),
                event_type=msg.header("ce_type"),
                error=msg.header(_PREFIX + "error") or "",
                original_topic=msg.header(_PREFIX + "original_topic") or "",
                original_offset=msg.header(_PREFIX + "original_offset") or "",
                consumer_group=msg.header(_PREFIX + "consumer_group") or "",
                failed_at=datetime.fromisoformat(failed) if failed else None,
                message=msg,
            )
        )
    return out


def replay(producer: Producer, letters: list[DeadLetter]) -> int:
    """Publish each dead letter back to its original topic; consumers' inboxes drop repeats."""
    for letter in letters:
        if letter.original_topic:
            producer.send(letter.original())
    return len(letters)

"""CloudEvents 1.0 envelope and its Kafka protocol binding in binary content mode."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from shared.ids import new_id

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
_CE_ATTRS = ("id", "source", "type", "specversion", "time", "subject")
_EXTENSIONS = ("correlationid", "causationid")


class EnvelopeError(ValueError):
    """A Kafka message that is not a valid CloudEvent of ours."""


@dataclass(frozen=True)
class KafkaMessage:
    """What travels on the wire: topic, key, headers and value bytes."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    partition: int | None = None
    offset: int | None = None

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode("utf-8", "replace") if v is not None else None
        return None


@dataclass(frozen=True)
class Envelope:
    """One CloudEvent: attributes plus the JSON `data` body."""

    id: str
    source: str
    type: str
    time: datetime
    subject: str | None
    data: dict[str, Any]
    correlationid: str | None = None
    causationid: str | None = None
    key: str | None = None
    specversion: str = SPECVERSION

    @classmethod
    def new(
        cls,
        *,
        source: str,
        data: BaseModel,
        time: datetime,
        key: str | None,
        subject: str | None = None,
        correlationid: str | None = None,
        causationid: str | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Envelope:
        """Wrap an event model; its `ce_type` comes from the model's `event_type`."""
        ce_type: str = getattr(data, "ce_type")  # noqa: B009 - set on every event model
        return cls(
            id=str(event_id or new_id()),
            source=source,
            type=ce_type,
            time=time.astimezone(UTC),
            subject=subject,
            data=data.model_dump(mode="json", exclude_none=False),
            correlationid=correlationid,
            causationid=causationid,
            key=key,
        )

    def headers(self) -> list[tuple[str, bytes]]:
        """Binary-mode headers: `ce_*` attributes and extensions, plus `content-type`."""
        values: dict[str, str | None] = {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "specversion": self.specversion,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "subject": self.subject,
            "correlationid": self.correlationid,
            "causationid": self.causationid,
        }
        out = [(f"ce_{k}", v.encode()) for k, v in values.items() if v is not None]
        out.append(("content-type", CONTENT_TYPE.encode()))
        return out

    def body(self) -> bytes:
        return json.dumps(self.data, separators=(",", ":"), ensure_ascii=False).encode()

    def to_kafka(self, topic: str) -> KafkaMessage:
        return KafkaMessage(
            topic=topic,
            key=self.key.encode() if self.key is not None else None,
            value=self.body(),
            headers=self.headers(),
        )

    @classmethod
    def from_kafka(cls, msg: KafkaMessage) -> Envelope:
        """Parse a binary-mode CloudEvent; raises EnvelopeError when it is not one."""
        attrs = {name: msg.header(f"ce_{name}") for name in (*_CE_ATTRS, *_EXTENSIONS)}
        missing = [n for n in ("id", "source", "type", "specversion") if not attrs[n]]
        if missing:
            raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
        if attrs["specversion"] != SPECVERSION:
            raise EnvelopeError(f"unsupported specversion {attrs['specversion']}")
        if msg.value is None:
            raise EnvelopeError("empty message body")
        try:
            data = json.loads(msg.value)
        except ValueError as exc:
            raise EnvelopeError(f"body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise EnvelopeError("body is not a JSON object")
        if not attrs["time"]:
            raise EnvelopeError("missing CloudEvents header: time")
        try:
            time = datetime.fromisoformat(attrs["time"])
        except ValueError as exc:
            raise EnvelopeError(f"bad ce_time: {exc}") from exc
        if time.tzinfo is None:
            raise EnvelopeError("ce_time has no time zone (RFC 3339 requires one)")
        try:
            key = msg.key.decode() if msg.key is not None else None
        except UnicodeDecodeError as exc:
            raise EnvelopeError("message key is not UTF-8") from exc
        return cls(
            id=attrs["id"] or "",
            source=attrs["source"] or "",
            type=attrs["type"] or "",
            specversion=SPECVERSION,
            time=time.astimezone(UTC),
            subject=attrs["subject"],
            data=data,
            correlationid=attrs["correlationid"],
            causationid=attrs["causationid"],
            key=key,
        )

"""The CloudEvents envelope in the Kafka binding (binary content mode)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.events.envelope import Envelope, EnvelopeError, KafkaMessage
from shared.events.models import ComplaintAssignedV1, Ref

COMPLAINT_ID = uuid.UUID("0193a8f2-4b1e-7c3d-9a12-5e6f7a8b9c01")
CUSTOMER_ID = uuid.UUID("0193a8f2-4b1d-7f00-8e21-1a2b3c4d5e6f")
EVENT_ID = uuid.UUID("0193a8f2-5000-7000-8000-00000000abcd")
CAUSE_ID = "0193a8f2-4fff-7000-8000-00000000abcc"
# 10:00:02.5 at UTC+1 is 09:00:02.5 UTC.
LOCAL_TIME = datetime(2026, 11, 23, 10, 0, 2, 500_000, tzinfo=timezone(timedelta(hours=1)))
TOPIC = "closeloop.assignments"


def assigned() -> ComplaintAssignedV1:
    return ComplaintAssignedV1(
        complaint_id=COMPLAINT_ID,
        customer_id=CUSTOMER_ID,
        journey=Ref(key="pay-by-card", name="Pay by card"),
        stage="authorisation",
        owner=Ref(key="o-kim", name="Kim Novak"),
        severity="high",
        rule="cards-declined-high",
        assigned_at=datetime(2026, 11, 23, 9, 0, 2, tzinfo=UTC),
    )


def new_envelope(**overrides: object) -> Envelope:
    fields: dict[str, object] = {
        "source": "/closeloop/routing",
        "data": assigned(),
        "time": LOCAL_TIME,
        "key": str(CUSTOMER_ID),
        "subject": str(COMPLAINT_ID),
        "correlationid": str(COMPLAINT_ID),
        "causationid": CAUSE_ID,
        "event_id": EVENT_ID,
    }
    fields.update(overrides)
    return Envelope.new(**fields)  # type: ignore[arg-type]


def message(**overrides: object) -> KafkaMessage:
    """A valid wire message; `headers` entries given as a dict replace or (None) drop headers."""
    msg = new_envelope().to_kafka(TOPIC)
    header_changes = overrides.pop("headers", {})
    assert isinstance(header_changes, dict)
    headers = dict(msg.headers)
    for name, value in header_changes.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return replace(msg, headers=list(headers.items()), **overrides)  # type: ignore[arg-type]


# --- round trip ------------------------------------------------------------------------------


def test_new_takes_the_type_from_the_model_and_stores_utc() -> None:
    env = new_envelope()
    assert env.id == str(EVENT_ID)
    assert env.type == "closeloop.complaint.assigned.v1"
    assert env.specversion == "1.0"
    assert env.time == LOCAL_TIME
    assert env.time.utcoffset() == timedelta(0)
    assert env.data == assigned().model_dump(mode="json")


def test_new_gives_each_event_a_fresh_id_by_default() -> None:
    a, b = new_envelope(event_id=None), new_envelope(event_id=None)
    assert a.id != b.id
    assert uuid.UUID(a.id).version == 7


def test_round_trip_through_kafka_keeps_every_attribute() -> None:
    sent = new_envelope()
    msg = sent.to_kafka(TOPIC)

    got = Envelope.from_kafka(msg)

    assert msg.topic == TOPIC
    assert msg.key == str(CUSTOMER_ID).encode()
    assert got.id == sent.id == str(EVENT_ID)
    assert got.source == "/closeloop/routing"
    assert got.type == "closeloop.complaint.assigned.v1"
    assert got.specversion == "1.0"
    assert got.time == datetime(2026, 11, 23, 9, 0, 2, 500_000, tzinfo=UTC)
    assert got.time.utcoffset() == timedelta(0)
    assert got.subject == str(COMPLAINT_ID)
    assert got.correlationid == str(COMPLAINT_ID)
    assert got.causationid == CAUSE_ID
    assert got.key == str(CUSTOMER_ID)
    assert got.data == sent.data
    assert got == sent


def test_round_trip_without_optional_attributes() -> None:
    sent = new_envelope(subject=None, correlationid=None, causationid=None, key=None)
    msg = sent.to_kafka(TOPIC)
    names = [name for name, _ in msg.headers]
    assert "ce_subject" not in names
    assert "ce_correlationid" not in names
    assert "ce_causationid" not in names
    assert msg.key is None

    got = Envelope.from_kafka(msg)

    assert (got.subject, got.correlationid, got.causationid, got.key) == (None, None, None, None)
    assert got == sent


def test_non_ascii_data_survives_the_round_trip() -> None:
    data = assigned().model_copy(update={"owner": Ref(key="o-zoe", name="Zoë Šimić 東京")})
    got = Envelope.from_kafka(new_envelope(data=data).to_kafka(TOPIC))
    assert got.data["owner"]["name"] == "Zoë Šimić 東京"


# --- headers ---------------------------------------------------------------------------------


def test_headers_are_binary_mode_cloudevents() -> None:
    msg = new_envelope().to_kafka(TOPIC)
    headers = dict(msg.headers)

    assert len(headers) == len(msg.headers), "no header appears twice"
    assert all(isinstance(v, bytes) for v in headers.values())
    assert headers == {
        "ce_id": str(EVENT_ID).encode(),
        "ce_source": b"/closeloop/routing",
        "ce_type": b"closeloop.complaint.assigned.v1",
        "ce_specversion": b"1.0",
        "ce_time": b"2026-11-23T09:00:02.500000Z",
        "ce_subject": str(COMPLAINT_ID).encode(),
        "ce_correlationid": str(COMPLAINT_ID).encode(),
        "ce_causationid": CAUSE_ID.encode(),
        "content-type": b"application/json",
    }


def test_body_is_the_event_data_as_json_only() -> None:
    msg = new_envelope().to_kafka(TOPIC)
    assert msg.value is not None
    body = json.loads(msg.value)
    assert body == assigned().model_dump(mode="json")
    assert "specversion" not in body  # binary mode: attributes travel in headers


# --- malformed messages ----------------------------------------------------------------------


@pytest.mark.parametrize("header", ["ce_id", "ce_source", "ce_type", "ce_specversion"])
def test_missing_required_header_is_refused(header: str) -> None:
    with pytest.raises(EnvelopeError, match=header.removeprefix("ce_")):
        Envelope.from_kafka(message(headers={header: None}))


@pytest.mark.parametrize("header", ["ce_id", "ce_source", "ce_type", "ce_specversion"])
def test_empty_required_header_is_refused(header: str) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_kafka(message(headers={header: b""}))


def test_a_message_without_any_ce_headers_is_refused() -> None:
    msg = KafkaMessage(topic=TOPIC, key=b"k", value=b'{"a":1}', headers=[])
    with pytest.raises(EnvelopeError):
        Envelope.from_kafka(msg)


@pytest.mark.parametrize("version", [b"0.3", b"1", b"2.0"])
def test_wrong_specversion_is_refused(version: bytes) -> None:
    with pytest.raises(EnvelopeError, match="specversion"):
        Envelope.from_kafka(message(headers={"ce_specversion": version}))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"complaint_id": ', id="truncated"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"", id="empty"),
        pytest.param(None, id="tombstone"),
    ],
)
def test_body_that_is_not_json_is_refused(value: bytes | None) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_kafka(message(value=value))


@pytest.mark.parametrize(
    "value", [b"[1, 2]", b'[{"complaint_id": "x"}]', b'"text"', b"42", b"null"]
)
def test_body_that_is_not_a_json_object_is_refused(value: bytes) -> None:
    with pytest.raises(EnvelopeError, match="object"):
        Envelope.from_kafka(message(value=value))


def test_bad_time_header_is_refused() -> None:
    with pytest.raises(EnvelopeError, match="ce_time"):
        Envelope.from_kafka(message(headers={"ce_time": b"yesterday"}))


def test_key_that_is_not_utf8_is_refused_as_envelope_error() -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_kafka(message(key=b"\xff\xfe"))


@pytest.fixture
def local_time_is_utc_plus_2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "XXX-02")  # POSIX: two hours east of UTC
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_is_utc_plus_2")
def test_naive_time_header_does_not_depend_on_the_host_time_zone() -> None:
    msg = message(headers={"ce_time": b"2026-11-23T09:00:00"})
    try:
        got = Envelope.from_kafka(msg)
    except EnvelopeError:
        return  # refusing it is fine too
    assert got.time == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

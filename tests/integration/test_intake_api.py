"""The intake HTTP contract on SQLite and PostgreSQL: acceptance, validation, idempotency,
look-ups, isolation between clients, limits and auth. No broker is needed for any of it."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from support import Intake, IntakeFactory, complaint

from services.intake.models import OUTBOX, Complaint, Customer

PROBLEM = "application/problem+json"


def counts(intake: Intake) -> tuple[int, int, int]:
    """Complaints, customers and outbox rows in the database."""
    with intake.container.engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(Complaint)).scalar_one(),
            conn.execute(select(func.count()).select_from(Customer)).scalar_one(),
            conn.execute(select(func.count()).select_from(OUTBOX)).scalar_one(),
        )


def test_post_commits_complaint_customer_and_event_together(intake: Intake) -> None:
    r = intake.post(complaint(external_ref="ext-1"))

    assert r.status_code == 201
    body = r.json()
    assert r.headers["location"] == f"/v1/complaints/{body['id']}"
    assert uuid.UUID(body["id"]).version == 7
    assert body["status"] == "received"
    assert body["repeat_contact"] == {"count_30d": 1, "is_repeat": False}
    assert counts(intake) == (1, 1, 1)
    with intake.container.engine.connect() as conn:
        row = conn.execute(select(OUTBOX)).one()
    assert row.event_type == "closeloop.complaint.received.v1"
    assert row.key == body["customer_id"]
    headers = dict(row.headers)
    assert headers["ce_correlationid"] == body["id"]
    assert json.loads(row.payload)["complaint_id"] == body["id"]


def test_front_line_promise_travels_in_the_event(intake: Intake) -> None:
    due = "2026-11-24T17:00:00Z"
    r = intake.post(complaint(promised_callback_by=due))
    assert r.status_code == 201
    with intake.container.engine.connect() as conn:
        payload = json.loads(conn.execute(select(OUTBOX.c.payload)).scalar_one())
    assert payload["promised_callback_by"] == due


def test_repeat_contact_counts_the_last_30_days(intake: Intake) -> None:
    first = intake.post(complaint()).json()
    intake.clock.advance(timedelta(days=31))
    assert intake.post(complaint()).json()["repeat_contact"] == {"count_30d": 1, "is_repeat": False}
    assert intake.post(complaint()).json()["repeat_contact"]["count_30d"] == 2
    third = intake.post(complaint()).json()
    assert third["repeat_contact"] == {"count_30d": 3, "is_repeat": True}
    assert third["customer_id"] == first["customer_id"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "pigeon"}, "channel"),
        ({"summary": ""}, "summary"),
        ({"summary": "x" * 201}, "summary"),
        ({"description": "x" * 20_001}, "description"),
        ({"severity": "urgent"}, "severity"),
        ({"language": "english please"}, "language"),
        ({"occurred_at": "2026-11-23T08:30:00"}, "occurred_at"),
        ({"occurred_at": "2026-12-25T08:30:00Z"}, "occurred_at"),
        ({"metadata": {"blob": "x" * 5000}}, "metadata"),
        ({"customer": {"name": "no ref"}}, "customer.ref"),
        ({"customer": {"ref": "c", "email": "not-an-email"}}, "customer.email"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"customer": {"ref": "c", "shoe_size": 44}}, "customer.shoe_size"),
        (
            {"occurred_at": "2026-11-23T08:30:00Z", "promised_callback_by": "2026-11-22T08:30:00Z"},
            "promised_callback_by",
        ),
    ],
)
def test_invalid_input_is_422_naming_the_field_and_changes_nothing(
    intake: Intake, change: dict[str, object], field: str
) -> None:
    r = intake.post(complaint(**change))

    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["type"].endswith("/validation-error")
    assert field in [e["field"] for e in problem["errors"]]
    assert counts(intake) == (0, 0, 0)


def test_missing_required_fields_are_each_named(intake: Intake) -> None:
    r = intake.http.post("/v1/complaints", json={}, headers=intake.headers())
    assert r.status_code == 422
    assert {"channel", "customer", "summary"} <= {e["field"] for e in r.json()["errors"]}


def test_body_over_64kb_is_413_before_reading(intake: Intake) -> None:
    big = json.dumps(complaint(description="x" * 70_000)).encode()
    r = intake.http.post(
        "/v1/complaints",
        content=big,
        headers=intake.headers() | {"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM
    assert counts(intake) == (0, 0, 0)


def test_chunked_body_over_the_limit_is_413(intake: Intake) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(80):
            yield b"x" * 1024

    r = intake.http.post(
        "/v1/complaints",
        content=chunks(),
        headers=intake.headers() | {"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM


def test_idempotency_key_replays_the_first_response(intake: Intake) -> None:
    first = intake.post(complaint(), **{"Idempotency-Key": "k-1"})
    again = intake.post(complaint(), **{"Idempotency-Key": "k-1"})

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert counts(intake)[0] == 1


def test_idempotency_key_with_another_body_is_409(intake: Intake) -> None:
    intake.post(complaint(), **{"Idempotency-Key": "k-1"})
    r = intake.post(complaint(summary="Something else"), **{"Idempotency-Key": "k-1"})

    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("/idempotency-key-reused")
    assert counts(intake)[0] == 1


def test_idempotency_keys_are_per_client(intake: Intake) -> None:
    a = intake.post(complaint(), subject="cc-a", **{"Idempotency-Key": "same"})
    b = intake.post(complaint(summary="other"), subject="cc-b", **{"Idempotency-Key": "same"})
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


def test_external_ref_is_unique_per_client(intake: Intake) -> None:
    first = intake.post(complaint(external_ref="crm-42"))
    dup = intake.post(complaint(external_ref="crm-42"))
    other_client = intake.post(complaint(external_ref="crm-42"), subject="cc-2")

    assert dup.status_code == 409
    assert dup.json()["complaint_id"] == first.json()["id"]
    assert "external_ref" in [e["field"] for e in dup.json()["errors"]]
    assert other_client.status_code == 201


def test_lookups_by_id_external_ref_and_customer(intake: Intake) -> None:
    a = intake.post(complaint(external_ref="a")).json()
    b = intake.post(complaint(external_ref="b")).json()
    intake.post(complaint(customer={"ref": "someone-else"}))
    h = intake.headers()

    got = intake.http.get(f"/v1/complaints/{a['id']}", headers=h).json()
    assert got["id"] == a["id"]
    assert [t["type"] for t in got["timeline"]] == ["received"]

    by_ref = intake.http.get("/v1/complaints", params={"external_ref": "b"}, headers=h).json()
    assert [c["id"] for c in by_ref["items"]] == [b["id"]]

    history = intake.http.get("/v1/customers/cust-1/complaints", headers=h).json()
    assert [c["id"] for c in history["items"]] == [b["id"], a["id"]]


def test_lists_are_cursor_paginated(intake: Intake) -> None:
    ids = [intake.post(complaint()).json()["id"] for _ in range(5)]
    h = intake.headers()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = intake.http.get("/v1/complaints", params=params, headers=h).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_a_client_never_sees_another_clients_complaint(intake: Intake) -> None:
    mine = intake.post(complaint(external_ref="secret"), subject="cc-a").json()

    r = intake.http.get(f"/v1/complaints/{mine['id']}", headers=intake.headers("cc-b"))
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    listed = intake.http.get(
        "/v1/complaints", params={"external_ref": "secret"}, headers=intake.headers("cc-b")
    )
    assert listed.json()["items"] == []
    assert (
        intake.http.get(
            "/v1/customers/cust-1/complaints", headers=intake.headers("cc-b")
        ).status_code
        == 404
    )
    confirm = intake.http.post(
        f"/v1/complaints/{mine['id']}/confirmation",
        json={"resolved": True},
        headers=intake.headers("cc-b"),
    )
    assert confirm.status_code == 404


def test_unknown_complaint_is_404(intake: Intake) -> None:
    r = intake.http.get(f"/v1/complaints/{uuid.uuid4()}", headers=intake.headers())
    assert r.status_code == 404
    assert r.json()["type"].endswith("/not-found")


def test_no_token_is_401_and_wrong_role_is_403(intake: Intake) -> None:
    r = intake.http.post("/v1/complaints", json=complaint())
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    bad = intake.http.post(
        "/v1/complaints", json=complaint(), headers={"Authorization": "Bearer not.a.jwt"}
    )
    assert bad.status_code == 401
    owner = intake.post(complaint(), **intake.headers("owner-1", role="owner"))
    assert owner.status_code == 403
    assert owner.headers["content-type"] == PROBLEM
    assert counts(intake)[0] == 0


def test_expired_and_foreign_tokens_are_401(intake: Intake) -> None:
    token = intake.token()
    intake.clock.advance(timedelta(hours=13))  # tokens issued by the frozen clock expire
    r = intake.http.get("/v1/complaints", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    import jwt

    forged = jwt.encode({"sub": "x", "role": "admin", "exp": 9999999999}, "guess", "HS256")
    r = intake.http.get("/v1/complaints", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_rate_limit_answers_429_with_retry_after(intake_factory: IntakeFactory) -> None:
    intake = intake_factory(rate_limit="3/minute")
    statuses = [intake.post(complaint()).status_code for _ in range(4)]

    assert statuses == [201, 201, 201, 429]
    r = intake.post(complaint())
    assert r.headers["content-type"] == PROBLEM
    assert int(r.headers["retry-after"]) >= 1
    assert counts(intake)[0] == 3
    # the limit is per client
    assert intake.post(complaint(), subject="cc-other").status_code == 201


def test_batch_accepts_valid_items_and_reports_each_bad_one(intake: Intake) -> None:
    items = [
        complaint(external_ref="b-1"),
        complaint(channel="pigeon"),
        complaint(external_ref="b-1"),
        complaint(customer={"ref": "cust-2"}),
    ]
    r = intake.http.post("/v1/complaints:batch", json={"items": items}, headers=intake.headers())

    assert r.status_code == 200
    out = r.json()
    assert (out["accepted"], out["rejected"]) == (2, 2)
    assert [x["status"] for x in out["results"]] == [201, 422, 409, 201]
    assert out["results"][2]["problem"]["duplicate_of_index"] == 0
    assert out["results"][1]["problem"]["errors"][0]["field"] == "items.1.channel"
    assert counts(intake) == (2, 2, 2)
    got = intake.http.get(out["results"][3]["location"], headers=intake.headers())
    assert got.json()["customer"]["ref"] == "cust-2"


def test_batch_counts_repeats_within_the_batch(intake: Intake) -> None:
    items = [complaint() for _ in range(3)]
    out = intake.http.post(
        "/v1/complaints:batch", json={"items": items}, headers=intake.headers()
    ).json()
    third = intake.http.get(out["results"][2]["location"], headers=intake.headers()).json()
    assert third["repeat_contact"] == {"count_30d": 3, "is_repeat": True}


def test_batch_of_more_than_1000_is_422(intake: Intake) -> None:
    items = [complaint(description=None) for _ in range(1001)]
    r = intake.http.post("/v1/complaints:batch", json={"items": items}, headers=intake.headers())
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "items"
    assert counts(intake)[0] == 0


def test_batch_idempotency_replays(intake: Intake) -> None:
    items = [complaint(external_ref=f"r-{i}") for i in range(3)]
    h = intake.headers() | {"Idempotency-Key": "batch-1"}
    first = intake.http.post("/v1/complaints:batch", json={"items": items}, headers=h)
    again = intake.http.post("/v1/complaints:batch", json={"items": items}, headers=h)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert counts(intake)[0] == 3


def test_confirmation_before_resolution_is_409(intake: Intake) -> None:
    c = intake.post(complaint()).json()
    r = intake.http.post(
        f"/v1/complaints/{c['id']}/confirmation",
        json={"resolved": True, "csat": 5},
        headers=intake.headers(),
    )
    assert r.status_code == 409
    assert r.json()["type"].endswith("/invalid-transition")


def test_confirmation_validates_csat(intake: Intake) -> None:
    c = intake.post(complaint()).json()
    r = intake.http.post(
        f"/v1/complaints/{c['id']}/confirmation",
        json={"resolved": True, "csat": 9},
        headers=intake.headers(),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "csat"


def test_health_readiness_and_metrics(intake: Intake) -> None:
    assert intake.http.get("/healthz").json() == {"status": "ok"}
    ready = intake.http.get("/readyz")
    assert ready.status_code == 503  # no broker in this test
    assert ready.json()["checks"] == {"database": "ok", "broker": "unavailable"}
    intake.post(complaint())
    metrics = intake.http.get("/metrics").text
    assert (
        'closeloop_http_requests_total{method="POST",route="/v1/complaints",service="intake",status="201"}'
        in metrics
    )


def test_openapi_documents_the_contract(intake: Intake) -> None:
    spec = intake.http.get("/openapi.json").json()
    assert {
        "/v1/complaints",
        "/v1/complaints:batch",
        "/v1/complaints/{complaint_id}",
        "/v1/customers/{ref}/complaints",
        "/v1/complaints/{complaint_id}/confirmation",
        "/v1/subscriptions",
    } <= set(spec["paths"])

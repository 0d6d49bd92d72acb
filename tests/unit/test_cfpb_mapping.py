"""The CFPB replay mapping, checked against the first rows of the real CFPB CSV (no network)."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shared.cfpb import ALLOWED_CHANNELS, ReplaySummary, map_row, problem_reason, read_rows

CSV_PATH = Path(__file__).resolve().parents[3] / "shared/data/cfpb_complaints.csv"
SAMPLE = 400

pytestmark = pytest.mark.skipif(not CSV_PATH.is_file(), reason=f"{CSV_PATH} not present")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return list(read_rows(CSV_PATH, SAMPLE))


@pytest.fixture(scope="module")
def bodies(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [map_row(row) for row in rows]


def _values(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [v for value in obj.values() for v in [value, *_values(value)]]
    return []


def _row(**overrides: str) -> dict[str, str]:
    row = {
        "Date received": "2023-09-01",
        "Product": "Debt collection",
        "Sub-product": "Credit card debt",
        "Issue": "Attempts to collect debt not owed",
        "Sub-issue": "Debt is not yours",
        "Consumer complaint narrative": "",
        "Company public response": "",
        "Company": "EXAMPLE BANK",
        "State": "CA",
        "ZIP code": "94110",
        "Tags": "",
        "Consumer consent provided?": "",
        "Submitted via": "Web",
        "Date sent to company": "2023-09-01",
        "Company response to consumer": "In progress",
        "Timely response?": "Yes",
        "Consumer disputed?": "",
        "Complaint ID": "1234567",
    }
    row.update(overrides)
    return row


def test_read_rows_honours_limit_and_parses_multiline_fields(rows: list[dict[str, str]]) -> None:
    assert len(rows) == SAMPLE
    assert all(re.fullmatch(r"\d+", row["Complaint ID"]) for row in rows)
    assert len(list(read_rows(CSV_PATH, 3))) == 3
    assert list(read_rows(CSV_PATH, 0)) == []


def test_every_body_is_valid(rows: list[dict[str, str]], bodies: list[dict[str, Any]]) -> None:
    for row, body in zip(rows, bodies, strict=True):
        assert body["channel"] in ALLOWED_CHANNELS
        assert 0 < len(body["summary"]) <= 200
        assert body["external_ref"] == f"cfpb-{row['Complaint ID']}"
        assert re.fullmatch(r"cfpb-\d+", body["external_ref"])
        occurred = datetime.fromisoformat(body["occurred_at"])
        assert occurred.tzinfo is not None
        assert occurred.utcoffset() is not None
        assert occurred.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert body["occurred_at"].endswith("T00:00:00Z")
        assert body["severity"] in {"low", "medium", "high", "critical"}
        assert body["language"] == "en"
        assert body["customer"]["tier"] == "standard"
        assert set(body["customer"]) == {"ref", "tier"}
        assert len(body.get("description", "")) <= 20_000
        for value in _values(body):
            assert value is not None
            assert value != ""
        assert len(json.dumps(body["metadata"]).encode("utf-8")) <= 4096
        assert body["metadata"]["source"] == "cfpb"
        assert body["metadata"]["complaint_id"] == row["Complaint ID"]


def test_only_known_fields_are_sent(bodies: list[dict[str, Any]]) -> None:
    known = {
        "channel",
        "customer",
        "summary",
        "description",
        "external_ref",
        "product",
        "category",
        "touchpoint",
        "severity",
        "language",
        "occurred_at",
        "promised_callback_by",
        "metadata",
    }
    for body in bodies:
        assert set(body) <= known


def test_narrative_maps_to_description(rows: list[dict[str, str]]) -> None:
    with_narrative = [row for row in rows if row["Consumer complaint narrative"].strip()]
    assert with_narrative, "the sample should contain narratives"
    for row in with_narrative:
        body = map_row(row)
        assert body["description"] == row["Consumer complaint narrative"].strip()[:20_000]
    without = next(row for row in rows if not row["Consumer complaint narrative"].strip())
    assert "description" not in map_row(without)


def test_long_narrative_is_truncated() -> None:
    body = map_row(_row(**{"Consumer complaint narrative": "x" * 21_928}))
    assert len(body["description"]) == 20_000


def test_long_summary_is_truncated() -> None:
    body = map_row(_row(Issue="I" * 150, **{"Sub-issue": "S" * 150}))
    assert len(body["summary"]) == 200
    assert body["summary"].startswith("I" * 150 + ": ")


def test_summary_joins_issue_and_sub_issue() -> None:
    assert map_row(_row())["summary"] == "Attempts to collect debt not owed: Debt is not yours"
    assert map_row(_row(**{"Sub-issue": ""}))["summary"] == "Attempts to collect debt not owed"


def test_hints() -> None:
    body = map_row(_row())
    assert body["product"] == "Debt collection"
    assert body["category"] == "Attempts to collect debt not owed"
    assert body["touchpoint"] == "Credit card debt"
    assert "touchpoint" not in map_row(_row(**{"Sub-product": ""}))


def test_phone_row_maps_to_phone(rows: list[dict[str, str]]) -> None:
    phone_rows = [row for row in read_rows(CSV_PATH, 3000) if row["Submitted via"] == "Phone"]
    assert phone_rows
    assert {map_row(row)["channel"] for row in phone_rows} == {"phone"}


@pytest.mark.parametrize(
    ("submitted_via", "channel"),
    [
        ("Web", "web"),
        ("Web Referral", "web"),
        ("Phone", "phone"),
        ("Postal mail", "letter"),
        ("Fax", "letter"),
        ("Email", "email"),
        ("Referral", "other"),
        ("Carrier pigeon", "other"),
        ("", "other"),
    ],
)
def test_channel_mapping(submitted_via: str, channel: str) -> None:
    assert map_row(_row(**{"Submitted via": submitted_via}))["channel"] == channel


def test_customer_ref_is_stable_per_zip_and_company() -> None:
    ref = map_row(_row())["customer"]["ref"]
    assert re.fullmatch(r"cfpb-[0-9a-f]{16}", ref)
    assert map_row(_row(**{"Complaint ID": "7654321"}))["customer"]["ref"] == ref
    assert map_row(_row(**{"ZIP code": "10001"}))["customer"]["ref"] != ref
    assert map_row(_row(Company="OTHER BANK"))["customer"]["ref"] != ref


def test_customer_ref_without_zip_uses_complaint_id() -> None:
    a = map_row(_row(**{"ZIP code": ""}))["customer"]["ref"]
    b = map_row(_row(**{"ZIP code": "", "Complaint ID": "7654321"}))["customer"]["ref"]
    masked = map_row(_row(**{"ZIP code": "XXXXX", "Complaint ID": "7654322"}))["customer"]["ref"]
    assert len({a, b, masked}) == 3
    assert map_row(_row(**{"ZIP code": ""}))["customer"]["ref"] == a


def test_real_rows_share_refs_for_same_zip_and_company(rows: list[dict[str, str]]) -> None:
    by_key: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        if row["ZIP code"] and row["ZIP code"] != "XXXXX":
            key = (row["ZIP code"], row["Company"])
            by_key.setdefault(key, set()).add(map_row(row)["customer"]["ref"])
    assert all(len(refs) == 1 for refs in by_key.values())
    distinct = {next(iter(refs)) for refs in by_key.values()}
    assert len(distinct) == len(by_key)


def test_fraud_issue_is_critical(rows: list[dict[str, str]]) -> None:
    assert map_row(_row(Issue="Fraud or scam"))["severity"] == "critical"
    assert map_row(_row(Issue="Identity theft / Fraud / Embezzlement"))["severity"] == "critical"
    fraud_rows = [row for row in read_rows(CSV_PATH, 3000) if "fraud" in row["Issue"].lower()]
    assert fraud_rows
    assert {map_row(row)["severity"] for row in fraud_rows} == {"critical"}


@pytest.mark.parametrize(
    ("tags", "severity"),
    [
        ("", "medium"),
        ("Servicemember", "high"),
        ("Older American", "high"),
        ("Older American, Servicemember", "high"),
    ],
)
def test_tags_raise_severity(tags: str, severity: str) -> None:
    assert map_row(_row(Tags=tags))["severity"] == severity


def test_metadata_omits_empty_values_and_truncates_company() -> None:
    body = map_row(_row(State="", Company="C" * 500))
    assert "state" not in body["metadata"]
    assert len(body["metadata"]["company"]) == 200
    assert len(json.dumps(body["metadata"]).encode("utf-8")) <= 4096


def test_occurred_at_is_midnight_utc() -> None:
    assert map_row(_row())["occurred_at"] == "2023-09-01T00:00:00Z"
    assert "occurred_at" not in map_row(_row(**{"Date received": ""}))


def test_problem_reason() -> None:
    assert problem_reason(409, {"title": "Conflict"}) == "duplicate"
    assert problem_reason(422, {"title": "Invalid request"}) == "422 Invalid request"
    assert problem_reason(401, {"detail": "bad token"}) == "401 bad token"
    assert problem_reason(500, None, "Internal Server Error") == "500 Internal Server Error"
    errors = [{"field": "metadata", "message": "too large"}]
    assert (
        problem_reason(422, {"title": "Invalid request", "errors": errors})
        == "422 Invalid request (metadata)"
    )


def test_replay_summary_render() -> None:
    summary = ReplaySummary(
        accepted=90,
        replayed=5,
        rejected=5,
        rejected_reasons=Counter({"duplicate": 3, "422 Invalid request (summary)": 2}),
        elapsed_s=2.0,
    )
    assert summary.rate == pytest.approx(45.0)
    text = summary.render()
    assert "100 complaints" in text
    assert "accepted: 90 (45.0/s)" in text
    assert "replayed: 5" in text
    assert "rejected: 5" in text
    assert text.index("duplicate") < text.index("422 Invalid request (summary)")
    assert ReplaySummary().rate == 0.0
    assert "rejected: 0" in ReplaySummary().render()

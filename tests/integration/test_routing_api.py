"""The routing HTTP API: the catalog as YAML/JSON with path-named errors, CRUD as catalog versions,
auth per role, availability, assignments, reassign, dry-run, stats and the operator endpoints —
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from support import Routing, RoutingFactory, small_catalog

from services.routing import catalog as cat
from services.routing.models import OUTBOX, Assignment
from shared.events.envelope import Envelope
from shared.events.models import ComplaintReceivedV1

YAML = "application/yaml"
PROBLEM = "application/problem+json"


def assign(routing: Routing, **fields: Any) -> dict[str, Any]:
    """Hand a complaint.received to routing's handler, as its consumer would; the assignment."""
    body: dict[str, Any] = {
        "complaint_id": uuid.uuid4(),
        "client_id": "cc-1",
        "customer_id": uuid.uuid4(),
        "customer": {"ref": "cust-1"},
        "channel": "phone",
        "summary": "Card declined at checkout twice",
        "product": "Credit card",
        "severity": "high",
        "received_at": routing.clock.now(),
        "repeat_contact": {"count_30d": 1, "is_repeat": False},
    }
    body.update(fields)
    event = ComplaintReceivedV1.model_validate(body)
    env = Envelope.new(
        source="/t", data=event, time=routing.clock.now(), key=str(event.customer_id)
    )
    with routing.container.uow() as uow:
        routing.container.service.on_received(uow, env, event)
        uow.commit()
    r = routing.http.get(f"/v1/assignments/{event.complaint_id}", headers=routing.headers())
    assert r.status_code == 200, r.text
    return dict(r.json())


def version(routing: Routing) -> int:
    r = routing.http.get("/v1/catalog", headers=routing.headers())
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


def problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = dict(r.json())
    assert body["status"] == status
    return body


def paths(body: dict[str, Any]) -> set[str]:
    return {e["path"] for e in body["errors"]}


def count(routing: Routing, table: Any) -> int:
    with routing.container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def manager(routing: Routing, journey: str) -> dict[str, str]:
    return routing.headers(f"mgr-{journey}", "manager", (journey,))


def as_owner(routing: Routing, key: str) -> dict[str, str]:
    return routing.headers(key, "owner")


# --- the whole catalog -----------------------------------------------------------------------


def test_get_catalog_as_json_and_as_yaml(routing: Routing) -> None:
    expected = cat.parse(small_catalog())

    r = routing.http.get("/v1/catalog", headers=routing.headers())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["catalog-version"] == "1"
    body = r.json()
    assert body["version"] == 1
    assert cat.parse(body["catalog"]) == expected

    y = routing.http.get("/v1/catalog", headers=routing.headers() | {"Accept": YAML})
    assert y.status_code == 200, y.text
    assert y.headers["content-type"].startswith(YAML)
    assert y.headers["catalog-version"] == "1"
    document = yaml.safe_load(y.text)
    assert [j["key"] for j in document["journeys"]] == ["cards", "borrow", "triage"]
    assert cat.parse(document) == expected

    # owners and managers read it too
    for headers in (as_owner(routing, "ana"), manager(routing, "cards")):
        assert routing.http.get("/v1/catalog", headers=headers).status_code == 200


def test_put_catalog_yaml_with_problems_names_each_path_and_changes_nothing(
    routing: Routing,
) -> None:
    doc = small_catalog()
    doc["journeys"][0]["team"].append("zed")  # journeys[0].team[3]: nobody of that name
    doc["rules"][1]["stage"] = "underwriting"  # borrow has only `servicing`
    doc["owners"].append({"key": "ana", "name": "Ana Two", "department": "Fraud"})  # owners[6]

    r = routing.http.put(
        "/v1/catalog",
        content=yaml.safe_dump(doc),
        headers=routing.headers() | {"Content-Type": YAML},
    )
    body = problem(r, 422)
    assert body["type"].endswith("/invalid-catalog")
    assert paths(body) == {"journeys[0].team[3]", "rules[1].stage", "owners[6].key"}
    messages = {e["path"]: e["message"] for e in body["errors"]}
    assert "zed" in messages["journeys[0].team[3]"]
    assert "underwriting" in messages["rules[1].stage"]
    assert "ana" in messages["owners[6].key"]
    assert version(routing) == 1


@pytest.mark.parametrize(
    ("content", "content_type", "path"),
    [
        ("journeys: [\n  - key: cards\n", YAML, "(document)"),  # not YAML at all
        ("{not json", "application/json", "(document)"),
        (json.dumps(small_catalog(journeys=[])), "application/json", "journeys"),
        (json.dumps(small_catalog(extra=1)), "application/json", "extra"),
        (yaml.safe_dump(["a", "list"]), YAML, "(document)"),
    ],
)
def test_put_catalog_unreadable_or_shapeless_documents_are_422(
    routing: Routing, content: str, content_type: str, path: str
) -> None:
    r = routing.http.put(
        "/v1/catalog", content=content, headers=routing.headers() | {"Content-Type": content_type}
    )
    assert path in paths(problem(r, 422))
    assert version(routing) == 1


def test_a_valid_put_is_version_2_and_new_assignments_record_it(routing: Routing) -> None:
    before = assign(routing)
    assert before["catalog_version"] == 1

    exported = routing.http.get("/v1/catalog", headers=routing.headers() | {"Accept": YAML}).text
    doc = yaml.safe_load(exported)
    doc["owners"].append({"key": "fay", "name": "Fay", "department": "Fraud", "capacity": 3})
    doc["journeys"][0]["team"].append("fay")
    r = routing.http.put(
        "/v1/catalog",
        content=yaml.safe_dump(doc),
        headers=routing.headers() | {"Content-Type": f"{YAML}; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"version": 2}
    assert version(routing) == 2

    after = assign(routing)
    assert after["catalog_version"] == 2
    assert after["explanation"]["catalog_version"] == 2
    assert "fay" in {c["owner"] for c in after["explanation"]["candidates"]}
    again = routing.http.get(f"/v1/assignments/{before['complaint_id']}", headers=routing.headers())
    assert again.json()["catalog_version"] == 1


def test_the_json_export_can_be_put_back_as_it_is(routing: Routing) -> None:
    exported = routing.http.get("/v1/catalog", headers=routing.headers()).json()
    r = routing.http.put("/v1/catalog", json=exported, headers=routing.headers())
    assert r.status_code == 200, r.text
    assert r.json() == {"version": 2}
    body = routing.http.get("/v1/catalog", headers=routing.headers()).json()
    assert body["catalog"] == exported["catalog"]


# --- journeys, owners, rules -----------------------------------------------------------------


def test_deleting_an_owner_still_in_a_team_is_422_naming_the_path(routing: Routing) -> None:
    admin = routing.headers()
    body = problem(routing.http.delete("/v1/owners/ana", headers=admin), 422)
    assert body["type"].endswith("/invalid-catalog")
    assert paths(body) == {"journeys[0].team[0]"}
    assert routing.http.get("/v1/owners/ana", headers=admin).status_code == 200
    assert version(routing) == 1

    assert problem(routing.http.delete("/v1/owners/zed", headers=admin), 404)
    assert problem(routing.http.get("/v1/journeys/savings", headers=admin), 404)
    assert version(routing) == 1


def test_deleting_a_rule_is_a_new_version_and_routing_follows_it(routing: Routing) -> None:
    admin = routing.headers()
    keys = [r["key"] for r in routing.http.get("/v1/rules", headers=admin).json()["items"]]
    assert keys == ["card-disputes", "mortgages"]
    assert assign(routing)["journey"]["key"] == "cards"

    assert routing.http.delete("/v1/rules/card-disputes", headers=admin).json() == {"version": 2}
    a = assign(routing)
    assert (a["journey"]["key"], a["rule"], a["catalog_version"]) == ("triage", None, 2)
    assert problem(routing.http.delete("/v1/rules/card-disputes", headers=admin), 404)
    assert version(routing) == 2


CRUD_BODY_BUG = (
    "POST/PUT /v1/journeys|owners|rules never read the JSON body: in services/routing/api.py "
    "_crud() the handlers annotate `body: model` under `from __future__ import annotations`, so "
    "FastAPI cannot resolve the closure variable `model`, treats `body` as a required query "
    "parameter (422 'query: Field required') and /openapi.json fails to build (500)"
)


def test_create_and_replace_are_catalog_versions_validated_like_the_whole_document(
    routing: Routing,
) -> None:
    admin = routing.headers()
    fay = {"key": "fay", "name": "Fay", "department": "Fraud", "capacity": 4}
    r = routing.http.post("/v1/owners", json=fay, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    assert r.json()["item"]["key"] == "fay"
    assert routing.http.get("/v1/owners/fay", headers=admin).json()["capacity"] == 4

    assert problem(routing.http.post("/v1/owners", json=fay, headers=admin), 409)
    assert problem(routing.http.post("/v1/owners", json=fay | {"age": 3}, headers=admin), 422)

    mismatched = routing.http.get("/v1/journeys/cards", headers=admin).json() | {"key": "borrow"}
    body = problem(routing.http.put("/v1/journeys/cards", json=mismatched, headers=admin), 422)
    assert [e["field"] for e in body["errors"]] == ["key"]
    assert version(routing) == 2

    cards = routing.http.get("/v1/journeys/cards", headers=admin).json()
    cards["team"] = [*cards["team"], "fay"]
    r = routing.http.put("/v1/journeys/cards", json=cards, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3

    rule = {
        "key": "vouchers",
        "priority": 5,
        "when": {"product": ["Gift voucher"]},
        "journey": "cards",
        "stage": "fix",
    }
    r = routing.http.post("/v1/rules", json=rule, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 4
    a = assign(routing, product="Gift voucher", summary="Voucher expired")
    assert (a["journey"]["key"], a["stage"], a["rule"], a["catalog_version"]) == (
        "cards",
        "fix",
        "vouchers",
        4,
    )

    bad_rule = rule | {"key": "nowhere", "journey": "savings"}
    body = problem(routing.http.post("/v1/rules", json=bad_rule, headers=admin), 422)
    assert paths(body) == {"rules[3].journey"}
    assert version(routing) == 4


# --- auth ------------------------------------------------------------------------------------

EVERY_ROUTE: list[tuple[str, str, Any]] = [
    ("GET", "/v1/catalog", None),
    ("PUT", "/v1/catalog", small_catalog()),
    ("GET", "/v1/journeys", None),
    ("GET", "/v1/owners/ana", None),
    ("POST", "/v1/owners", {"key": "fay", "name": "Fay", "department": "Fraud"}),
    ("PUT", "/v1/journeys/cards", small_catalog()["journeys"][0]),
    ("DELETE", "/v1/rules/mortgages", None),
    ("GET", "/v1/owners/ana/availability", None),
    ("PUT", "/v1/owners/ana/availability", {"delegate": "ben"}),
    ("POST", "/v1/owners/ana/handover", {}),
    ("GET", "/v1/assignments/{id}", None),
    ("POST", "/v1/assignments/{id}/reassign", {"owner": "ben", "reason": "x"}),
    ("GET", "/v1/assignments:stats", None),
    ("POST", "/v1/rules/dry-run", {"catalog": small_catalog()}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), EVERY_ROUTE, ids=[f"{m} {p}" for m, p, _ in EVERY_ROUTE]
)
def test_intake_clients_are_refused_everywhere_and_a_token_is_required(
    routing: Routing, method: str, path: str, body: Any
) -> None:
    a = assign(routing)
    url = path.replace("{id}", a["complaint_id"])
    client = routing.headers("cc-1", "intake-client")

    anonymous = routing.http.request(method, url, json=body)
    assert problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"] == "Bearer"
    bad = routing.http.request(method, url, json=body, headers={"Authorization": "Bearer nope"})
    assert problem(bad, 401)
    assert problem(routing.http.request(method, url, json=body, headers=client), 403)
    assert version(routing) == 1


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_only_admins_change_the_catalog(routing: Routing, role: str) -> None:
    headers = routing.headers("ana" if role == "owner" else "mgr-cards", role, ("cards",))
    assert problem(routing.http.put("/v1/catalog", json=small_catalog(), headers=headers), 403)
    fay = {"key": "fay", "name": "Fay", "department": "Fraud"}
    assert problem(routing.http.post("/v1/owners", json=fay, headers=headers), 403)
    assert problem(routing.http.delete("/v1/rules/mortgages", headers=headers), 403)
    assert version(routing) == 1


def test_owners_may_not_dry_run_or_read_stats(routing: Routing) -> None:
    ana = as_owner(routing, "ana")
    r = routing.http.post("/v1/rules/dry-run", json={"catalog": small_catalog()}, headers=ana)
    assert problem(r, 403)
    assert problem(routing.http.get("/v1/assignments:stats", headers=ana), 403)


# --- availability ----------------------------------------------------------------------------


def test_who_may_set_an_owners_availability(routing: Routing) -> None:
    now = routing.clock.now()
    away = {
        "away_from": now.isoformat(),
        "away_until": (now + timedelta(days=2)).isoformat(),
        "delegate": "cho",
    }

    def put(key: str, headers: dict[str, str], body: dict[str, Any] = away) -> Any:
        return routing.http.put(f"/v1/owners/{key}/availability", json=body, headers=headers)

    r = put("ana", as_owner(routing, "ana"))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "owner": "ana",
        "away_from": away["away_from"].replace("+00:00", "Z"),
        "away_until": away["away_until"].replace("+00:00", "Z"),
        "delegate": "cho",
        "away_now": True,
    }
    assert put("ana", manager(routing, "cards"), away | {"delegate": "ben"}).status_code == 200
    got = routing.http.get("/v1/owners/ana/availability", headers=as_owner(routing, "cho"))
    assert got.json()["delegate"] == "ben"

    assert problem(put("ana", manager(routing, "borrow")), 403)
    assert problem(put("ana", as_owner(routing, "ben")), 403)
    assert put("dev", manager(routing, "borrow")).status_code == 200

    body = problem(put("ana", routing.headers(), away | {"delegate": "zed"}), 422)
    assert [e["field"] for e in body["errors"]] == ["delegate"]
    body = problem(put("ana", routing.headers(), away | {"delegate": "ana"}), 422)
    assert [e["field"] for e in body["errors"]] == ["delegate"]
    backwards = away | {"away_until": (now - timedelta(hours=1)).isoformat()}
    assert [
        e["field"] for e in problem(put("ana", routing.headers(), backwards), 422)["errors"]
    ] == ["away_until"]
    naive = away | {"away_from": "2026-11-23T09:00:00"}
    assert problem(put("ana", routing.headers(), naive), 422)
    assert problem(put("zed", routing.headers()), 404)

    # back: clearing the window
    r = put("ana", routing.headers(), {})
    assert r.json()["away_now"] is False
    assert r.json()["delegate"] is None


def test_availability_of_an_unknown_owner_is_404(routing: Routing) -> None:
    r = routing.http.get("/v1/owners/zed/availability", headers=routing.headers())
    assert problem(r, 404)


# --- assignments -----------------------------------------------------------------------------


def test_who_may_read_an_assignment(routing: Routing) -> None:
    a = assign(routing)
    assert a["owner"]["key"] == "ana"
    url = f"/v1/assignments/{a['complaint_id']}"

    assert routing.http.get(url, headers=routing.headers()).json() == a
    assert routing.http.get(url, headers=as_owner(routing, "ana")).json() == a
    assert routing.http.get(url, headers=manager(routing, "cards")).json() == a
    assert problem(routing.http.get(url, headers=as_owner(routing, "ben")), 404)
    assert problem(routing.http.get(url, headers=manager(routing, "borrow")), 404)
    assert problem(
        routing.http.get(f"/v1/assignments/{uuid.uuid4()}", headers=routing.headers()), 404
    )
    assert problem(routing.http.get("/v1/assignments/not-a-uuid", headers=routing.headers()), 422)

    assert a["explanation"]["rule"] == "card-disputes"
    assert a["explanation"]["owner_reason"].startswith("least loaded")
    assert [c["owner"] for c in a["explanation"]["candidates"]] == ["ana", "ben", "cho"]


def test_reassign_within_the_team_by_the_current_owner(routing: Routing) -> None:
    a = assign(routing)
    url = f"/v1/assignments/{a['complaint_id']}/reassign"
    ana = as_owner(routing, "ana")
    outbox_before = count(routing, OUTBOX)

    body = problem(routing.http.post(url, json={"owner": "dev", "reason": "x"}, headers=ana), 422)
    assert [e["field"] for e in body["errors"]] == ["owner"]
    assert problem(routing.http.post(url, json={"owner": "ana", "reason": "x"}, headers=ana), 409)
    assert problem(
        routing.http.post(
            url, json={"owner": "cho", "reason": "x"}, headers=as_owner(routing, "ben")
        ),
        404,
    )
    assert problem(routing.http.post(url, json={"owner": "cho"}, headers=ana), 422)
    assert count(routing, OUTBOX) == outbox_before

    routing.clock.advance(timedelta(minutes=5))
    r = routing.http.post(url, json={"owner": "cho", "reason": "Knows this merchant"}, headers=ana)
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["owner"] == {"key": "cho", "name": "Cho"}
    (step,) = moved["reassignments"]
    assert (step["from"], step["to"], step["by"], step["reason"]) == (
        "ana",
        "cho",
        "ana",
        "Knows this merchant",
    )
    assert count(routing, OUTBOX) == outbox_before + 1
    # ana no longer owns it, so she no longer sees it; cho does
    assert problem(routing.http.get(f"/v1/assignments/{a['complaint_id']}", headers=ana), 404)
    mine = routing.http.get(
        f"/v1/assignments/{a['complaint_id']}", headers=as_owner(routing, "cho")
    )
    assert mine.status_code == 200


# --- dry-run ---------------------------------------------------------------------------------


def cards_to_borrow() -> dict[str, Any]:
    doc = small_catalog()
    doc["rules"][0] = doc["rules"][0] | {"journey": "borrow", "stage": "servicing"}
    return doc


def test_dry_run_of_recent_complaints_reports_what_would_change(routing: Routing) -> None:
    cards = [assign(routing), assign(routing)]
    borrow = assign(routing, product=None, summary="My mortgage payment was taken twice")
    triage = assign(routing, product="Gift voucher", summary="Voucher expired")
    before = (count(routing, Assignment), count(routing, OUTBOX), version(routing))

    scoped = routing.http.post(
        "/v1/rules/dry-run", json={"catalog": cards_to_borrow()}, headers=manager(routing, "cards")
    )
    assert scoped.json()["totals"]["complaints"] == 2  # a manager replays only their journeys

    r = routing.http.post(
        "/v1/rules/dry-run", json={"catalog": cards_to_borrow()}, headers=routing.headers()
    )
    assert r.status_code == 200, r.text
    report = r.json()
    totals = report["totals"]
    assert totals["complaints"] == 4
    assert totals["journey_changed"] == 2
    assert totals["stage_changed"] == 2
    assert totals["to_triage"] == 1
    assert totals["by_journey"] == {"borrow": 3, "triage": 1}

    results = {x["complaint_id"]: x for x in report["results"]}
    assert set(results) == {a["complaint_id"] for a in [*cards, borrow, triage]}
    for a in cards:
        x = results[a["complaint_id"]]
        assert x["current"] == {
            "journey": "cards",
            "stage": "dispute",
            "owner": a["owner"]["key"],
            "rule": "card-disputes",
        }
        assert (x["candidate"]["journey"], x["candidate"]["stage"]) == ("borrow", "servicing")
        assert x["candidate"]["owner"] in {"dev", "eli"}
        assert {"journey", "stage", "owner"} <= set(x["changes"])
    assert results[borrow["complaint_id"]]["current"]["journey"] == "borrow"
    assert "journey" not in results[borrow["complaint_id"]]["changes"]
    assert results[triage["complaint_id"]]["candidate"] == {
        "journey": "triage",
        "stage": "sort",
        "owner": "tia",
        "rule": None,
    }

    # a dry-run changes nothing
    assert (count(routing, Assignment), count(routing, OUTBOX), version(routing)) == before

    r = routing.http.post(
        "/v1/rules/dry-run",
        json={"catalog": cards_to_borrow(), "last": 1},
        headers=routing.headers(),
    )
    assert r.json()["totals"]["complaints"] == 1


def test_dry_run_of_given_complaints_routes_those(routing: Routing) -> None:
    given = [
        {"channel": "phone", "summary": "Card declined", "product": "Credit card"},
        {"id": "mine-2", "channel": "email", "summary": "Voucher expired"},
        {"channel": "chat", "summary": "Loan statement wrong", "severity": "low"},
    ]
    r = routing.http.post(
        "/v1/rules/dry-run",
        json={"catalog": cards_to_borrow(), "complaints": given},
        headers=manager(routing, "borrow"),
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert [x["complaint_id"] for x in report["results"]] == ["given-0", "mine-2", "given-2"]
    first, second, third = report["results"]
    assert first["current"] == {
        "journey": "cards",
        "stage": "dispute",
        "owner": None,
        "rule": "card-disputes",
    }
    assert (first["candidate"]["journey"], first["candidate"]["rule"]) == (
        "borrow",
        "card-disputes",
    )
    assert first["changes"] == ["journey", "stage"]
    assert second["current"]["journey"] == second["candidate"]["journey"] == "triage"
    assert second["changes"] == []
    assert third["candidate"]["rule"] == "mortgages"
    assert third["changes"] == []
    assert report["totals"] == {
        "complaints": 3,
        "journey_changed": 1,
        "stage_changed": 1,
        "owner_changed": 0,
        "to_triage": 1,
        "by_journey": {"borrow": 2, "triage": 1},
    }
    assert count(routing, Assignment) == 0


def test_dry_run_with_an_invalid_candidate_is_422_with_paths(routing: Routing) -> None:
    doc = cards_to_borrow()
    doc["journeys"] = [j for j in doc["journeys"] if j["key"] != "triage"]
    doc["rules"][1]["journey"] = "savings"
    doc["owners"][0]["capacity"] = 0
    r = routing.http.post("/v1/rules/dry-run", json={"catalog": doc}, headers=routing.headers())
    body = problem(r, 422)
    assert body["type"].endswith("/invalid-catalog")
    assert paths(body) == {"owners[0].capacity"}  # schema errors first, then references

    doc["owners"][0]["capacity"] = 3
    body = problem(
        routing.http.post("/v1/rules/dry-run", json={"catalog": doc}, headers=routing.headers()),
        422,
    )
    assert paths(body) == {"journeys", "rules[1].journey"}

    r = routing.http.post(
        "/v1/rules/dry-run", json={"catalog": doc, "x": 1}, headers=routing.headers()
    )
    assert problem(r, 422)


def test_dry_run_of_the_unchanged_catalog_reports_no_change(routing: Routing) -> None:
    for _ in range(3):
        assign(routing)
    r = routing.http.post(
        "/v1/rules/dry-run", json={"catalog": small_catalog()}, headers=routing.headers()
    )
    assert r.status_code == 200, r.text
    totals = r.json()["totals"]
    assert (totals["journey_changed"], totals["stage_changed"], totals["owner_changed"]) == (
        0,
        0,
        0,
    )


# --- stats and operations --------------------------------------------------------------------


def test_stats_report_volume_per_journey_and_the_triage_share(routing: Routing) -> None:
    empty = routing.http.get("/v1/assignments:stats", headers=manager(routing, "cards")).json()
    assert empty == {"total": 0, "by_journey": {}, "triage": 0, "triage_share": 0.0}

    for _ in range(3):
        assign(routing)
    assign(routing, product="Gift voucher", summary="Voucher expired")
    scoped = routing.http.get("/v1/assignments:stats", headers=manager(routing, "cards")).json()
    assert scoped == {"total": 3, "by_journey": {"cards": 3}, "triage": 0, "triage_share": 0.0}
    stats = routing.http.get("/v1/assignments:stats", headers=routing.headers()).json()
    assert stats == {
        "total": 4,
        "by_journey": {"cards": 3, "triage": 1},
        "triage": 1,
        "triage_share": 0.25,
    }
    assert list(stats["by_journey"]) == ["cards", "triage"]


def test_health_readiness_and_metrics(routing: Routing) -> None:
    assert routing.http.get("/healthz").json() == {"status": "ok"}
    ready = routing.http.get("/readyz")
    assert ready.status_code == 503  # no broker here
    assert ready.json()["checks"] == {"database": "ok", "broker": "unavailable"}

    assert routing.http.get("/v1/catalog", headers=routing.headers()).status_code == 200
    metrics = routing.http.get("/metrics")
    assert metrics.status_code == 200
    samples = [
        s
        for family in text_string_to_metric_families(metrics.text)
        if family.name == "closeloop_http_requests"
        for s in family.samples
        if s.name.endswith("_total")
    ]
    assert any(
        s.labels == {"service": "routing", "method": "GET", "route": "/v1/catalog", "status": "200"}
        and s.value >= 1
        for s in samples
    )


def test_openapi_documents_every_route(routing: Routing) -> None:
    r = routing.http.get("/openapi.json")
    assert r.status_code == 200, r.text
    spec = r.json()
    assert {
        "/v1/catalog",
        "/v1/journeys",
        "/v1/journeys/{key}",
        "/v1/owners",
        "/v1/owners/{key}",
        "/v1/owners/{key}/availability",
        "/v1/owners/{key}/handover",
        "/v1/rules",
        "/v1/rules/{key}",
        "/v1/rules/dry-run",
        "/v1/assignments:stats",
        "/v1/assignments/{complaint_id}",
        "/v1/assignments/{complaint_id}/reassign",
    } <= set(spec["paths"])
    assert {"get", "put"} <= set(spec["paths"]["/v1/catalog"])
    assert {"get", "put", "delete"} <= set(spec["paths"]["/v1/owners/{key}"])
    create = spec["paths"]["/v1/owners"]["post"]
    assert "requestBody" in create
    assert not [p for p in create.get("parameters", []) if p["in"] == "query"]


@pytest.mark.broker
def test_ready_with_a_reachable_broker(
    routing_factory: RoutingFactory, kafka: dict[str, Any]
) -> None:
    routing = routing_factory(**kafka)
    ready = routing.http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_dry_run_of_candidate_rules_only(routing: Routing) -> None:
    assign(routing)
    rules = cards_to_borrow()["rules"]
    r = routing.http.post("/v1/rules/dry-run", json={"rules": rules}, headers=routing.headers())
    assert r.status_code == 200, r.text
    assert r.json()["totals"]["journey_changed"] == 1
    both = routing.http.post(
        "/v1/rules/dry-run",
        json={"rules": rules, "catalog": cards_to_borrow()},
        headers=routing.headers(),
    )
    assert both.status_code == 422

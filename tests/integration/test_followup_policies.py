"""The followup configuration API on SQLite and PostgreSQL: calendars, SLA policies, escalation
ladders, notification channels and the taxonomy; versions and ETags, conditional writes, the
defaults document, and the scheduler's lookups reading what the API stored."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from support import Followup

from services.followup.models import ChannelRow
from services.followup.policies import apply_defaults, load_document
from services.followup.policy_lookup import PolicyLookup

DEFAULTS = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "followup.yaml"
SECRET = "s3cret-s3cret-s3cret"

NINE_TO_FIVE: dict[str, Any] = {
    "name": "Paris office",
    "tz": "Europe/Paris",
    "weekly": {str(d): [["09:00", "17:00"]] for d in range(5)},
    "country": "FR",
    "holidays": ["2026-12-24"],
    "working_days": [],
}
HOOK: dict[str, Any] = {"kind": "webhook", "config": {"url": "https://hooks.example/a"}}


def put(f: Followup, path: str, body: dict[str, Any], **headers: str) -> Any:
    return f.http.put(path, json=body, headers={**f.headers(), **headers})


def get(f: Followup, path: str, **who: Any) -> Any:
    return f.http.get(path, headers=f.headers(**who))


def delete(f: Followup, path: str, **headers: str) -> Any:
    return f.http.delete(path, headers={**f.headers(), **headers})


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def fields(r: Any) -> list[str]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in r.json()["errors"]]


def hook(secret: str | None = SECRET, **config: Any) -> dict[str, Any]:
    body = {"kind": "webhook", "config": {**HOOK["config"], **config}}
    if secret is not None:
        body["config"]["secret"] = secret
    return body


def policy(calendar: str = "paris", journey: str = "*", severity: str = "*", **minutes: int) -> Any:
    return {
        "journey": journey,
        "severity": severity,
        "calendar": calendar,
        "acknowledge_minutes": minutes.get("ack", 60),
        "first_promise_minutes": minutes.get("promise", 120),
        "resolve_minutes": minutes.get("resolve", 480),
    }


# --- round trips -----------------------------------------------------------------------------


def test_calendar_round_trip_with_versions_and_etags(followup: Followup) -> None:
    f = followup
    r = put(f, "/v1/calendars/paris", NINE_TO_FIVE)
    created = ok(r, 201)
    assert r.headers["etag"] == '"1"'
    assert r.headers["location"] == "/v1/calendars/paris"
    assert created["key"] == "paris"
    assert created["version"] == 1
    assert created["weekly"]["0"] == [["09:00", "17:00"]]
    assert created["holidays"] == ["2026-12-24"]

    # Staff read it; the same PUT again changes nothing, not even the version.
    r = get(f, "/v1/calendars/paris", subject="ana", role="owner")
    assert ok(r) == created
    assert r.headers["etag"] == '"1"'
    again = ok(put(f, "/v1/calendars/paris", NINE_TO_FIVE))
    assert again["version"] == 1

    changed = {**NINE_TO_FIVE, "weekly": {"5": [["22:00", "06:00"]], "6": [["10:00", "24:00"]]}}
    r = put(f, "/v1/calendars/paris", changed, **{"If-Match": '"1"'})
    assert ok(r)["version"] == 2
    assert r.headers["etag"] == '"2"'
    listed = ok(get(f, "/v1/calendars", role="manager", subject="m"))["items"]
    assert [c["key"] for c in listed] == ["paris"]
    assert listed[0]["weekly"] == {"5": [["22:00", "06:00"]], "6": [["10:00", "24:00"]]}

    assert ok(delete(f, "/v1/calendars/paris", **{"If-Match": '"2"'}), 204) is None
    assert get(f, "/v1/calendars/paris").status_code == 404
    assert delete(f, "/v1/calendars/paris").status_code == 404


def test_policies_ladders_channels_and_taxonomy_round_trip(followup: Followup) -> None:
    f = followup
    ok(put(f, "/v1/calendars/paris", NINE_TO_FIVE), 201)

    pid = str(uuid.uuid4())
    body = policy(journey="cards", severity="high", ack=30, promise=60, resolve=240)
    stored = ok(put(f, f"/v1/sla-policies/{pid}", body), 201)
    assert stored["id"] == pid
    assert (stored["journey"], stored["severity"], stored["calendar"]) == ("cards", "high", "paris")
    assert ok(get(f, f"/v1/sla-policies/{pid}")) == stored
    assert ok(get(f, "/v1/sla-policies?journey=cards"))["items"] == [stored]
    assert ok(get(f, "/v1/sla-policies?journey=borrow"))["items"] == []

    ok(put(f, "/v1/notification-channels/hook", hook()), 201)
    ok(
        put(
            f,
            "/v1/notification-channels/team-chat",
            {"kind": "chat", "config": {"url": "https://chat.example/hooks/T1"}},
        ),
        201,
    )
    ladder = {
        "levels": [
            {"offset_minutes": 60, "audience": "role:admin", "channel": "team-chat"},
            {"offset_minutes": 0, "audience": "journey_manager", "channel": "hook"},
            {"offset_minutes": -30, "audience": "owner", "channel": "hook"},
            {"offset_minutes": 0, "audience": "person:head-of-cx", "channel": "hook"},
        ]
    }
    r = put(f, "/v1/escalation-ladders/*", ladder)
    stored_ladder = ok(r, 201)
    # Sorted by offset; levels with the same offset keep the order they were given in.
    assert [(lv["offset_minutes"], lv["audience"]) for lv in stored_ladder["levels"]] == [
        (-30, "owner"),
        (0, "journey_manager"),
        (0, "person:head-of-cx"),
        (60, "role:admin"),
    ]
    assert stored_ladder["journey"] == "*"
    assert ok(get(f, "/v1/escalation-ladders/*")) == stored_ladder
    assert [x["journey"] for x in ok(get(f, "/v1/escalation-ladders"))["items"]] == ["*"]

    r = put(f, "/v1/taxonomy/root_cause/system-defect", {"label": "System defect"})
    assert ok(r, 201) == {"kind": "root_cause", "key": "system-defect", "label": "System defect"}
    etag = r.headers["etag"]
    ok(put(f, "/v1/taxonomy/resolution_code/refund", {"label": "Refund issued"}), 201)
    r = put(f, "/v1/taxonomy/root_cause/system-defect", {"label": "Outage"}, **{"If-Match": etag})
    assert ok(r)["label"] == "Outage"
    assert r.headers["etag"] != etag
    assert [e["key"] for e in ok(get(f, "/v1/taxonomy", role="owner", subject="a"))["items"]] == [
        "refund",
        "system-defect",
    ]
    assert ok(get(f, "/v1/taxonomy?kind=root_cause"))["items"] == [
        {"kind": "root_cause", "key": "system-defect", "label": "Outage"}
    ]
    assert ok(delete(f, "/v1/taxonomy/resolution_code/refund"), 204) is None
    assert get(f, "/v1/taxonomy/resolution_code/refund").status_code == 404

    # A ladder and a policy go; the calendar and channels are free to go too.
    ok(delete(f, "/v1/escalation-ladders/*"), 204)
    ok(delete(f, f"/v1/sla-policies/{pid}"), 204)
    ok(delete(f, "/v1/notification-channels/hook"), 204)
    ok(delete(f, "/v1/calendars/paris"), 204)


def test_channels_never_echo_secrets_and_keep_them_on_edit(followup: Followup) -> None:
    f = followup
    r = put(f, "/v1/notification-channels/hook", hook())
    body = ok(r, 201)
    assert SECRET not in r.text
    assert body["config"] == {"url": "https://hooks.example/a", "secret_set": True}
    assert body["enabled"] is True

    # Replacing without the secret keeps it (an edit need not send it again).
    r = put(f, "/v1/notification-channels/hook", {**hook(secret=None), "enabled": False})
    assert ok(r)["version"] == 2
    with f.container.uow() as uow:
        row = uow.session.get(ChannelRow, "hook")
        assert row is not None
        assert row.config["secret"] == SECRET
        assert row.enabled is False

    email = {
        "kind": "email",
        "config": {
            "host": "smtp.example",
            "port": 587,
            "sender": "alerts@bank.example",
            "username": "alerts",
            "password": "hunter2-hunter2",
            "addresses": {"manager:mgr-cards": "cards@bank.example"},
            "default_address": "cx@bank.example",
        },
    }
    r = put(f, "/v1/notification-channels/mail", email)
    body = ok(r, 201)
    assert "hunter2" not in r.text
    assert body["config"]["password_set"] is True
    assert body["config"]["starttls"] is True
    listing = get(f, "/v1/notification-channels", role="manager", subject="m")
    assert SECRET not in listing.text
    assert "hunter2" not in listing.text
    assert [c["key"] for c in ok(listing)["items"]] == ["hook", "mail"]
    one = get(f, "/v1/notification-channels/hook")
    assert SECRET not in one.text
    assert ok(one)["config"]["secret_set"] is True


# --- invalid input ---------------------------------------------------------------------------


def test_invalid_input_is_a_422_naming_the_field(followup: Followup) -> None:
    f = followup
    calendar_cases: list[tuple[dict[str, Any], str]] = [
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"weekly": {"0": [["09:00", "25:00"]]}}, "weekly.0.0.1"),
        ({"weekly": {"0": [["24:00", "06:00"]]}}, "weekly.0.0.0"),
        ({"weekly": {"7": [["09:00", "17:00"]]}}, "weekly.7.[key]"),
        ({"weekly": {}}, "weekly"),
        ({"country": "XX"}, "country"),
        ({"country": "US", "subdivision": "ZZ"}, "subdivision"),
        ({"country": None, "subdivision": "NY"}, "subdivision"),
        ({"holidays": ["2026-02-30"]}, "holidays.0"),
        ({"key": "london"}, "key"),
        ({"colour": "blue"}, "colour"),
    ]
    for change, field in calendar_cases:
        r = put(f, "/v1/calendars/paris", {**NINE_TO_FIVE, **change})
        assert field in fields(r), (change, r.text)
    assert get(f, "/v1/calendars/paris").status_code == 404  # nothing stored on the way

    r = put(f, "/v1/notification-channels/hook", hook(secret="too-short"))
    assert fields(r) == ["config.secret"]
    assert fields(put(f, "/v1/notification-channels/hook", hook(secret=None))) == ["config.secret"]
    assert "config.url" in fields(put(f, "/v1/notification-channels/hook", hook(url="ftp://x")))
    r = put(f, "/v1/notification-channels/mail", {"kind": "email", "config": {"host": "h"}})
    assert "config.sender" in fields(r)
    r = put(f, "/v1/notification-channels/c", {"kind": "pager", "config": {}})
    assert fields(r) == ["kind"]

    ok(put(f, "/v1/notification-channels/hook", hook()), 201)
    r = put(
        f,
        "/v1/escalation-ladders/cards",
        {
            "levels": [
                {"offset_minutes": 0, "audience": "owner", "channel": "hook"},
                {"offset_minutes": 30, "audience": "journey_manager", "channel": "pager"},
            ]
        },
    )
    assert fields(r) == ["levels.1.channel"]
    assert "pager" in r.json()["detail"]
    r = put(
        f,
        "/v1/escalation-ladders/cards",
        {"levels": [{"offset_minutes": 0, "audience": "everyone", "channel": "hook"}]},
    )
    assert fields(r) == ["levels.0.audience"]

    ok(put(f, "/v1/calendars/paris", NINE_TO_FIVE), 201)
    pid = uuid.uuid4()
    assert fields(put(f, f"/v1/sla-policies/{pid}", policy(calendar="nowhere"))) == ["calendar"]
    assert fields(put(f, f"/v1/sla-policies/{pid}", policy(severity="urgent"))) == ["severity"]
    assert fields(put(f, f"/v1/sla-policies/{pid}", policy(ack=600, resolve=480))) == [
        "acknowledge_minutes"
    ]
    assert fields(put(f, f"/v1/sla-policies/{pid}", policy(resolve=0))) == ["resolve_minutes"]
    r = put(f, f"/v1/sla-policies/{pid}", {**policy(), "id": str(uuid.uuid4())})
    assert fields(r) == ["id"]
    r = put(f, "/v1/taxonomy/cause/x", {"label": "X"})
    assert r.status_code == 422


# --- concurrency, conflicts, roles -----------------------------------------------------------


def test_stale_if_match_is_a_412_and_if_none_match_creates_only(followup: Followup) -> None:
    f = followup
    ok(put(f, "/v1/notification-channels/hook", hook()), 201)
    ok(put(f, "/v1/notification-channels/hook", hook(url="https://hooks.example/b")))  # v2

    r = put(f, "/v1/notification-channels/hook", hook(), **{"If-Match": '"1"'})
    assert r.status_code == 412, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["etag"] == '"2"'
    assert delete(f, "/v1/notification-channels/hook", **{"If-Match": '"1"'}).status_code == 412
    assert ok(get(f, "/v1/notification-channels/hook"))["config"]["url"].endswith("/b")

    # A weak tag never matches strongly; a list may hold the current one; "*" means "exists".
    assert put(
        f, "/v1/notification-channels/hook", hook(), **{"If-Match": 'W/"2"'}
    ).status_code == (412)
    ok(put(f, "/v1/notification-channels/hook", hook(), **{"If-Match": '"7", "2"'}))
    assert put(f, "/v1/notification-channels/new", hook(), **{"If-Match": "*"}).status_code == 412
    assert put(
        f, "/v1/notification-channels/hook", hook(), **{"If-None-Match": "*"}
    ).status_code == (412)
    ok(put(f, "/v1/notification-channels/new", hook(), **{"If-None-Match": "*"}), 201)
    ok(delete(f, "/v1/notification-channels/hook", **{"If-Match": '"3"'}), 204)

    ok(put(f, "/v1/taxonomy/root_cause/x", {"label": "X"}), 201)
    assert put(
        f, "/v1/taxonomy/root_cause/x", {"label": "Y"}, **{"If-Match": '"0"'}
    ).status_code == (412)


def test_deleting_what_is_still_used_is_a_409(followup: Followup) -> None:
    f = followup
    ok(put(f, "/v1/calendars/paris", NINE_TO_FIVE), 201)
    pid = uuid.uuid4()
    ok(put(f, f"/v1/sla-policies/{pid}", policy()), 201)
    r = delete(f, "/v1/calendars/paris")
    assert r.status_code == 409, r.text
    assert r.json()["policies"] == [str(pid)]

    ok(put(f, "/v1/notification-channels/hook", hook()), 201)
    ladder = {"levels": [{"offset_minutes": 0, "audience": "owner", "channel": "hook"}]}
    ok(put(f, "/v1/escalation-ladders/cards", ladder), 201)
    r = delete(f, "/v1/notification-channels/hook")
    assert r.status_code == 409, r.text
    assert r.json()["ladders"] == ["cards"]

    # Another policy for the same journey x severity conflicts with the first.
    r = put(f, f"/v1/sla-policies/{uuid.uuid4()}", policy(ack=10))
    assert r.status_code == 409, r.text
    assert r.json()["policy"] == str(pid)

    ok(delete(f, "/v1/escalation-ladders/cards"), 204)
    ok(delete(f, "/v1/notification-channels/hook"), 204)
    ok(delete(f, f"/v1/sla-policies/{pid}"), 204)
    ok(delete(f, "/v1/calendars/paris"), 204)


def test_only_admins_write_and_staff_read(followup: Followup) -> None:
    f = followup
    for role in ("owner", "manager"):
        r = f.http.put(
            "/v1/calendars/paris", json=NINE_TO_FIVE, headers=f.headers(subject="x", role=role)
        )
        assert r.status_code == 403, r.text
        r = f.http.delete("/v1/taxonomy/root_cause/x", headers=f.headers(subject="x", role=role))
        assert r.status_code == 403, r.text
    r = f.http.get("/v1/calendars", headers=f.headers(subject="c", role="intake-client"))
    assert r.status_code == 403
    assert f.http.get("/v1/calendars").status_code == 401
    assert ok(get(f, "/v1/calendars", subject="ana", role="owner")) == {"items": []}


# --- defaults and the scheduler's lookups ----------------------------------------------------


def test_defaults_load_once_into_empty_tables(followup: Followup) -> None:
    f = followup
    document = load_document(DEFAULTS)
    c = f.container
    assert apply_defaults(
        c.uow, c.clock, document, webhook_url="http://127.0.0.1:9/alerts", webhook_secret=SECRET
    )
    channels = {ch["key"]: ch for ch in ok(get(f, "/v1/notification-channels"))["items"]}
    assert channels["alerts-webhook"]["enabled"] is True
    assert channels["alerts-webhook"]["config"]["url"] == "http://127.0.0.1:9/alerts"
    assert channels["alerts-email"]["enabled"] is False  # no SMTP server given
    with c.uow() as uow:
        row = uow.session.get(ChannelRow, "alerts-webhook")
        assert row is not None
        assert row.config["secret"] == SECRET
    severities = {p["severity"] for p in ok(get(f, "/v1/sla-policies?journey=*"))["items"]}
    assert severities == {"low", "medium", "high", "critical"}
    assert ok(get(f, "/v1/calendars/bank-hours"))["tz"] == "America/New_York"
    assert len(ok(get(f, "/v1/escalation-ladders/*"))["levels"]) >= 3
    taxonomy = ok(get(f, "/v1/taxonomy"))["items"]
    assert {e["kind"] for e in taxonomy} == {"resolution_code", "root_cause"}

    # Loaded once: a second call (another start) changes nothing.
    before = ok(get(f, "/v1/notification-channels"))
    assert not apply_defaults(c.uow, c.clock, document, webhook_url=None, webhook_secret=None)
    assert ok(get(f, "/v1/notification-channels")) == before


def test_defaults_without_a_webhook_url_send_nothing(followup: Followup) -> None:
    f = followup
    c = f.container
    smtp = {"host": "smtp.bank.example", "port": 2525, "username": "u", "password": "p" * 12}
    assert apply_defaults(
        c.uow, c.clock, load_document(DEFAULTS), webhook_url=None, webhook_secret=None, smtp=smtp
    )
    channels = {ch["key"]: ch for ch in ok(get(f, "/v1/notification-channels"))["items"]}
    assert channels["alerts-webhook"]["enabled"] is False
    assert channels["alerts-webhook"]["config"]["secret_set"] is True  # a random one
    assert channels["alerts-email"]["enabled"] is True
    assert channels["alerts-email"]["config"]["host"] == "smtp.bank.example"
    assert "p" * 12 not in str(channels)


def test_defaults_are_not_loaded_over_existing_configuration(followup: Followup) -> None:
    f = followup
    c = f.container
    ok(put(f, "/v1/taxonomy/root_cause/mine", {"label": "Mine"}), 201)
    assert not apply_defaults(
        c.uow, c.clock, load_document(DEFAULTS), webhook_url=None, webhook_secret=None
    )
    assert ok(get(f, "/v1/calendars")) == {"items": []}


def test_an_invalid_defaults_document_is_refused_whole(followup: Followup) -> None:
    c = followup.container
    document = load_document(DEFAULTS)
    document["escalation_ladders"][0]["levels"][0]["channel"] = "nowhere"
    with pytest.raises(ValueError, match=r"levels\.0\.channel"):
        apply_defaults(c.uow, c.clock, document, webhook_url=None, webhook_secret=None)
    assert ok(get(followup, "/v1/calendars")) == {"items": []}


def test_the_scheduler_reads_what_the_api_stored(followup: Followup) -> None:
    f = followup
    ok(put(f, "/v1/calendars/paris", NINE_TO_FIVE), 201)
    always = {
        "name": "24/7",
        "tz": "UTC",
        "weekly": {str(d): [["00:00", "00:00"]] for d in range(7)},
    }
    ok(put(f, "/v1/calendars/always", always), 201)
    general = policy(calendar="paris", ack=60, promise=120, resolve=480)
    ok(put(f, f"/v1/sla-policies/{uuid.uuid4()}", general), 201)
    ok(put(f, f"/v1/sla-policies/{uuid.uuid4()}", policy(severity="high", ack=45)), 201)
    specific = policy(
        calendar="always", journey="cards", severity="high", ack=15, promise=30, resolve=60
    )
    ok(put(f, f"/v1/sla-policies/{uuid.uuid4()}", specific), 201)
    ok(put(f, "/v1/notification-channels/hook", hook()), 201)
    levels = [
        {"offset_minutes": 30, "audience": "journey_manager", "channel": "hook"},
        {"offset_minutes": -15, "audience": "owner", "channel": "hook"},
    ]
    ok(put(f, "/v1/escalation-ladders/*", {"levels": levels}), 201)
    ok(put(f, "/v1/escalation-ladders/cards", {"levels": levels[:1]}), 201)

    with f.container.uow() as uow:
        lookup = PolicyLookup(uow.session)
        found = lookup.sla_for("cards", "high")  # (journey, severity) beats everything
        assert found is not None
        sla, cal = found
        assert sla.acknowledge_within == timedelta(minutes=15)
        assert sla.resolve_within == timedelta(minutes=60)
        assert cal.tz == "UTC"
        found = lookup.sla_for("borrow", "high")  # ("*", severity) beats ("*", "*")
        assert found is not None
        assert found[0].acknowledge_within == timedelta(minutes=45)
        found = lookup.sla_for("borrow", "low")
        assert found is not None
        sla, cal = found
        assert sla.first_promise_within == timedelta(minutes=120)
        assert (cal.tz, cal.country) == ("Europe/Paris", "FR")
        assert cal.is_holiday(date(2026, 12, 24))

        default = lookup.ladder_for("borrow")
        assert [(lv.offset, lv.audience) for lv in default] == [
            (timedelta(minutes=-15), "owner"),
            (timedelta(minutes=30), "journey_manager"),
        ]
        assert [lv.audience for lv in lookup.ladder_for("cards")] == ["journey_manager"]

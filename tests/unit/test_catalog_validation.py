"""The catalog document (journeys as code): schema, cross-references and the path of every error,
YAML loading and the dump/parse round trip. Documents are built in code; nothing does I/O."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from services.routing.catalog import (
    Catalog,
    CatalogError,
    Conditions,
    cross_check,
    dump_yaml,
    first_stage,
    load_yaml,
    parse,
)

# --- builders ------------------------------------------------------------------------------------


def journey(
    key: str, team: list[str], stages: tuple[str, ...] = ("new",), **kw: Any
) -> dict[str, Any]:
    return {
        "key": key,
        "name": key.title(),
        "manager": f"{key}-lead",
        "stages": [{"key": s, "name": s.title()} for s in stages],
        "team": team,
        **kw,
    }


def owner(key: str, **kw: Any) -> dict[str, Any]:
    return {"key": key, "name": f"Owner {key}", "department": "ops", **kw}


def rule(key: str, journey: str = "borrow", stage: str = "fix", **kw: Any) -> dict[str, Any]:
    return {"key": key, "journey": journey, "stage": stage, **kw}


BASE: dict[str, Any] = {
    "journeys": [
        journey("triage", ["ann"], ("new",)),
        journey("borrow", ["ann", "bob"], ("intake", "fix")),
        journey("pay", ["bob", "cat"], ("dispute",), strategy="round_robin"),
    ],
    "owners": [owner("ann"), owner("bob"), owner("cat")],
    "rules": [
        rule("mortgages", when={"product": ["mortgage"]}),
        rule("cards", journey="pay", stage="dispute", when={"text_any": ["card"]}),
    ],
}


def doc(change: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
    """A fresh copy of the valid document, changed in place by `change`."""
    data = copy.deepcopy(BASE)
    if change is not None:
        change(data)
    return data


def errors(data: Any) -> list[dict[str, str]]:
    with pytest.raises(CatalogError) as caught:
        parse(data)
    assert caught.value.errors, "a CatalogError always lists its problems"
    for e in caught.value.errors:
        assert set(e) == {"path", "message"}
        assert e["message"]
    return caught.value.errors


def paths(data: Any) -> list[str]:
    return [e["path"] for e in errors(data)]


def only_error(data: Any) -> dict[str, str]:
    found = errors(data)
    assert len(found) == 1, found
    return found[0]


# --- a valid catalog -----------------------------------------------------------------------------


def test_a_valid_catalog_parses() -> None:
    catalog = parse(doc())
    assert isinstance(catalog, Catalog)
    assert [j.key for j in catalog.journeys] == ["triage", "borrow", "pay"]
    assert [o.key for o in catalog.owners] == ["ann", "bob", "cat"]
    assert [r.key for r in catalog.rules] == ["mortgages", "cards"]
    assert catalog.journeys[1].team == ["ann", "bob"]
    assert first_stage(catalog.journeys[1]) == "intake"
    assert cross_check(catalog) == []


def test_defaults() -> None:
    catalog = parse(doc(lambda d: d.pop("rules")))
    assert catalog.rules == []
    assert catalog.journeys[0].strategy == "least_loaded"
    assert catalog.journeys[2].strategy == "round_robin"
    ann = catalog.owners[0]
    assert (ann.capacity, ann.languages, ann.products, ann.timezone) == (20, [], [], "UTC")
    r = parse(doc(lambda d: d.update(rules=[rule("plain")]))).rules[0]
    assert (r.priority, r.when, r.severity) == (100, Conditions(), None)


def test_only_the_triage_journey_is_required() -> None:
    minimal = {"journeys": [journey("triage", ["ann"])], "owners": [owner("ann")]}
    assert parse(minimal).rules == []


def test_a_team_may_share_members_with_other_journeys_and_rules_may_share_a_stage() -> None:
    data = doc(lambda d: d["rules"].append(rule("more-mortgages", priority=5)))
    assert len(parse(data).rules) == 3


def test_the_journey_manager_need_not_be_an_owner() -> None:
    assert parse(doc())  # managers "triage-lead" etc. are not owners


# --- cross-references ----------------------------------------------------------------------------


def test_an_unknown_owner_in_a_team_is_reported_with_its_path() -> None:
    error = only_error(doc(lambda d: d["journeys"][2]["team"].append("zed")))
    assert error["path"] == "journeys[2].team[2]"
    assert "unknown owner" in error["message"]
    assert "zed" in error["message"]


def test_an_owner_listed_twice_in_a_team_is_reported() -> None:
    error = only_error(doc(lambda d: d["journeys"][2]["team"].insert(1, "cat")))
    assert error["path"] == "journeys[2].team[2]"
    assert error["message"] == "'cat' listed twice"


def test_every_repeated_team_member_is_reported_at_its_own_index() -> None:
    found = errors(doc(lambda d: d["journeys"][1]["team"].extend(["bob", "ann"])))
    assert [e["path"] for e in found] == ["journeys[1].team[2]", "journeys[1].team[3]"]
    assert all("listed twice" in e["message"] for e in found)


def test_a_rule_pointing_at_a_missing_stage_is_reported() -> None:
    error = only_error(doc(lambda d: d["rules"][1].update(stage="fix")))
    assert error["path"] == "rules[1].stage"
    assert "'pay'" in error["message"]
    assert "'fix'" in error["message"]


def test_a_rule_pointing_at_a_missing_journey_is_reported_once() -> None:
    error = only_error(doc(lambda d: d["rules"][0].update(journey="insure")))
    assert error["path"] == "rules[0].journey"
    assert "unknown journey 'insure'" in error["message"]


@pytest.mark.parametrize(
    ("section", "index", "add"),
    [
        ("journeys", 3, journey("borrow", ["cat"], ("intake", "fix"))),
        ("owners", 3, owner("bob")),
        ("rules", 2, rule("cards")),
    ],
)
def test_duplicate_keys_are_reported_at_the_second_one(
    section: str, index: int, add: dict[str, Any]
) -> None:
    error = only_error(doc(lambda d: d[section].append(add)))
    assert error["path"] == f"{section}[{index}].key"
    assert "duplicate key" in error["message"]


def test_a_duplicate_journey_does_not_make_rules_on_the_first_one_fail() -> None:
    error = only_error(doc(lambda d: d["journeys"].append(journey("borrow", ["cat"]))))
    assert error["path"] == "journeys[3].key"


def test_every_duplicate_is_reported() -> None:
    data = doc(lambda d: d["owners"].extend([owner("ann"), owner("ann"), owner("dan")]))
    assert paths(data) == ["owners[3].key", "owners[4].key"]


def test_a_duplicate_stage_is_reported() -> None:
    data = doc(lambda d: d["journeys"][1]["stages"].append({"key": "intake", "name": "Again"}))
    error = only_error(data)
    assert error["path"] == "journeys[1].stages[2].key"
    assert "duplicate stage 'intake'" in error["message"]


def test_the_same_stage_key_in_two_journeys_is_fine() -> None:
    data = doc(lambda d: d["journeys"][2]["stages"].append({"key": "fix", "name": "Fix"}))
    assert parse(data)


def test_a_missing_triage_journey_is_reported() -> None:
    data = doc(lambda d: d["journeys"].pop(0))
    error = only_error(data)
    assert error["path"] == "journeys"
    assert "triage" in error["message"]


def test_several_cross_reference_errors_are_reported_at_once() -> None:
    def break_everything(d: dict[str, Any]) -> None:
        d["journeys"][0]["key"] = "inbox"  # no triage any more
        d["journeys"][1]["team"].append("zed")  # unknown owner
        d["journeys"][2]["team"].append("cat")  # listed twice
        d["journeys"][2]["stages"].append({"key": "dispute", "name": "Again"})
        d["owners"].append(owner("ann"))  # duplicate owner
        d["rules"][0]["stage"] = "nowhere"  # missing stage
        d["rules"][1]["journey"] = "insure"  # missing journey
        d["rules"].append(rule("cards"))  # duplicate rule

    assert sorted(paths(doc(break_everything))) == sorted(
        [
            "journeys",
            "journeys[1].team[2]",
            "journeys[2].team[2]",
            "journeys[2].stages[1].key",
            "owners[3].key",
            "rules[0].stage",
            "rules[1].journey",
            "rules[2].key",
        ]
    )


def test_cross_check_reports_without_raising() -> None:
    catalog = Catalog.model_validate(doc(lambda d: d["journeys"][1]["team"].append("zed")))
    assert cross_check(catalog) == [
        {"path": "journeys[1].team[2]", "message": "unknown owner 'zed'"}
    ]


# --- schema --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["journeys"][1].update(colour="blue"), "journeys[1].colour"),
        (lambda d: d["journeys"][1]["stages"][0].update(sla="1d"), "journeys[1].stages[0].sla"),
        (lambda d: d["owners"][2].update(phone="123"), "owners[2].phone"),
        (lambda d: d["rules"][1].update(owner="ann"), "rules[1].owner"),
        (lambda d: d["rules"][0]["when"].update(customer="x"), "rules[0].when.customer"),
    ],
    ids=["top", "journey", "stage", "owner", "rule", "conditions"],
)
def test_an_unknown_field_is_rejected_with_its_path(
    change: Callable[[dict[str, Any]], Any], path: str
) -> None:
    error = only_error(doc(change))
    assert error["path"] == path
    assert "Extra inputs are not permitted" in error["message"]


BAD_KEYS = ["Borrow", "_borrow", "-borrow", ".borrow", "has space", "ümlaut", "a/b", "", "a" * 101]
GOOD_KEYS = ["a", "0", "borrow", "loans.mortgages", "home-loan_2", "9lives", "a" * 100]


@pytest.mark.parametrize("key", BAD_KEYS)
@pytest.mark.parametrize(
    ("where", "path"),
    [
        (lambda d, k: d["journeys"][2].update(key=k), "journeys[2].key"),
        (lambda d, k: d["journeys"][1]["stages"][0].update(key=k), "journeys[1].stages[0].key"),
        (lambda d, k: d["owners"].append(owner(k)), "owners[3].key"),
        (lambda d, k: d["rules"][1].update(key=k), "rules[1].key"),
    ],
    ids=["journey", "stage", "owner", "rule"],
)
def test_a_bad_key_is_rejected_with_its_path(
    where: Callable[[dict[str, Any], str], Any], path: str, key: str
) -> None:
    error = only_error(doc(lambda d: where(d, key)))
    assert error["path"] == path
    assert "pattern" in error["message"]


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_good_keys_are_accepted(key: str) -> None:
    def rename(d: dict[str, Any]) -> None:
        d["owners"].append(owner(key))
        d["journeys"][2]["team"].append(key)
        d["journeys"][2]["stages"].append({"key": key, "name": "Stage"})
        d["rules"].append(rule(key, journey="pay", stage=key))

    assert parse(doc(rename)).owners[3].key == key


@pytest.mark.parametrize("capacity", [0, -1, 10_001])
def test_capacity_out_of_range_is_rejected(capacity: int) -> None:
    error = only_error(doc(lambda d: d["owners"][1].update(capacity=capacity)))
    assert error["path"] == "owners[1].capacity"


@pytest.mark.parametrize("capacity", [1, 10_000])
def test_capacity_bounds_are_accepted(capacity: int) -> None:
    assert parse(doc(lambda d: d["owners"][1].update(capacity=capacity))).owners[1].capacity == (
        capacity
    )


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["journeys"][1].pop("manager"), "journeys[1].manager"),
        (lambda d: d["journeys"][1].pop("stages"), "journeys[1].stages"),
        (lambda d: d["journeys"][1].update(stages=[]), "journeys[1].stages"),
        (lambda d: d["journeys"][1].update(team=[]), "journeys[1].team"),
        (lambda d: d["journeys"][1].update(name=""), "journeys[1].name"),
        (lambda d: d["journeys"][1].update(strategy="random"), "journeys[1].strategy"),
        (lambda d: d["journeys"][1]["stages"][1].pop("name"), "journeys[1].stages[1].name"),
        (lambda d: d["journeys"][1].update(team="ann"), "journeys[1].team"),
        (lambda d: d["owners"][0].pop("department"), "owners[0].department"),
        (lambda d: d["owners"][0].update(languages="en"), "owners[0].languages"),
        (lambda d: d.pop("owners"), "owners"),
        (lambda d: d.pop("journeys"), "journeys"),
        (lambda d: d["rules"][0].pop("stage"), "rules[0].stage"),
        (lambda d: d["rules"][0].update(priority="high"), "rules[0].priority"),
        (lambda d: d["rules"][0].update(severity="urgent"), "rules[0].severity"),
        (lambda d: d["rules"][0].update(when=None), "rules[0].when"),
        (lambda d: d["rules"][0]["when"].update(channel=["fax"]), "rules[0].when.channel[0]"),
        (
            lambda d: d["rules"][0]["when"].update(severity=["low", "urgent"]),
            "rules[0].when.severity[1]",
        ),
        (lambda d: d["rules"][0]["when"].update(text_any="card"), "rules[0].when.text_any"),
        (
            lambda d: d["rules"][0]["when"].update(repeat_contact="maybe"),
            "rules[0].when.repeat_contact",
        ),
    ],
)
def test_schema_errors_name_their_path(change: Callable[[dict[str, Any]], Any], path: str) -> None:
    assert paths(doc(change)) == [path]


@pytest.mark.parametrize("data", [None, [], "catalog", 42, [{"journeys": []}]])
def test_a_document_that_is_not_a_mapping_is_rejected(data: Any) -> None:
    assert paths(data) == ["(document)"]


def test_several_schema_errors_are_reported_at_once() -> None:
    def break_everything(d: dict[str, Any]) -> None:
        d["journeys"][1]["key"] = "Borrow"
        d["journeys"][2]["colour"] = "red"
        d["owners"][0]["capacity"] = 0
        d["owners"][2]["key"] = "Cat"
        d["rules"][1]["when"]["channel"] = ["fax"]

    assert sorted(paths(doc(break_everything))) == sorted(
        [
            "journeys[1].key",
            "journeys[2].colour",
            "owners[0].capacity",
            "owners[2].key",
            "rules[1].when.channel[0]",
        ]
    )


def test_the_error_message_names_every_path() -> None:
    with pytest.raises(CatalogError) as caught:
        parse(doc(lambda d: d["journeys"][1]["team"].extend(["zed", "ann"])))
    assert isinstance(caught.value, ValueError)
    text = str(caught.value)
    assert "journeys[1].team[2]: unknown owner 'zed'" in text
    assert "journeys[1].team[3]: 'ann' listed twice" in text


# --- YAML ----------------------------------------------------------------------------------------

YAML = """
journeys:
  - key: triage
    name: Triage
    manager: cx-lead
    stages: [{key: new, name: New}]
    team: [ann]
  - key: borrow
    name: "Borrow: loans & mortgages"
    manager: borrow-lead
    stages:
      - {key: intake, name: Intake}
      - {key: fix, name: Fix}
    team: [ann, bob]
    strategy: round_robin
owners:
  - {key: ann, name: Ann, department: lending, capacity: 5, languages: [en, es]}
  - {key: bob, name: Bob, department: payments}
rules:
  - key: mortgages
    priority: 10
    when: {product: [mortgage], text_any: ["$5", lost card]}
    journey: borrow
    stage: fix
    severity: high
"""


def test_load_yaml_parses_a_document() -> None:
    catalog = load_yaml(YAML)
    assert catalog.journeys[1].name == "Borrow: loans & mortgages"
    assert catalog.journeys[1].strategy == "round_robin"
    assert catalog.owners[0].languages == ["en", "es"]
    assert catalog.rules[0].when.text_any == ["$5", "lost card"]
    assert catalog.rules[0].severity == "high"


@pytest.mark.parametrize(
    "text",
    [
        "journeys: [\n",
        "journeys:\n  - key: triage\n   name: bad indent\n",
        "key: {unclosed",
        "a: b: c",
        "\t- tab",
    ],
)
def test_load_yaml_with_invalid_yaml_gives_a_catalog_error(text: str) -> None:
    with pytest.raises(CatalogError) as caught:
        load_yaml(text)
    assert [e["path"] for e in caught.value.errors] == ["(document)"]
    assert "not valid YAML" in caught.value.errors[0]["message"]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n", "just text"])
def test_load_yaml_of_something_other_than_a_mapping_gives_a_catalog_error(text: str) -> None:
    with pytest.raises(CatalogError) as caught:
        load_yaml(text)
    assert [e["path"] for e in caught.value.errors] == ["(document)"]


def test_load_yaml_reports_cross_check_errors_with_paths() -> None:
    with pytest.raises(CatalogError) as caught:
        load_yaml(YAML.replace("team: [ann, bob]", "team: [ann, zed]"))
    assert [e["path"] for e in caught.value.errors] == ["journeys[1].team[1]"]


def test_load_yaml_does_not_construct_python_objects() -> None:
    with pytest.raises(CatalogError):
        load_yaml("journeys: !!python/object/apply:os.system ['true']\n")


# --- round trip ----------------------------------------------------------------------------------

# Keys YAML 1.1 would otherwise read as booleans, nulls, numbers or dates.
TRICKY = ["on", "no", "yes", "off", "null", "true", "1e3", "0x10", "007", "1_000", "2024-01-01"]


def rich() -> dict[str, Any]:
    def enrich(d: dict[str, Any]) -> None:
        d["journeys"][1]["description"] = "Loans: rates, fees & arrears — «quoted» 'text'"
        d["owners"][0].update(
            email="ann@example.com",
            capacity=7,
            languages=["en", "es-MX"],
            products=["mortgage", "home-loan"],
            timezone="Europe/London",
            name="Ann O'Neil: #1",
        )
        d["owners"].extend(owner(k, name=k) for k in TRICKY)
        d["journeys"][2]["team"].extend(TRICKY)
        d["journeys"][2]["stages"].extend({"key": k, "name": k} for k in TRICKY)
        d["rules"].append(
            rule(
                "everything",
                priority=-1,
                description="multi\nline: yes",
                severity="critical",
                when={
                    "channel": ["phone", "email"],
                    "product": ["mortgage"],
                    "category": ["fees"],
                    "touchpoint": ["branch"],
                    "severity": ["high", "critical"],
                    "language": ["en"],
                    "tier": ["gold"],
                    "repeat_contact": False,
                    "text_any": ["$5", "lost card", "?!", "yes"],
                    "text_all": ["null", "100%"],
                },
            )
        )
        d["rules"].append(rule("tricky", journey="pay", stage="on", when={}))

    return doc(enrich)


@pytest.mark.parametrize("make", [doc, rich], ids=["base", "rich"])
def test_dump_yaml_round_trips_to_an_equal_catalog(make: Callable[[], dict[str, Any]]) -> None:
    catalog = parse(make())
    text = dump_yaml(catalog)
    assert load_yaml(text) == catalog
    assert parse(yaml.safe_load(text)) == catalog
    # and it is stable
    assert dump_yaml(load_yaml(text)) == text


def test_dump_yaml_keeps_document_order_and_omits_nothing_meaningful() -> None:
    catalog = parse(rich())
    data = yaml.safe_load(dump_yaml(catalog))
    assert list(data) == ["journeys", "owners", "rules"]
    assert [j["key"] for j in data["journeys"]] == ["triage", "borrow", "pay"]
    assert [r["key"] for r in data["rules"]] == ["mortgages", "cards", "everything", "tricky"]
    assert data["rules"][2]["when"]["repeat_contact"] is False
    assert [o["key"] for o in data["owners"]][3:] == TRICKY

"""Pure routing decisions: which rule matches a complaint, and so which journey, stage and
severity it gets (`Router.decide`). Catalogs are built in code; nothing here does I/O."""

from __future__ import annotations

from typing import Any

import pytest

from services.routing.catalog import Catalog, parse
from services.routing.domain import Facts, Route, Router

# --- builders -----------------------------------------------------------------------------------


def rule(
    key: str,
    *,
    journey: str = "borrow",
    stage: str = "fix",
    priority: int | None = None,
    override: str | None = None,
    **when: Any,
) -> dict[str, Any]:
    """A rule document; other keyword arguments are its conditions (`override` is the rule's
    severity override, so that `severity=` stays the condition on the complaint's severity)."""
    doc: dict[str, Any] = {"key": key, "journey": journey, "stage": stage, "when": when}
    if priority is not None:
        doc["priority"] = priority
    if override is not None:
        doc["severity"] = override
    return doc


def catalog(*rules: dict[str, Any], triage_stages: tuple[str, ...] = ("new",)) -> Catalog:
    """Two owners, a triage journey and a `borrow` journey (stages `intake`, `fix`)."""
    return parse(
        {
            "journeys": [
                {
                    "key": "triage",
                    "name": "Triage",
                    "manager": "cx-lead",
                    "stages": [{"key": s, "name": s.title()} for s in triage_stages],
                    "team": ["ann"],
                },
                {
                    "key": "borrow",
                    "name": "Borrow: loans & mortgages",
                    "manager": "borrow-lead",
                    "stages": [{"key": "intake", "name": "Intake"}, {"key": "fix", "name": "Fix"}],
                    "team": ["ann", "bob"],
                },
                {
                    "key": "pay",
                    "name": "Pay: cards & payments",
                    "manager": "pay-lead",
                    "stages": [{"key": "dispute", "name": "Dispute"}],
                    "team": ["bob"],
                },
            ],
            "owners": [
                {"key": "ann", "name": "Ann", "department": "lending"},
                {"key": "bob", "name": "Bob", "department": "payments"},
            ],
            "rules": list(rules),
        }
    )


def facts(**kw: Any) -> Facts:
    kw.setdefault("channel", "phone")
    kw.setdefault("severity", "medium")
    kw.setdefault("text", "")
    return Facts(**kw)


def decide(*rules: dict[str, Any], **fact_kw: Any) -> Route:
    return Router(catalog(*rules)).decide(facts(**fact_kw))


def matches(when: dict[str, Any], **fact_kw: Any) -> bool:
    """Does a single rule with these conditions match these facts?"""
    return decide(rule("r", **when), **fact_kw).rule == "r"


# --- each condition alone ------------------------------------------------------------------------

SINGLE = [
    # (condition, rule value, facts that match, facts that do not)
    ("channel", ["email"], {"channel": "email"}, {"channel": "phone"}),
    ("product", ["mortgage"], {"product": "mortgage"}, {"product": "credit-card"}),
    ("category", ["fees"], {"category": "fees"}, {"category": "rates"}),
    ("touchpoint", ["branch"], {"touchpoint": "branch"}, {"touchpoint": "app"}),
    ("severity", ["high"], {"severity": "high"}, {"severity": "low"}),
    ("language", ["fr"], {"language": "fr"}, {"language": "de"}),
    ("tier", ["gold"], {"tier": "gold"}, {"tier": "silver"}),
    ("repeat_contact", True, {"repeat_contact": True}, {"repeat_contact": False}),
    ("repeat_contact", False, {"repeat_contact": False}, {"repeat_contact": True}),
]


@pytest.mark.parametrize(
    ("name", "value", "yes", "no"), SINGLE, ids=[f"{s[0]}={s[1]}" for s in SINGLE]
)
def test_each_condition_alone_matches_its_value_and_nothing_else(
    name: str, value: Any, yes: dict[str, Any], no: dict[str, Any]
) -> None:
    assert matches({name: value}, **yes)
    assert not matches({name: value}, **no)


@pytest.mark.parametrize(
    ("name", "values", "hits", "misses"),
    [
        ("channel", ["email", "chat"], ["email", "chat"], ["phone", "web"]),
        ("severity", ["high", "critical"], ["high", "critical"], ["low", "medium"]),
        ("product", ["mortgage", "loan"], ["mortgage", "loan"], ["card"]),
        ("category", ["fees", "rates"], ["fees", "rates"], ["fraud"]),
        ("touchpoint", ["branch", "atm"], ["branch", "atm"], ["app"]),
        ("language", ["fr", "de"], ["fr", "de"], ["es"]),
        ("tier", ["gold", "platinum"], ["gold", "platinum"], ["basic"]),
    ],
)
def test_a_list_means_any_of_its_values(
    name: str, values: list[str], hits: list[str], misses: list[str]
) -> None:
    for value in hits:
        assert matches({name: values}, **{name: value}), value
    for value in misses:
        assert not matches({name: values}, **{name: value}), value


@pytest.mark.parametrize(
    ("name", "rule_value", "complaint_value"),
    [
        ("channel", ["email"], "EMAIL"),
        ("product", ["Mortgage"], "mortgage"),
        ("product", ["mortgage"], "MORTGAGE"),
        ("product", ["Credit Card"], "credit card"),
        ("category", ["FEES"], "Fees"),
        ("touchpoint", ["Branch"], "bRANCH"),
        ("severity", ["high"], "HIGH"),
        ("language", ["FR"], "fr"),
        ("language", ["fr"], "FR"),
        ("tier", ["Gold"], "GOLD"),
        # the complaint's own value is trimmed
        ("product", ["mortgage"], "  mortgage "),
    ],
)
def test_conditions_are_case_insensitive(
    name: str, rule_value: list[str], complaint_value: str
) -> None:
    assert matches({name: rule_value}, **{name: complaint_value})


# --- language ------------------------------------------------------------------------------------


@pytest.mark.parametrize("complaint", ["en", "en-GB", "en-gb", "EN-US", "en-Latn-GB"])
def test_a_language_rule_matches_the_language_with_any_region(complaint: str) -> None:
    assert matches({"language": ["en"]}, language=complaint)


@pytest.mark.parametrize("complaint", ["eng", "enx", "fr-GB", "de", "e"])
def test_a_language_rule_does_not_match_other_languages(complaint: str) -> None:
    assert not matches({"language": ["en"]}, language=complaint)


def test_a_regional_language_rule_matches_that_region_only() -> None:
    assert matches({"language": ["en-GB"]}, language="en-gb")
    assert matches({"language": ["en-GB"]}, language="EN-GB")
    assert not matches({"language": ["en-GB"]}, language="en-US")
    assert not matches({"language": ["en-GB"]}, language="en")


# --- missing complaint fields --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("product", ["mortgage"]),
        ("category", ["fees"]),
        ("touchpoint", ["branch"]),
        ("language", ["en"]),
        ("tier", ["gold"]),
    ],
)
def test_a_missing_complaint_field_never_matches_a_condition_on_it(
    name: str, values: list[str]
) -> None:
    assert not matches({name: values}, **{name: None})
    # nor does it match through the event-shaped constructor
    data = {"channel": "phone", "severity": "medium", "summary": "hello", "customer": {}}
    when: dict[str, Any] = {name: values}
    assert Router(catalog(rule("r", **when))).decide(Facts.of(data)).rule is None


def test_a_missing_field_does_not_stop_other_rules_matching() -> None:
    route = decide(
        rule("by-product", product=["mortgage"], priority=1),
        rule("by-channel", channel=["phone"], priority=2),
        channel="phone",
    )
    assert route.rule == "by-channel"


def test_repeat_contact_false_matches_a_complaint_without_repeat_information() -> None:
    data = {"channel": "web", "summary": "hi"}
    assert Router(catalog(rule("first", repeat_contact=False))).decide(Facts.of(data)).rule == (
        "first"
    )
    assert Router(catalog(rule("again", repeat_contact=True))).decide(Facts.of(data)).rule is None


# --- conditions combined -------------------------------------------------------------------------

COMBINED: dict[str, Any] = {
    "channel": ["phone", "email"],
    "product": ["mortgage"],
    "category": ["fees"],
    "touchpoint": ["branch"],
    "severity": ["high"],
    "language": ["en"],
    "tier": ["gold"],
    "repeat_contact": True,
    "text_any": ["overcharged", "double charged"],
    "text_all": ["arrangement fee"],
}
FITS: dict[str, Any] = {
    "channel": "email",
    "product": "mortgage",
    "category": "fees",
    "touchpoint": "branch",
    "severity": "high",
    "language": "en-GB",
    "tier": "gold",
    "repeat_contact": True,
    "text": "I was overcharged the arrangement fee",
}
BREAKS: dict[str, Any] = {
    "channel": "chat",
    "product": "loan",
    "category": "rates",
    "touchpoint": "app",
    "severity": "low",
    "language": "fr",
    "tier": "basic",
    "repeat_contact": False,
    "text": "I was overcharged",  # text_any holds, text_all does not
}


def test_all_conditions_holding_matches() -> None:
    assert matches(COMBINED, **FITS)


@pytest.mark.parametrize("broken", sorted(BREAKS))
def test_every_condition_must_hold(broken: str) -> None:
    assert not matches(COMBINED, **{**FITS, broken: BREAKS[broken]})


def test_text_any_must_hold_when_combined() -> None:
    assert not matches(COMBINED, **{**FITS, "text": "the arrangement fee was wrong"})


# --- text ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "my card was declined",
        "card declined",
        "declined card",
        "Card!",
        "the CARD, again",
        "card-holder support",
        "(card)",
        "card\nblocked",
    ],
)
def test_text_any_matches_a_whole_word_anywhere(text: str) -> None:
    assert matches({"text_any": ["card"]}, text=text)


@pytest.mark.parametrize(
    "text", ["I will discard it", "cardigan", "postcards", "scorecard", "carding", ""]
)
def test_text_any_respects_word_boundaries(text: str) -> None:
    assert not matches({"text_any": ["card"]}, text=text)


def test_text_any_matches_any_one_phrase() -> None:
    when = {"text_any": ["fraud", "stolen", "unauthorised"]}
    assert matches(when, text="my wallet was stolen")
    assert matches(when, text="an unauthorised payment")
    assert not matches(when, text="a late payment")


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("I reported a lost card yesterday", True),
        ("LOST CARD", True),
        ("lost card.", True),
        ("a lost cardigan", False),
        ("card lost", False),
        ("lostcard", False),
        ("it was lost; card found", False),
    ],
)
def test_a_phrase_with_spaces_matches_as_a_whole(text: str, hit: bool) -> None:
    assert matches({"text_any": ["lost card"]}, text=text) is hit


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("charged $5 twice", True),
        ("$5 fee", True),
        ("a fee of $5.", True),
        ("a fee of $5", True),
        ("charged $50", False),
        ("charged $55", False),
        ("charged 5 dollars", False),
    ],
)
def test_a_phrase_starting_with_a_non_word_character(text: str, hit: bool) -> None:
    assert matches({"text_any": ["$5"]}, text=text) is hit


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("is this a problem?!", True),
        ("what?! again", True),
        ("what? again", False),
    ],
)
def test_a_phrase_ending_with_non_word_characters(text: str, hit: bool) -> None:
    assert matches({"text_any": ["?!"]}, text=text) is hit
    assert matches({"text_any": ["problem?!"]}, text="is this a problem?!")


def test_phrases_are_literal_text_not_patterns() -> None:
    assert matches({"text_any": ["a.b"]}, text="see a.b here")
    assert not matches({"text_any": ["a.b"]}, text="see axb here")
    assert matches({"text_any": ["fee (late)"]}, text="a fee (late) applied")
    assert not matches({"text_any": ["fee (late)"]}, text="a fee late applied")
    assert not matches({"text_any": ["c++"]}, text="c is fine")
    assert matches({"text_any": ["c++"]}, text="c++ compiler")


def test_text_all_needs_every_phrase_in_any_order() -> None:
    when = {"text_all": ["mortgage", "arrears"]}
    assert matches(when, text="mortgage in arrears")
    assert matches(when, text="Arrears on my MORTGAGE")
    assert not matches(when, text="mortgage payment")
    assert not matches(when, text="arrears letter")
    assert not matches(when, text="mortgages in arrearsx")


def test_text_all_respects_word_boundaries() -> None:
    assert not matches({"text_all": ["card", "fee"]}, text="discard the feedback")


def test_text_is_looked_up_in_summary_and_description() -> None:
    router = Router(catalog(rule("r", text_all=["refund", "branch"])))

    def route(**data: Any) -> Route:
        return router.decide(Facts.of({"channel": "phone", **data}))

    assert route(summary="refund refused", description="at the branch").rule == "r"
    assert route(summary="at the branch", description="no refund").rule == "r"
    assert route(summary="refund and branch").rule == "r"
    assert route(summary="nothing", description="refund and branch").rule == "r"
    assert route(summary="refund refused", description=None).rule is None
    assert route(summary="refund refused").rule is None


def test_text_any_in_description_only() -> None:
    router = Router(catalog(rule("r", text_any=["chargeback"])))
    data = {"channel": "web", "summary": "problem", "description": "I want a chargeback"}
    assert router.decide(Facts.of(data)).rule == "r"


# --- ordering ------------------------------------------------------------------------------------


def test_lower_priority_runs_first_whatever_the_document_order() -> None:
    route = decide(
        rule("late", priority=50, stage="intake"),
        rule("early", priority=10, stage="fix"),
        rule("later", priority=90, journey="pay", stage="dispute"),
    )
    assert (route.rule, route.stage) == ("early", "fix")


def test_negative_priorities_run_before_the_default() -> None:
    assert decide(rule("default"), rule("urgent", priority=-5)).rule == "urgent"


def test_equal_priority_ties_go_to_document_order() -> None:
    assert decide(rule("one", priority=5), rule("two", priority=5)).rule == "one"
    assert decide(rule("two", priority=5), rule("one", priority=5)).rule == "two"
    # the default priority is shared too
    assert decide(rule("b"), rule("a"), rule("c")).rule == "b"


def test_the_first_matching_rule_wins() -> None:
    rules = (
        rule("cards", priority=1, journey="pay", stage="dispute", text_any=["card"]),
        rule("mortgage", priority=2, stage="fix", product=["mortgage"]),
        rule("phone", priority=3, stage="intake", channel=["phone"]),
    )
    assert decide(*rules, product="mortgage", text="my card").rule == "cards"
    assert decide(*rules, product="mortgage", text="rate").rule == "mortgage"
    assert decide(*rules, product="loan", text="rate").rule == "phone"
    assert decide(*rules, channel="email", product="loan").rule is None


def test_a_rule_without_conditions_matches_everything() -> None:
    catch_all = rule("everything", priority=1000, stage="intake")
    specific = rule("mortgage", priority=1, product=["mortgage"])
    assert decide(catch_all).rule == "everything"
    assert decide(catch_all, channel="letter", severity="critical", text="").rule == "everything"
    assert decide(catch_all, specific, product="mortgage").rule == "mortgage"
    assert decide(catch_all, specific, product="loan").rule == "everything"


# --- what the route says -------------------------------------------------------------------------


def test_the_route_takes_journey_and_stage_from_the_rule() -> None:
    route = decide(rule("cards", journey="pay", stage="dispute"))
    assert route == Route(journey="pay", stage="dispute", severity="medium", rule="cards")


@pytest.mark.parametrize("override", ["low", "medium", "high", "critical"])
def test_the_rule_severity_overrides_the_complaints(override: str) -> None:
    route = decide(rule("r", override=override), severity="low")
    assert route.severity == override


@pytest.mark.parametrize("own", ["low", "medium", "high", "critical"])
def test_without_an_override_the_complaint_keeps_its_severity(own: str) -> None:
    assert decide(rule("r"), severity=own).severity == own


def test_the_severity_condition_looks_at_the_complaints_own_severity() -> None:
    # a rule that overrides to critical but only matches "low" complaints
    r = rule("escalate-low", override="critical", severity=["low"])
    assert decide(r, severity="low").severity == "critical"
    assert decide(r, severity="high") == Route("triage", "new", "high", None)


@pytest.mark.parametrize("severity", ["low", "medium", "high", "critical"])
def test_no_match_goes_to_triage_first_stage_with_the_complaints_severity(severity: str) -> None:
    router = Router(
        catalog(rule("r", product=["mortgage"], override="low"), triage_stages=("inbox", "review"))
    )
    route = router.decide(facts(severity=severity, product="loan"))
    assert route == Route(journey="triage", stage="inbox", severity=severity, rule=None)


def test_a_catalog_without_rules_routes_everything_to_triage() -> None:
    assert decide(channel="email", text="anything") == Route("triage", "new", "medium", None)


def test_the_router_is_reusable_and_deterministic() -> None:
    router = Router(catalog(rule("a", text_any=["card"]), rule("b", channel=["email"])))
    seen = {router.decide(facts(channel="email", text="my card")) for _ in range(5)}
    assert seen == {Route("borrow", "fix", "medium", "a")}


# --- Facts from a complaint.received body ---------------------------------------------------------


def test_facts_of_a_complaint_body() -> None:
    f = Facts.of(
        {
            "channel": "chat",
            "severity": "high",
            "summary": "Card blocked",
            "description": "abroad",
            "product": "card",
            "category": "fraud",
            "touchpoint": "app",
            "language": "en-GB",
            "customer": {"ref": "c-1", "tier": "gold"},
            "repeat_contact": {"count_30d": 3, "is_repeat": True},
        }
    )
    assert f == Facts(
        channel="chat",
        severity="high",
        text="Card blocked abroad",
        product="card",
        category="fraud",
        touchpoint="app",
        language="en-GB",
        tier="gold",
        repeat_contact=True,
    )


def test_facts_of_a_minimal_body_uses_defaults() -> None:
    f = Facts.of({"summary": "hi", "customer": None, "repeat_contact": None})
    assert f == Facts(channel="other", severity="medium", text="hi")


# --- known defects -------------------------------------------------------------------------------


@pytest.mark.parametrize("phrase", [" card", "card ", " card "])
def test_a_phrase_with_surrounding_spaces_keeps_its_word_boundaries(phrase: str) -> None:
    assert matches({"text_any": [phrase]}, text="my card")
    assert not matches({"text_any": [phrase]}, text="I will discard it")
    assert not matches({"text_any": [phrase]}, text="a new cardigan")

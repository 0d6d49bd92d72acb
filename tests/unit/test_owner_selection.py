"""Pure owner selection inside a journey team (`select_owner`): load, round robin, availability
and delegates, capacity, skills, continuity, and the per-candidate explanation."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.routing.catalog import Journey, parse
from services.routing.domain import Availability, Facts, Load, Router, Selection, select_owner

NOW = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

# --- builders ------------------------------------------------------------------------------------


def setup(
    team: Iterable[str],
    *,
    others: Iterable[str] = (),
    strategy: str = "least_loaded",
    capacity: dict[str, int] | None = None,
    languages: dict[str, list[str]] | None = None,
    products: dict[str, list[str]] | None = None,
) -> tuple[Journey, Router]:
    """A catalog whose `borrow` journey has `team`; `others` are owners outside that team."""
    team = list(team)
    everyone = list(dict.fromkeys([*team, *others]))
    owners = []
    for key in everyone:
        doc: dict[str, Any] = {"key": key, "name": key.title(), "department": f"dept-{key}"}
        if capacity and key in capacity:
            doc["capacity"] = capacity[key]
        if languages and key in languages:
            doc["languages"] = languages[key]
        if products and key in products:
            doc["products"] = products[key]
        owners.append(doc)
    catalog = parse(
        {
            "journeys": [
                {
                    "key": "triage",
                    "name": "Triage",
                    "manager": "cx-lead",
                    "stages": [{"key": "new", "name": "New"}],
                    "team": everyone,
                },
                {
                    "key": "borrow",
                    "name": "Borrow",
                    "manager": "borrow-lead",
                    "stages": [{"key": "fix", "name": "Fix"}],
                    "team": team,
                    "strategy": strategy,
                },
            ],
            "owners": owners,
        }
    )
    router = Router(catalog)
    return router.journeys["borrow"], router


def pick(
    team: Iterable[str],
    *,
    others: Iterable[str] = (),
    strategy: str = "least_loaded",
    capacity: dict[str, int] | None = None,
    languages: dict[str, list[str]] | None = None,
    products: dict[str, list[str]] | None = None,
    load: dict[str, Load] | None = None,
    away: dict[str, Availability] | None = None,
    continuity: str | None = None,
    cursor: str | None = None,
    language: str | None = None,
    product: str | None = None,
    now: datetime = NOW,
) -> Selection:
    team = list(team)
    journey, router = setup(
        team,
        others=others,
        strategy=strategy,
        capacity=capacity,
        languages=languages,
        products=products,
    )
    facts = Facts(channel="phone", severity="medium", text="", language=language, product=product)
    selection = select_owner(
        journey,
        router,
        facts,
        now,
        load or {},
        away or {},
        continuity_owner=continuity,
        last_round_robin=cursor,
    )
    if not selection.reason.startswith("continuity"):
        assert_explained(selection, team)
    return selection


def loaded(open_loops: int, weighted: float | None = None) -> Load:
    """`open_loops` loops of medium weight unless `weighted` says otherwise."""
    return Load(open_loops, 2.0 * open_loops if weighted is None else weighted)


def gone(delegate: str | None = None, *, since: datetime | None = None) -> Availability:
    """Away since an hour ago, open-ended."""
    return Availability(away_from=since or NOW - HOUR, delegate=delegate)


def explanation(selection: Selection) -> dict[str, dict[str, Any]]:
    return {c.owner: c.as_dict() for c in selection.candidates}


def assert_explained(selection: Selection, team: list[str]) -> None:
    """Every team member is listed once, in team order, and exactly one candidate is chosen."""
    listed = [c.owner for c in selection.candidates]
    assert listed[: len(team)] == team
    assert len(listed) == len(set(listed))
    chosen = [c for c in selection.candidates if c.chosen]
    assert len(chosen) == 1
    assert chosen[0].owner == selection.owner
    assert chosen[0].reason == selection.reason
    for c in selection.candidates:
        assert set(c.as_dict()) == {"owner", "chosen", "reason", "open_loops", "capacity"}
        assert c.reason


TEAM = ["ann", "bob", "cat"]

# --- least loaded --------------------------------------------------------------------------------


def test_least_loaded_picks_the_lowest_severity_weighted_load() -> None:
    # ann has more loops but they are all low; bob has one critical loop
    load = {"ann": Load(3, 3.0), "bob": Load(1, 5.0), "cat": Load(2, 6.0)}
    selection = pick(TEAM, load=load)
    assert selection.owner == "ann"
    assert selection.reason.startswith("least loaded")
    assert selection.over_capacity is False


def test_least_loaded_is_relative_to_capacity() -> None:
    # ratios: ann 10/20 = .5, bob 6/10 = .6, cat 12/30 = .4
    load = {"ann": Load(5, 10.0), "bob": Load(3, 6.0), "cat": Load(6, 12.0)}
    selection = pick(TEAM, load=load, capacity={"ann": 20, "bob": 10, "cat": 30})
    assert selection.owner == "cat"


def test_an_owner_without_load_counts_as_empty() -> None:
    assert pick(TEAM, load={"ann": loaded(1), "bob": loaded(1)}).owner == "cat"


def test_least_loaded_ties_go_to_fewer_open_loops() -> None:
    load = {"ann": Load(4, 4.0), "bob": Load(1, 4.0), "cat": Load(2, 4.0)}
    assert pick(TEAM, load=load).owner == "bob"


def test_least_loaded_full_ties_go_to_the_key() -> None:
    assert pick(["cat", "bob", "ann"]).owner == "ann"
    load = {k: Load(2, 4.0) for k in TEAM}
    assert pick(["cat", "ann", "bob"], load=load).owner == "ann"


def test_least_loaded_others_are_explained_as_more_loaded() -> None:
    selection = pick(TEAM, load={"ann": loaded(2), "bob": loaded(1)})
    assert selection.owner == "cat"
    notes = explanation(selection)
    assert notes["ann"]["reason"] == notes["bob"]["reason"] == "more loaded"


# --- round robin ---------------------------------------------------------------------------------


def test_round_robin_starts_at_the_head_of_the_team_without_a_cursor() -> None:
    assert pick(["cat", "ann", "bob"], strategy="round_robin").owner == "cat"


@pytest.mark.parametrize(("cursor", "expected"), [("cat", "ann"), ("ann", "bob"), ("bob", "cat")])
def test_round_robin_takes_the_next_in_team_order_after_the_cursor(
    cursor: str, expected: str
) -> None:
    # team order, not alphabetical order: cat -> ann -> bob -> cat
    selection = pick(["cat", "ann", "bob"], strategy="round_robin", cursor=cursor)
    assert selection.owner == expected
    assert selection.reason.startswith("round robin")


def test_round_robin_cycles_and_wraps() -> None:
    cursor = None
    seen = []
    for _ in range(7):
        cursor = pick(TEAM, strategy="round_robin", cursor=cursor).owner
        seen.append(cursor)
    assert seen == ["ann", "bob", "cat", "ann", "bob", "cat", "ann"]


def test_round_robin_ignores_load() -> None:
    load = {"ann": loaded(0), "bob": loaded(15), "cat": loaded(0)}
    assert pick(TEAM, strategy="round_robin", cursor="ann", load=load).owner == "bob"


def test_round_robin_with_an_unknown_cursor_starts_again_at_the_head() -> None:
    assert pick(TEAM, strategy="round_robin", cursor="gone-owner").owner == "ann"


def test_round_robin_skips_an_away_member_after_the_cursor() -> None:
    away = {"bob": gone()}
    assert pick(TEAM, strategy="round_robin", cursor="ann", away=away).owner == "cat"
    assert pick(TEAM, strategy="round_robin", cursor="cat", away=away).owner == "ann"


def test_round_robin_skips_a_member_at_capacity_after_the_cursor() -> None:
    selection = pick(
        TEAM, strategy="round_robin", cursor="ann", capacity={"bob": 2}, load={"bob": loaded(2)}
    )
    assert selection.owner == "cat"
    assert explanation(selection)["bob"]["reason"] == "at capacity"
    assert explanation(selection)["ann"]["reason"] == "not next in turn"


def test_round_robin_rotates_through_a_delegate_from_outside_the_team() -> None:
    away = {"bob": gone("eve")}
    kw: dict[str, Any] = {"others": ["eve"], "strategy": "round_robin", "away": away}
    assert pick(["ann", "bob"], cursor="ann", **kw).owner == "eve"
    assert pick(["ann", "bob"], cursor="eve", **kw).owner == "ann"


@pytest.mark.parametrize(
    "excluded",
    [
        {"away": {"bob": gone()}},
        {"capacity": {"bob": 1}, "load": {"bob": loaded(1)}},
    ],
    ids=["cursor-away", "cursor-at-capacity"],
)
def test_round_robin_continues_after_a_cursor_owner_who_is_now_skipped(
    excluded: dict[str, Any],
) -> None:
    assert pick(TEAM, strategy="round_robin", cursor="bob", **excluded).owner == "cat"


# --- availability and delegates ------------------------------------------------------------------


def test_an_away_owners_work_goes_to_their_delegate() -> None:
    # ann is the least loaded but away; she delegates to cat, the most loaded
    load = {"ann": loaded(0), "bob": loaded(1), "cat": loaded(5)}
    selection = pick(TEAM, load=load, away={"ann": gone("cat")})
    # cat stands in for ann but competes on load like everyone else
    assert selection.owner == "bob"
    assert explanation(selection)["ann"]["reason"] == "away; work goes to delegate cat"
    assert explanation(selection)["ann"]["chosen"] is False


def test_the_delegate_takes_the_work_when_they_are_the_best_choice() -> None:
    load = {"ann": loaded(0), "bob": loaded(3), "cat": loaded(1)}
    assert pick(TEAM, load=load, away={"ann": gone("cat")}).owner == "cat"


def test_a_delegate_outside_the_team_is_a_candidate() -> None:
    load = {"ann": loaded(0), "bob": loaded(4)}
    selection = pick(["ann", "bob"], others=["eve"], load=load, away={"ann": gone("eve")})
    assert selection.owner == "eve"
    assert [c.owner for c in selection.candidates] == ["ann", "bob", "eve"]
    assert explanation(selection)["eve"]["chosen"] is True


def test_a_delegate_chain_is_followed_past_an_away_delegate() -> None:
    away = {"ann": gone("bob"), "bob": gone("eve")}
    selection = pick(["ann", "bob"], others=["eve"], away=away)
    assert selection.owner == "eve"
    assert explanation(selection)["ann"]["reason"] == "away; work goes to delegate eve"
    assert explanation(selection)["bob"]["reason"] == "away; work goes to delegate eve"


def test_a_delegate_who_is_also_away_passes_to_the_next_in_chain() -> None:
    away = {"ann": gone("dan"), "dan": gone("eve")}
    load = {"ann": loaded(0), "bob": loaded(9), "eve": loaded(1)}
    selection = pick(["ann", "bob"], others=["dan", "eve"], away=away, load=load)
    assert selection.owner == "eve"
    assert "dan" not in explanation(selection)


def test_a_delegate_shared_by_two_away_members_is_listed_once() -> None:
    away = {"ann": gone("eve"), "bob": gone("eve")}
    selection = pick(TEAM, others=["eve"], away=away, load={"cat": loaded(3)})
    assert selection.owner == "eve"
    assert [c.owner for c in selection.candidates] == [*TEAM, "eve"]


@pytest.mark.timeout(5)
def test_a_delegate_cycle_does_not_hang_and_others_still_get_the_work() -> None:
    away = {"ann": gone("bob"), "bob": gone("ann")}
    selection = pick(TEAM, away=away, load={"cat": loaded(7)})
    assert selection.owner == "cat"
    assert explanation(selection)["ann"]["reason"] == "away, no available delegate"
    assert explanation(selection)["bob"]["reason"] == "away, no available delegate"


@pytest.mark.timeout(5)
def test_a_self_delegation_or_a_cycle_covering_everyone_still_assigns() -> None:
    assert pick(["ann"], away={"ann": gone("ann")}).owner == "ann"
    away = {"ann": gone("bob"), "bob": gone("cat"), "cat": gone("ann")}
    assert pick(TEAM, away=away).owner in TEAM


def test_a_delegate_unknown_to_the_catalog_is_no_delegate() -> None:
    selection = pick(["ann", "bob"], away={"ann": gone("nobody")}, load={"bob": loaded(4)})
    assert selection.owner == "bob"
    assert explanation(selection)["ann"]["reason"] == "away, no available delegate"


def test_an_availability_entry_without_away_dates_is_not_away() -> None:
    selection = pick(["ann", "bob"], away={"ann": Availability(delegate="bob")})
    assert selection.owner == "ann"


@pytest.mark.parametrize(
    ("away_from", "away_until", "is_away"),
    [
        (NOW - HOUR, NOW + HOUR, True),
        (NOW, NOW + HOUR, True),  # from is inclusive
        (NOW - HOUR, NOW, False),  # until is exclusive: back at that instant
        (NOW + timedelta(seconds=1), NOW + HOUR, False),  # not yet
        (NOW - 2 * HOUR, NOW - timedelta(seconds=1), False),  # already back
        (NOW - timedelta(days=30), None, True),  # open-ended
        (NOW + HOUR, None, False),  # open-ended, not started
        (None, NOW + HOUR, True),  # away until a time
        (None, NOW, False),
        (None, None, False),
    ],
)
def test_away_windows(
    away_from: datetime | None, away_until: datetime | None, is_away: bool
) -> None:
    availability = Availability(away_from=away_from, away_until=away_until, delegate="cat")
    assert availability.away_at(NOW) is is_away
    load = {"ann": loaded(0), "bob": loaded(1), "cat": loaded(2)}
    selection = pick(TEAM, load=load, away={"ann": availability})
    assert selection.owner == ("bob" if is_away else "ann")


def test_away_windows_compare_instants_across_time_zones() -> None:
    cest = timezone(timedelta(hours=2))
    same_instant = datetime(2024, 6, 3, 14, 0, tzinfo=cest)  # == NOW
    assert Availability(away_from=same_instant).away_at(NOW) is True
    assert Availability(away_until=same_instant).away_at(NOW) is False
    assert Availability(away_until=same_instant + HOUR).away_at(NOW) is True


def test_everyone_away_is_still_assigned_never_unrouted() -> None:
    load = {"ann": loaded(3), "bob": loaded(1), "cat": loaded(2)}
    selection = pick(TEAM, load=load, away={k: gone() for k in TEAM})
    assert selection.owner == "bob"
    notes = explanation(selection)
    assert "everyone away" in notes["ann"]["reason"]
    assert "everyone away" in notes["cat"]["reason"]


def test_everyone_away_and_every_delegate_away_is_still_assigned() -> None:
    away = {"ann": gone("eve"), "bob": gone("eve"), "eve": gone("ann")}
    selection = pick(["ann", "bob"], others=["eve"], away=away)
    assert selection.owner in {"ann", "bob"}


def test_everyone_away_with_round_robin_still_rotates() -> None:
    away = {k: gone() for k in TEAM}
    assert pick(TEAM, strategy="round_robin", cursor="ann", away=away).owner == "bob"


# --- capacity ------------------------------------------------------------------------------------


def test_an_owner_at_capacity_is_skipped_even_if_least_loaded() -> None:
    # ann carries almost no weight but has reached her 2 loops; bob is heavier but has room
    load = {"ann": Load(2, 0.1), "bob": Load(5, 15.0)}
    selection = pick(["ann", "bob"], load=load, capacity={"ann": 2})
    assert selection.owner == "bob"
    assert selection.over_capacity is False
    assert explanation(selection)["ann"]["reason"] == "at capacity"


def test_an_owner_over_capacity_is_skipped() -> None:
    load = {"ann": Load(7, 0.1), "bob": Load(5, 15.0)}
    assert pick(["ann", "bob"], load=load, capacity={"ann": 5}).owner == "bob"


def test_one_below_capacity_is_still_a_candidate() -> None:
    load = {"ann": Load(4, 0.1), "bob": Load(5, 15.0)}
    assert pick(["ann", "bob"], load=load, capacity={"ann": 5}).owner == "ann"


def test_when_everyone_is_at_capacity_the_least_loaded_still_gets_it_and_the_manager_is_told() -> (
    None
):
    load = {"ann": Load(3, 9.0), "bob": Load(3, 4.0), "cat": Load(4, 20.0)}
    selection = pick(TEAM, load=load, capacity={"ann": 3, "bob": 3, "cat": 3})
    assert selection.owner == "bob"
    assert selection.over_capacity is True
    assert "at capacity" in selection.reason
    assert "journey manager is told" in selection.reason
    assert explanation(selection)["bob"]["reason"] == selection.reason


def test_when_everyone_is_at_capacity_round_robin_still_rotates() -> None:
    load = {k: loaded(1) for k in TEAM}
    capacity = dict.fromkeys(TEAM, 1)
    selection = pick(TEAM, strategy="round_robin", cursor="ann", load=load, capacity=capacity)
    assert selection.owner == "bob"
    assert selection.over_capacity is True
    assert "journey manager is told" in selection.reason


def test_a_delegate_at_capacity_is_skipped_like_anyone_else() -> None:
    load = {"bob": loaded(5), "eve": loaded(1)}
    selection = pick(
        ["ann", "bob"], others=["eve"], away={"ann": gone("eve")}, capacity={"eve": 1}, load=load
    )
    assert selection.owner == "bob"
    assert selection.over_capacity is False


# --- skills --------------------------------------------------------------------------------------


def test_a_language_speaker_is_preferred_even_if_more_loaded() -> None:
    load = {"ann": loaded(6), "bob": loaded(0), "cat": loaded(1)}
    selection = pick(TEAM, load=load, languages={"ann": ["es"]}, language="es")
    assert selection.owner == "ann"
    assert explanation(selection)["bob"]["reason"] == "no language skill 'es'"


@pytest.mark.parametrize(
    ("skill", "complaint"),
    [("es", "es-MX"), ("ES", "es"), ("es", "ES"), ("es-MX", "es-mx"), ("es-mx", "ES-MX")],
)
def test_language_skills_match_case_insensitively_and_by_base_language(
    skill: str, complaint: str
) -> None:
    load = {"ann": loaded(6)}
    assert pick(TEAM, load=load, languages={"ann": [skill]}, language=complaint).owner == "ann"


def test_a_regional_speaker_does_not_count_for_another_region() -> None:
    load = {"ann": loaded(6)}
    assert pick(TEAM, load=load, languages={"ann": ["es-ES"]}, language="es-MX").owner == "bob"


def test_a_language_nobody_speaks_is_ignored() -> None:
    load = {"ann": loaded(2), "bob": loaded(0), "cat": loaded(1)}
    selection = pick(TEAM, load=load, languages={"ann": ["es"]}, language="fi")
    assert selection.owner == "bob"
    assert "skill" not in str(explanation(selection))


def test_no_language_on_the_complaint_means_no_preference() -> None:
    load = {"ann": loaded(2)}
    assert pick(TEAM, load=load, languages={"ann": ["es"]}, language=None).owner == "bob"


def test_several_speakers_are_chosen_between_by_the_strategy() -> None:
    langs = {"ann": ["fr"], "cat": ["fr"]}
    load = {"ann": loaded(3), "bob": loaded(0), "cat": loaded(1)}
    assert pick(TEAM, load=load, languages=langs, language="fr").owner == "cat"
    rr = pick(TEAM, strategy="round_robin", cursor="ann", languages=langs, language="fr")
    assert rr.owner == "cat"


def test_a_product_specialist_is_preferred_even_if_more_loaded() -> None:
    load = {"ann": loaded(0), "bob": loaded(8)}
    selection = pick(["ann", "bob"], load=load, products={"bob": ["Mortgage"]}, product="mortgage")
    assert selection.owner == "bob"
    assert explanation(selection)["ann"]["reason"] == "no product skill 'mortgage'"


def test_a_product_nobody_knows_is_ignored() -> None:
    load = {"ann": loaded(0), "bob": loaded(8)}
    assert pick(["ann", "bob"], load=load, products={"bob": ["cards"]}, product="loans").owner == (
        "ann"
    )
    assert pick(["ann", "bob"], load=load, products={"bob": ["cards"]}).owner == "ann"


def test_language_and_product_preferences_combine() -> None:
    langs = {"ann": ["es"], "bob": ["es"]}
    prods = {"ann": ["mortgage"], "cat": ["mortgage"]}
    load = {"ann": loaded(5), "bob": loaded(1), "cat": loaded(0)}
    both = pick(TEAM, load=load, languages=langs, products=prods, language="es", product="mortgage")
    assert both.owner == "ann"
    # no Spanish speaker knows cards: the language preference still holds
    only_lang = pick(
        TEAM, load=load, languages=langs, products=prods, language="es", product="cards"
    )
    assert only_lang.owner == "bob"


def test_a_delegates_own_skills_count() -> None:
    # ann speaks Spanish but is away; her delegate cat does not; bob does
    langs = {"ann": ["es"], "bob": ["es"]}
    load = {"bob": loaded(6), "cat": loaded(0)}
    selection = pick(TEAM, load=load, languages=langs, language="es", away={"ann": gone("cat")})
    assert selection.owner == "bob"


def test_a_skilled_owner_at_capacity_does_not_overload_while_others_have_room() -> None:
    selection = pick(
        ["ann", "bob"],
        capacity={"ann": 2},
        load={"ann": loaded(2)},
        languages={"ann": ["es"]},
        language="es",
    )
    assert selection.over_capacity is False
    assert selection.owner == "bob"


def test_a_hyphenated_product_is_not_matched_by_its_prefix() -> None:
    load = {"ann": loaded(5), "bob": loaded(0)}
    selection = pick(["ann", "bob"], load=load, products={"ann": ["credit"]}, product="credit-card")
    assert selection.owner == "bob"


# --- continuity ----------------------------------------------------------------------------------


def test_continuity_keeps_the_customers_owner_even_if_more_loaded() -> None:
    load = {"ann": Load(5, 50.0), "bob": loaded(0), "cat": loaded(0)}
    selection = pick(TEAM, load=load, capacity={"ann": 5}, continuity="ann")
    assert selection.owner == "ann"
    assert selection.reason.startswith("continuity")
    assert selection.over_capacity is False
    assert [c.owner for c in selection.candidates if c.chosen] == ["ann"]
    assert explanation(selection)["ann"]["open_loops"] == 5


def test_continuity_beats_the_round_robin_turn_and_skills() -> None:
    rr = pick(TEAM, strategy="round_robin", cursor="ann", continuity="ann")
    assert rr.owner == "ann"
    skilled = pick(TEAM, languages={"bob": ["de"]}, language="de", continuity="cat")
    assert skilled.owner == "cat"


def test_continuity_goes_to_the_delegate_of_an_away_owner() -> None:
    load = {"bob": loaded(9), "cat": loaded(0)}
    selection = pick(TEAM, load=load, away={"ann": gone("bob")}, continuity="ann")
    assert selection.owner == "bob"
    assert "continuity" in selection.reason
    assert "delegate of ann" in selection.reason


def test_continuity_follows_a_delegate_chain() -> None:
    away = {"ann": gone("bob"), "bob": gone("eve")}
    assert pick(TEAM, others=["eve"], away=away, continuity="ann").owner == "eve"


def test_continuity_owner_away_without_delegate_falls_back_to_the_strategy() -> None:
    load = {"ann": loaded(0), "bob": loaded(1), "cat": loaded(2)}
    selection = pick(TEAM, load=load, away={"ann": gone()}, continuity="ann")
    assert selection.owner == "bob"
    assert not selection.reason.startswith("continuity")
    assert_explained(selection, TEAM)


def test_continuity_owner_no_longer_in_the_catalog_falls_back_to_the_strategy() -> None:
    selection = pick(TEAM, load={"ann": loaded(1)}, continuity="removed-owner")
    assert selection.owner == "bob"
    assert_explained(selection, TEAM)


# --- explanation ---------------------------------------------------------------------------------


def test_the_explanation_lists_every_member_with_load_and_capacity() -> None:
    load = {"ann": Load(3, 6.0), "bob": Load(1, 2.0)}
    selection = pick(
        TEAM,
        others=["eve"],
        load=load,
        capacity={"ann": 4, "bob": 8},
        away={"cat": gone("eve")},
    )
    assert [c.as_dict() for c in selection.candidates] == [
        {"owner": "ann", "chosen": False, "reason": "more loaded", "open_loops": 3, "capacity": 4},
        {"owner": "bob", "chosen": False, "reason": "more loaded", "open_loops": 1, "capacity": 8},
        {
            "owner": "cat",
            "chosen": False,
            "reason": "away; work goes to delegate eve",
            "open_loops": 0,
            "capacity": 20,
        },
        {
            "owner": "eve",
            "chosen": True,
            "reason": selection.reason,
            "open_loops": 0,
            "capacity": 20,
        },
    ]


AVAILABILITY = list(itertools.product([False, True], repeat=3))
FULLNESS = list(itertools.product([False, True], repeat=3))


@pytest.mark.parametrize("strategy", ["least_loaded", "round_robin"])
@pytest.mark.parametrize("away_mask", AVAILABILITY)
@pytest.mark.parametrize("full_mask", FULLNESS)
def test_selection_invariants(
    strategy: str, away_mask: tuple[bool, ...], full_mask: tuple[bool, ...]
) -> None:
    """Whoever is away or full, someone is chosen, explained, and the best tier is used."""
    away = {k: gone() for k, a in zip(TEAM, away_mask, strict=True) if a}
    load = {k: loaded(2 if full else 1) for k, full in zip(TEAM, full_mask, strict=True)}
    selection = pick(
        TEAM,
        strategy=strategy,
        cursor="bob",
        load=load,
        capacity=dict.fromkeys(TEAM, 2),
        away=away,
    )
    present = [k for k in TEAM if k not in away]
    room = [k for k, full in zip(TEAM, full_mask, strict=True) if not full]
    good = [k for k in present if k in room]
    if good:
        assert selection.owner in good
        assert selection.over_capacity is False
    elif present:
        assert selection.owner in present
        assert selection.over_capacity is True
        assert "journey manager is told" in selection.reason
    else:
        assert selection.owner in (room or TEAM)
        assert selection.over_capacity is (not room)
    assert_explained(selection, TEAM)

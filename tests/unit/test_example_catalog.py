"""The example catalog (`deploy/examples/catalog.yaml`) is valid and routes real CFPB complaints.

Every row of the real CFPB CSV is mapped with `shared.cfpb.map_row` and routed with the pure
router, once per module (about a second).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from services.routing.catalog import TRIAGE, Catalog, load_yaml
from services.routing.domain import Facts, Route, Router
from shared.cfpb import default_csv_path, map_row, read_rows

CATALOG_PATH = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "catalog.yaml"
CSV_PATH = default_csv_path()
TRIAGE_SHARE_MAX = 0.10
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
# The one rule allowed to lower a severity: monitoring *subscriptions* whose CFPB category name
# contains "identity theft" (which `map_row` reads as critical).
MAY_LOWER_SEVERITY = {"credit-monitoring-products"}

needs_csv = pytest.mark.skipif(not CSV_PATH.is_file(), reason=f"{CSV_PATH} not present")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_yaml(CATALOG_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def router(catalog: Catalog) -> Router:
    return Router(catalog)


@pytest.fixture(scope="module")
def routed(router: Router) -> dict[str, tuple[dict[str, Any], Route]]:
    """Complaint ID -> (mapped body, route) for every row of the real CFPB CSV."""
    out: dict[str, tuple[dict[str, Any], Route]] = {}
    for row in read_rows(CSV_PATH, None):
        body = map_row(row)
        out[row["Complaint ID"]] = (body, router.decide(Facts.of(body)))
    return out


# ------------------------------------------------------------------------------ the document


def test_loads_and_validates(catalog: Catalog) -> None:
    keys = {j.key for j in catalog.journeys}
    assert keys == {
        "open-account",
        "cards-payments",
        "borrow",
        "credit-report",
        "collections-hardship",
        TRIAGE,
    }
    assert 15 <= len(catalog.owners) <= 25
    assert catalog.rules


def test_every_team_is_cross_functional(catalog: Catalog) -> None:
    department = {o.key: o.department for o in catalog.owners}
    for journey in catalog.journeys:
        departments = {department[member] for member in journey.team}
        assert len(departments) >= 2, f"{journey.key}: team from one department {departments}"


def test_journey_shape(catalog: Catalog) -> None:
    strategies = set()
    for journey in catalog.journeys:
        assert 3 <= len(journey.stages) <= 5, journey.key
        assert 3 <= len(journey.team) <= 5, journey.key
        assert journey.manager.startswith("mgr-"), journey.key
        strategies.add(journey.strategy)
    assert "round_robin" in strategies


def test_owners_are_plausible(catalog: Catalog) -> None:
    for owner in catalog.owners:
        assert owner.email is not None
        assert owner.email.endswith("@example.com"), owner.key
        assert 10 <= owner.capacity <= 40, owner.key
        assert "en" in owner.languages, owner.key
    assert any("es" in o.languages for o in catalog.owners)


def test_rules_are_unique_by_priority(catalog: Catalog) -> None:
    priorities = [r.priority for r in catalog.rules]
    assert len(set(priorities)) == len(priorities), "two rules share a priority"
    assert priorities == sorted(priorities), "rules are listed in priority order"


# ------------------------------------------------------------------------------ real complaints


@needs_csv
def test_triage_share_of_all_cfpb_rows_is_small(
    catalog: Catalog, routed: dict[str, tuple[dict[str, Any], Route]]
) -> None:
    journeys = Counter(route.journey for _, route in routed.values())
    share = journeys[TRIAGE] / len(routed)
    assert len(routed) > 12_000
    assert share < TRIAGE_SHARE_MAX, f"{share:.2%} of CFPB rows land in triage: {journeys}"
    # Every journey other than triage gets real work.
    for journey in catalog.journeys:
        if journey.key != TRIAGE:
            assert journeys[journey.key] > 0, journey.key


@needs_csv
def test_critical_complaints_are_never_lowered(
    routed: dict[str, tuple[dict[str, Any], Route]],
) -> None:
    lowered = Counter(
        route.rule
        for body, route in routed.values()
        if SEVERITY_RANK[route.severity] < SEVERITY_RANK[body["severity"]]
    )
    assert set(lowered) <= MAY_LOWER_SEVERITY, lowered


@needs_csv
@pytest.mark.parametrize(
    ("complaint_id", "journey", "stage", "severity"),
    [
        # Mortgage, trouble during the payment process (a payoff cheque after a sale).
        ("7277505", "borrow", "payments-payoff", "medium"),
        # Mortgage, struggling to pay: loan modification.
        ("7399329", "borrow", "modification", "high"),
        # Debt collection: debt is not yours.
        ("7280422", "collections-hardship", "debt-validation", "medium"),
        # Debt collection: a debt from identity theft is raised to high.
        ("6825305", "collections-hardship", "debt-validation", "high"),
        # Credit report: incorrect information (belongs to someone else).
        ("7286546", "credit-report", "dispute", "medium"),
        # Credit report: "I am a victim of identity theft" is raised to high.
        ("7291331", "credit-report", "identity-theft", "high"),
        # Checking account: deposits and withdrawals.
        ("7270682", "open-account", "everyday-banking", "medium"),
        # Money transfer: money not available when promised.
        ("6831631", "cards-payments", "money-transfer", "medium"),
        # Money service scam: critical stays critical.
        ("7283899", "cards-payments", "fraud-scam", "critical"),
        # Credit card: the card company is not resolving a purchase dispute.
        ("7286060", "cards-payments", "transaction-dispute", "high"),
        # Credit repair services: a product the bank does not offer.
        ("7518556", TRIAGE, "review", "medium"),
    ],
)
def test_representative_rows(
    routed: dict[str, tuple[dict[str, Any], Route]],
    complaint_id: str,
    journey: str,
    stage: str,
    severity: str,
) -> None:
    _, route = routed[complaint_id]
    assert (route.journey, route.stage, route.severity) == (journey, stage, severity), route


# ------------------------------------------------------------------------------ synthetic


def _complaint(**fields: Any) -> dict[str, Any]:
    return {"channel": "phone", "customer": {"ref": "c-1"}, "summary": "complaint", **fields}


def test_repeat_contact_about_mortgage_payments_is_high(router: Router) -> None:
    body = _complaint(
        product="Mortgage",
        category="Trouble during payment process",
        repeat_contact={"count_30d": 3, "is_repeat": True},
    )
    route = router.decide(Facts.of(body))
    assert (route.journey, route.stage, route.severity, route.rule) == (
        "borrow",
        "modification",
        "high",
        "repeat-mortgage-payments",
    )


@pytest.mark.parametrize(
    ("description", "journey"),
    [
        ("The debt collector keeps calling me at work.", "collections-hardship"),
        ("Equifax still shows a late payment I disputed.", "credit-report"),
        ("My escrow analysis doubled the monthly payment.", "borrow"),
        ("A Zelle payment went to the wrong person.", "cards-payments"),
        ("You charged an overdraft fee after my direct deposit posted.", "open-account"),
        ("Nobody called me back.", TRIAGE),
    ],
)
def test_complaints_without_hints_route_by_text(
    router: Router, description: str, journey: str
) -> None:
    route = router.decide(Facts.of(_complaint(description=description)))
    assert route.journey == journey, route

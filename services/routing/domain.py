"""Pure routing: which journey and stage (rules), and which owner in the journey team.

No I/O: the service passes in the catalog, the owners' load and availability, and `now`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.routing.catalog import TRIAGE, Catalog, Conditions, Journey, Rule, first_stage

SEVERITY_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 3.0, "critical": 5.0}


@dataclass(frozen=True)
class Facts:
    """What routing may look at in a complaint."""

    channel: str
    severity: str
    text: str
    product: str | None = None
    category: str | None = None
    touchpoint: str | None = None
    language: str | None = None
    tier: str | None = None
    repeat_contact: bool = False

    @classmethod
    def of(cls, data: dict[str, Any]) -> Facts:
        """From a `complaint.received` body (or a dry-run complaint of the same shape)."""
        customer = data.get("customer") or {}
        repeat = data.get("repeat_contact") or {}
        text = " ".join(x for x in (data.get("summary"), data.get("description")) if x)
        return cls(
            channel=data.get("channel", "other"),
            severity=data.get("severity", "medium"),
            text=text,
            product=data.get("product"),
            category=data.get("category"),
            touchpoint=data.get("touchpoint"),
            language=data.get("language"),
            tier=customer.get("tier"),
            repeat_contact=bool(repeat.get("is_repeat", False)),
        )


def _phrase(p: str) -> re.Pattern[str]:
    # Word boundaries only where the phrase starts/ends with a word character ("$5" still works);
    # any run of whitespace in the text matches a space in the phrase.
    p = p.strip()
    start = r"\b" if re.match(r"\w", p) else ""
    end = r"\b" if re.search(r"\w$", p) else ""
    body = r"\s+".join(re.escape(word) for word in p.split())
    return re.compile(start + body + end, re.IGNORECASE)


def _norm(value: str | None) -> str | None:
    return value.strip().casefold() if value is not None else None


@dataclass(frozen=True)
class CompiledRule:
    """A rule with its phrases compiled once; `matches` is the hot path."""

    rule: Rule
    _any: tuple[re.Pattern[str], ...]
    _all: tuple[re.Pattern[str], ...]
    _sets: dict[str, frozenset[str]]

    @classmethod
    def of(cls, rule: Rule) -> CompiledRule:
        w: Conditions = rule.when
        sets = {
            name: frozenset(v.casefold() for v in values)
            for name in (
                "channel",
                "product",
                "category",
                "touchpoint",
                "severity",
                "language",
                "tier",
            )
            if (values := getattr(w, name)) is not None
        }
        return cls(
            rule,
            tuple(_phrase(p) for p in w.text_any or ()),
            tuple(_phrase(p) for p in w.text_all or ()),
            sets,
        )

    def matches(self, facts: Facts) -> bool:
        for name, allowed in self._sets.items():
            value = _norm(getattr(facts, name))
            if name == "language" and value is not None:
                # "en" in a rule matches "en-GB" in a complaint
                if value not in allowed and value.split("-")[0] not in allowed:
                    return False
            elif value not in allowed:
                return False
        want_repeat = self.rule.when.repeat_contact
        if want_repeat is not None and facts.repeat_contact != want_repeat:
            return False
        if self._any and not any(p.search(facts.text) for p in self._any):
            return False
        return all(p.search(facts.text) for p in self._all)


@dataclass(frozen=True)
class Route:
    journey: str
    stage: str
    severity: str
    rule: str | None  # None: nothing matched, triage


class Router:
    """The catalog's rules compiled and ordered (priority, then document order)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        ordered = sorted(enumerate(catalog.rules), key=lambda ir: (ir[1].priority, ir[0]))
        self._rules = [CompiledRule.of(r) for _, r in ordered]
        self.journeys = {j.key: j for j in catalog.journeys}
        self.owners = {o.key: o for o in catalog.owners}

    def decide(self, facts: Facts) -> Route:
        """The first matching rule's journey and stage; triage when none matches."""
        for compiled in self._rules:
            if compiled.matches(facts):
                r = compiled.rule
                return Route(r.journey, r.stage, r.severity or facts.severity, r.key)
        return Route(TRIAGE, first_stage(self.journeys[TRIAGE]), facts.severity, None)


@dataclass(frozen=True)
class Availability:
    away_from: datetime | None = None
    away_until: datetime | None = None
    delegate: str | None = None

    def away_at(self, now: datetime) -> bool:
        if self.away_from is None and self.away_until is None:
            return False
        starts = self.away_from is None or self.away_from <= now
        ends = self.away_until is None or now < self.away_until
        return starts and ends


@dataclass(frozen=True)
class Load:
    open_loops: int = 0
    weighted: float = 0.0


@dataclass(frozen=True)
class Candidate:
    owner: str
    chosen: bool
    reason: str
    open_loops: int
    capacity: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "chosen": self.chosen,
            "reason": self.reason,
            "open_loops": self.open_loops,
            "capacity": self.capacity,
        }


@dataclass(frozen=True)
class Selection:
    owner: str
    reason: str
    candidates: list[Candidate] = field(default_factory=list)
    over_capacity: bool = False


def select_owner(
    journey: Journey,
    router: Router,
    facts: Facts,
    now: datetime,
    load: dict[str, Load],
    availability: dict[str, Availability],
    continuity_owner: str | None = None,
    last_round_robin: str | None = None,
) -> Selection:
    """Pick the accountable owner in the journey team and say why, for every candidate."""
    owners = router.owners
    notes: dict[str, str] = {}

    def away(key: str) -> bool:
        return availability.get(key, Availability()).away_at(now)

    def stand_in(key: str) -> str | None:
        """The owner itself, or its delegate chain's first available member."""
        seen = set()
        while key not in seen:
            seen.add(key)
            if not away(key):
                return key
            delegate = availability.get(key, Availability()).delegate
            if delegate is None or delegate not in owners:
                return None
            key = delegate
        return None

    # Continuity: the customer's open loop on this journey keeps its owner (or their delegate).
    if continuity_owner is not None and continuity_owner in owners:
        who = stand_in(continuity_owner)
        if who is not None:
            reason = "continuity: the customer's open loop on this journey"
            if who != continuity_owner:
                reason += f" (delegate of {continuity_owner}, who is away)"
            others = [k for k in dict.fromkeys([*journey.team, who]) if k != who]
            candidates = [_cand(who, True, reason, load, owners)] + [
                _cand(k, False, "not considered: continuity applies", load, owners) for k in others
            ]
            return Selection(who, reason, candidates)

    pool: list[str] = []
    for member in journey.team:
        who = stand_in(member)
        if who is None:
            notes[member] = "away, no available delegate"
        elif who != member:
            notes[member] = f"away; work goes to delegate {who}"
            if who not in pool:
                pool.append(who)
        elif member not in pool:
            pool.append(member)
    everyone_away = not pool
    if everyone_away:
        # Nobody can take it: still never unrouted — the least loaded member, flagged.
        pool = list(journey.team)
        for m in pool:
            notes[m] = "everyone away: considered anyway"

    # Capacity first, then skills among those with room: a skilled owner who is full must not
    # be overloaded while a colleague has room.
    under = [k for k in pool if load.get(k, Load()).open_loops < owners[k].capacity]
    over_capacity = not under
    for k in pool:
        if k not in under and not over_capacity:
            notes[k] = "at capacity"
    finalists = under or pool
    finalists = _prefer(finalists, notes, "language", facts.language, lambda k: owners[k].languages)
    finalists = _prefer(finalists, notes, "product", facts.product, lambda k: owners[k].products)

    if journey.strategy == "round_robin":
        # Turn order is the team's order; continue after the last owner even if they are
        # skipped now (away, full), so the first member is not favoured.
        ring = list(dict.fromkeys([*journey.team, *finalists]))
        start = ring.index(last_round_robin) + 1 if last_round_robin in ring else 0
        rotated = ring[start:] + ring[:start]
        chosen = next(k for k in rotated if k in finalists)
        reason = "round robin: next in turn"
    else:
        chosen = min(
            finalists,
            key=lambda k: (
                load.get(k, Load()).weighted / owners[k].capacity,
                load.get(k, Load()).open_loops,
                k,
            ),
        )
        reason = "least loaded: lowest severity-weighted load relative to capacity"
    if over_capacity:
        reason += "; every candidate is at capacity, the journey manager is told"
    if everyone_away:
        reason += "; everyone in the team is away"
    for k in finalists:
        notes.setdefault(
            k, "more loaded" if journey.strategy == "least_loaded" else "not next in turn"
        )
    notes[chosen] = reason
    seen_keys = list(dict.fromkeys([*journey.team, *pool]))
    candidates = [_cand(k, k == chosen, notes.get(k, ""), load, owners) for k in seen_keys]
    return Selection(chosen, reason, candidates, over_capacity)


def _prefer(
    pool: list[str],
    notes: dict[str, str],
    skill: str,
    wanted: str | None,
    skills_of: Any,
) -> list[str]:
    """Keep the owners with the skill when the complaint needs it and anybody has it."""
    if not wanted:
        return pool
    want = wanted.casefold()
    # Language tags match by their primary subtag ("en-GB" -> "en"); products match exactly.
    accepted = {want, want.split("-")[0]} if skill == "language" else {want}
    fit = [k for k in pool if {s.casefold() for s in skills_of(k)} & accepted]
    if not fit:
        return pool
    for k in pool:
        if k not in fit:
            notes[k] = f"no {skill} skill {wanted!r}"
    return fit


def _cand(
    key: str, chosen: bool, reason: str, load: dict[str, Load], owners: dict[str, Any]
) -> Candidate:
    current = load.get(key, Load())
    return Candidate(key, chosen, reason, current.open_loops, owners[key].capacity)


def weight(severity: str) -> float:
    return SEVERITY_WEIGHT.get(severity, 2.0)

"""The journey catalog as one document (journeys as code): schema and cross-reference checks.

Every error names its path in the document (`journeys[2].team[1]`) so a YAML author can find it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shared.events.models import Channel, Severity

Strategy = Literal["least_loaded", "round_robin"]
TRIAGE = "triage"
_KEY = r"^[a-z0-9][a-z0-9_.-]{0,99}$"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(_Doc):
    key: str = Field(pattern=_KEY)
    name: str = Field(min_length=1, max_length=200)


class Journey(_Doc):
    key: str = Field(pattern=_KEY)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    manager: str = Field(min_length=1, max_length=100, description="The journey manager's key.")
    stages: list[Stage] = Field(min_length=1)
    team: list[str] = Field(min_length=1, description="Owner keys, from several departments.")
    strategy: Strategy = "least_loaded"


class Owner(_Doc):
    key: str = Field(pattern=_KEY)
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(None, max_length=320)
    department: str = Field(min_length=1, max_length=100)
    capacity: int = Field(20, ge=1, le=10_000, description="Most open loops at a time.")
    languages: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)
    timezone: str = "UTC"


Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Conditions(_Doc):
    """All given conditions must hold; a list means any of its values."""

    channel: list[Channel] | None = Field(None, min_length=1)
    product: list[str] | None = Field(None, min_length=1)
    category: list[str] | None = Field(None, min_length=1)
    touchpoint: list[str] | None = Field(None, min_length=1)
    severity: list[Severity] | None = Field(None, min_length=1)
    language: list[str] | None = Field(None, min_length=1)
    tier: list[str] | None = Field(None, min_length=1)
    repeat_contact: bool | None = None
    text_any: list[Phrase] | None = Field(
        None, min_length=1, description="Any phrase in summary/description."
    )
    text_all: list[Phrase] | None = Field(
        None, min_length=1, description="Every phrase in summary/description."
    )


class Rule(_Doc):
    key: str = Field(pattern=_KEY)
    priority: int = Field(100, description="Lower runs first; the first match wins.")
    description: str | None = Field(None, max_length=500)
    when: Conditions = Field(default_factory=Conditions)
    journey: str
    stage: str
    severity: Severity | None = Field(None, description="Overrides the complaint's severity.")


class Catalog(_Doc):
    journeys: list[Journey]
    owners: list[Owner]
    rules: list[Rule] = Field(default_factory=list)


class CatalogError(ValueError):
    """The document is invalid; `errors` lists `{path, message}` for each problem."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['path']}: {e['message']}" for e in errors))
        self.errors = errors


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def parse(data: Any) -> Catalog:
    """Validate a catalog document (already loaded from YAML/JSON) completely."""
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(
            [{"path": _path(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        ) from exc
    errors = cross_check(catalog)
    if errors:
        raise CatalogError(errors)
    return catalog


def load_yaml(text: str) -> Catalog:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError([{"path": "(document)", "message": f"not valid YAML: {exc}"}]) from exc
    return parse(data)


def dump_yaml(catalog: Catalog) -> str:
    return yaml.safe_dump(
        catalog.model_dump(mode="json", exclude_none=True, exclude_defaults=False),
        sort_keys=False,
        allow_unicode=True,
    )


def cross_check(catalog: Catalog) -> list[dict[str, str]]:
    """References between journeys, owners and rules; duplicate keys; the triage journey."""
    errors: list[dict[str, str]] = []

    def dupes(kind: str, keys: list[str]) -> None:
        seen: set[str] = set()
        for i, key in enumerate(keys):
            if key in seen:
                errors.append({"path": f"{kind}[{i}].key", "message": f"duplicate key {key!r}"})
            seen.add(key)

    dupes("journeys", [j.key for j in catalog.journeys])
    dupes("owners", [o.key for o in catalog.owners])
    dupes("rules", [r.key for r in catalog.rules])
    owners = {o.key for o in catalog.owners}
    journeys: dict[str, Journey] = {}
    for j in catalog.journeys:
        journeys.setdefault(j.key, j)  # a duplicate is reported above; rules check the first
    if TRIAGE not in journeys:
        errors.append(
            {
                "path": "journeys",
                "message": "a 'triage' journey is required: it catches what no rule matches",
            }
        )
    for i, j in enumerate(catalog.journeys):
        stage_keys = [s.key for s in j.stages]
        for k, key in enumerate(stage_keys):
            if key in stage_keys[:k]:
                errors.append(
                    {
                        "path": f"journeys[{i}].stages[{k}].key",
                        "message": f"duplicate stage {key!r}",
                    }
                )
        for k, member in enumerate(j.team):
            if member not in owners:
                errors.append(
                    {"path": f"journeys[{i}].team[{k}]", "message": f"unknown owner {member!r}"}
                )
            elif member in j.team[:k]:
                errors.append(
                    {"path": f"journeys[{i}].team[{k}]", "message": f"{member!r} listed twice"}
                )
    for i, r in enumerate(catalog.rules):
        journey = journeys.get(r.journey)
        if journey is None:
            errors.append(
                {"path": f"rules[{i}].journey", "message": f"unknown journey {r.journey!r}"}
            )
        elif r.stage not in {s.key for s in journey.stages}:
            errors.append(
                {
                    "path": f"rules[{i}].stage",
                    "message": f"journey {r.journey!r} has no stage {r.stage!r}",
                }
            )
    return errors


def first_stage(journey: Journey) -> str:
    return journey.stages[0].key

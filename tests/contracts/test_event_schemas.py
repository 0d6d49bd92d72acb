"""The committed JSON Schemas are exactly what the event models generate today."""

from __future__ import annotations

import pytest

from shared.events.generate import SCHEMA_DIR, render, schemas
from shared.events.models import ALL_EVENTS

GENERATED = schemas()
COMMITTED = sorted(p.name for p in SCHEMA_DIR.glob("*.json"))


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_committed_schema_matches_the_model(name: str) -> None:
    path = SCHEMA_DIR / name
    assert path.is_file(), f"{path} is missing; run `make schemas` and commit the result"
    assert path.read_text(encoding="utf-8") == render(GENERATED[name]), (
        f"{path.name} is out of date with its Pydantic model; run `make schemas` and commit the "
        "result (a breaking change needs a new version and an upcaster, see models.py)"
    )


def test_every_event_model_has_a_schema_file() -> None:
    expected = sorted(f"{m.type_name()}.json" for m in ALL_EVENTS)
    missing = [name for name in expected if name not in COMMITTED]
    assert not missing, f"no committed schema for {missing}; run `make schemas`"


def test_no_stale_schema_files() -> None:
    stale = sorted(set(COMMITTED) - set(GENERATED))
    assert not stale, f"schema files without a model: {stale}; delete them and run `make schemas`"

"""Write the JSON Schema of every event model into shared/events/schemas/ (`make schemas`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.events.models import ALL_EVENTS

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema for every registered event model."""
    out = {}
    for model in ALL_EVENTS:
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"https://closeloop.dev/events/{model.type_name()}.json"
        schema["title"] = model.type_name()
        out[f"{model.type_name()}.json"] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, schema in schemas().items():
        (SCHEMA_DIR / name).write_text(render(schema))


if __name__ == "__main__":
    main()

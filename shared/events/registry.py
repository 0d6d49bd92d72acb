"""(type, version) -> model, with upcasters that lift old versions to the current one."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from shared.events.envelope import Envelope
from shared.events.models import ALL_EVENTS, EventModel

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

REGISTRY: dict[str, type[EventModel]] = {m.type_name(): m for m in ALL_EVENTS}

# (name, from_version) -> function turning a body of that version into the next version's body.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}

_TYPE = re.compile(r"^closeloop\.(?P<name>[a-z_.]+)\.v(?P<version>\d+)$")


class UnknownEventType(ValueError):
    """An event type this code base has no model for."""


def current_model(name: str) -> type[EventModel] | None:
    """The newest registered model of an event name."""
    models = [m for m in ALL_EVENTS if m.name == name]
    return max(models, key=lambda m: m.version) if models else None


def parse_data(envelope: Envelope) -> EventModel:
    """Validate an envelope's body into the newest model of its type, upcasting old versions."""
    match = _TYPE.match(envelope.type)
    if not match:
        raise UnknownEventType(envelope.type)
    name, version = match["name"], int(match["version"])
    model = current_model(name)
    if model is None or version > model.version:
        raise UnknownEventType(envelope.type)
    data = envelope.data
    while version < model.version:
        upcaster = UPCASTERS.get((name, version))
        if upcaster is None:
            raise UnknownEventType(f"{envelope.type}: no upcaster from v{version}")
        data = upcaster(data)
        version += 1
    return model.model_validate(data)

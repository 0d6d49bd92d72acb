"""The services `closeloop up`, `migrate` and `topics` know about (one line per service)."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    default_port: int
    worker_metrics_port: int

    @property
    def port(self) -> int:
        """The API port `closeloop up` uses: `CLOSELOOP_<NAME>_PORT`, else the default."""
        return int(os.environ.get(f"CLOSELOOP_{self.name.upper()}_PORT", self.default_port))

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    @property
    def migrations(self) -> Path:
        return Path(importlib.import_module(self.module).__file__ or "").parent / "migrations"


SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("intake", 8001, 9101),
    ServiceInfo("routing", 8002, 9102),
    ServiceInfo("followup", 8003, 9103),
)


def by_name(name: str) -> ServiceInfo:
    for info in SERVICES:
        if info.name == name:
            return info
    raise KeyError(name)

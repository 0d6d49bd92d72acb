"""Routing settings (`CLOSELOOP_...` environment variables)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class RoutingSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLOSELOOP_", extra="ignore", frozen=True, populate_by_name=True
    )

    service_name: str = Field("routing", description="Name in logs and `ce_source`.")
    database_url: str = Field(
        "sqlite:///.closeloop/routing.db",
        description="Routing database (CLOSELOOP_ROUTING_DATABASE_URL or CLOSELOOP_DATABASE_URL).",
        validation_alias=AliasChoices(
            "database_url", "CLOSELOOP_ROUTING_DATABASE_URL", "CLOSELOOP_DATABASE_URL"
        ),
    )
    http_port: int = Field(8002, description="Routing API port.")
    worker_metrics_port: int = Field(0, description="Worker /metrics port; 0 disables it.")
    handover_after_hours: float = Field(
        24.0, description="An owner away at least this long may have their open loops handed over."
    )
    dry_run_default_last: int = Field(500, description="Complaints a dry-run replays by default.")

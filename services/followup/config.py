"""Followup settings (`CLOSELOOP_...` environment variables)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class FollowupSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLOSELOOP_", extra="ignore", frozen=True, populate_by_name=True
    )

    service_name: str = Field("followup", description="Name in logs and `ce_source`.")
    database_url: str = Field(
        "sqlite:///.closeloop/followup.db",
        description="Followup database (CLOSELOOP_FOLLOWUP_DATABASE_URL, CLOSELOOP_DATABASE_URL).",
        validation_alias=AliasChoices(
            "database_url", "CLOSELOOP_FOLLOWUP_DATABASE_URL", "CLOSELOOP_DATABASE_URL"
        ),
    )
    http_port: int = Field(8003, description="Followup API port.")
    worker_metrics_port: int = Field(0, description="Worker /metrics port; 0 disables it.")
    reopen_window_days: int = Field(
        14,
        ge=0,
        description="A new complaint within this many days of a loop's closing reopens it.",
    )
    scheduler_interval_s: float = Field(
        1.0, gt=0, description="How often the scheduler looks for what has fallen due."
    )
    scheduler_batch_size: int = Field(
        100, ge=1, le=10_000, description="Due targets claimed per scheduler transaction."
    )
    alert_max_attempts: int = Field(
        8, ge=1, description="Delivery attempts of an alert before it is recorded as failed."
    )
    alert_backoff_s: float = Field(
        5.0, gt=0, description="First retry delay of an alert delivery; doubles per attempt."
    )
    alert_timeout_s: float = Field(5.0, gt=0, description="Timeout of one alert delivery.")

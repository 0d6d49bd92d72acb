"""Intake settings (`CLOSELOOP_...` environment variables)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLOSELOOP_", extra="ignore", frozen=True, populate_by_name=True
    )

    service_name: str = Field("intake", description="Name in logs and `ce_source`.")
    database_url: str = Field(
        "sqlite:///.closeloop/intake.db",
        description="Intake database: CLOSELOOP_INTAKE_DATABASE_URL, else CLOSELOOP_DATABASE_URL.",
        validation_alias=AliasChoices(
            "database_url", "CLOSELOOP_INTAKE_DATABASE_URL", "CLOSELOOP_DATABASE_URL"
        ),
    )
    http_port: int = Field(8001, description="Intake API port.")
    worker_metrics_port: int = Field(0, description="Worker /metrics port; 0 disables it.")
    max_body_bytes: int = Field(64 * 1024, description="Largest single-complaint request body.")
    max_batch_items: int = Field(1000, description="Most complaints in one batch.")
    rate_limit: str = Field(
        "100/second",
        description="Per-client request rate (`limits` notation, e.g. `100/second`).",
    )
    rate_limit_storage: str = Field(
        "memory://", description="`limits` storage URI; `redis://...` shares it across replicas."
    )
    idempotency_ttl_hours: int = Field(24, description="How long an Idempotency-Key is kept.")
    repeat_window_days: int = Field(30, description="Window for counting repeat contacts.")
    repeat_threshold: int = Field(3, description="Complaints in the window that make a repeat.")
    reconcile_after_s: int = Field(
        300, description="Re-emit complaint.received for complaints unassigned this long."
    )
    reconcile_interval_s: float = Field(30.0, description="How often the sweep runs.")
    reconcile_batch: int = Field(500, description="Complaints re-emitted per sweep at most.")
    webhook_timeout_s: float = Field(5.0, description="Timeout of one webhook delivery.")
    webhook_max_attempts: int = Field(8, description="Delivery attempts before giving up.")
    webhook_backoff_s: float = Field(2.0, description="First retry delay (doubles each time).")
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts or CIDRs that may be private/loopback (local use only).",
    )

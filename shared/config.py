"""Validated settings shared by every service; each service extends `ServiceSettings`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SIGNING_KEY = "closeloop-dev-signing-key-not-for-production"


class ServiceSettings(BaseSettings):
    """Settings every service reads; names are `CLOSELOOP_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_", extra="ignore", frozen=True)

    env: Literal["dev", "test", "prod"] = Field(
        "dev", description="Deployment kind; `prod` refuses unsafe defaults."
    )
    service_name: str = Field("closeloop", description="Name used in logs and `ce_source`.")
    database_url: str = Field(
        "sqlite:///.closeloop/closeloop.db",
        description="SQLAlchemy URL of this service's database.",
    )
    db_pool_size: int = Field(10, description="Connection pool size (PostgreSQL).")

    # Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    topic_prefix: str = Field("closeloop.", description="Prefix of every topic name.")
    topic_partitions: int = Field(6, description="Partitions of topics this service creates.")
    topic_replication: int = Field(1, description="Replication factor of created topics.")
    # kafka-python defaults to a 45 s session, which makes every group join take ~23 s.
    # 10 s is Kafka's classic default; local runs and tests use 6 s (joins in ~3 s).
    kafka_session_timeout_ms: int = Field(10_000, description="Consumer group session timeout.")
    kafka_heartbeat_interval_ms: int = Field(3_000, description="Consumer heartbeat interval.")
    kafka_fetch_max_wait_ms: int = Field(200, description="Longest a fetch waits for data.")
    kafka_max_poll_records: int = Field(500, description="Records handled per consumer poll.")
    kafka_request_timeout_ms: int = Field(10_000, description="Producer/admin request timeout.")

    # Delivery
    relay_batch_size: int = Field(500, description="Outbox rows published per relay pass.")
    relay_backoff_max_s: float = Field(30.0, description="Longest relay back-off after errors.")
    consumer_max_attempts: int = Field(
        5, description="Attempts to handle a message before it goes to the dead-letter topic."
    )
    consumer_retry_backoff_s: float = Field(
        0.2, description="First back-off between handling attempts (doubles each time)."
    )
    outbox_retention_hours: int = Field(72, description="How long sent outbox rows are kept.")
    worker_idle_sleep_s: float = Field(0.05, description="Worker pause when nothing moved.")

    # Auth
    auth_signing_key: str = Field(DEV_SIGNING_KEY, description="HS256 key for local tokens.")
    auth_issuer: str = Field("closeloop", description="Expected `iss` of tokens.")
    auth_audience: str = Field("closeloop", description="Expected `aud` of tokens.")
    auth_jwks_url: str | None = Field(
        None, description="Identity provider JWKS URL; when set, tokens are verified with it."
    )
    auth_jwks_algorithms: list[str] = Field(["RS256", "ES256"], description="JWKS algorithms.")

    # HTTP
    http_host: str = Field("127.0.0.1", description="Interface the API listens on.")
    http_port: int = Field(8000, description="Port the API listens on.")
    log_level: str = Field("INFO", description="Log level.")

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> ServiceSettings:
        if (
            self.env == "prod"
            and self.auth_signing_key == DEV_SIGNING_KEY
            and not self.auth_jwks_url
        ):
            raise ValueError(
                "CLOSELOOP_AUTH_SIGNING_KEY is the development key; set a secret key "
                "or CLOSELOOP_AUTH_JWKS_URL for production"
            )
        return self

    def topic(self, name: str) -> str:
        """The full topic name for a short name such as `complaints`."""
        return f"{self.topic_prefix}{name}"

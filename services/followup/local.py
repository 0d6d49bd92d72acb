"""Followup for `closeloop up`: default SLA policies, calendar and ladder, and where alerts go."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.followup.bootstrap import bootstrap
from services.followup.config import FollowupSettings
from services.followup.models import ChannelRow
from services.followup.policies import apply_defaults, load_document

DEFAULTS = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "followup.yaml"


@dataclass(frozen=True)
class LocalAlerts:
    loaded: bool  # the defaults were loaded now (False: the database had its configuration)
    webhook_url: str | None
    webhook_secret: str | None
    smtp: str | None


def seed_local(
    database_url: str,
    *,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    smtp: str | None = None,
) -> LocalAlerts:
    """Load the example defaults into an empty followup database, then point its alert channels
    at the given webhook URL and SMTP server ("host:port"), also on later runs."""
    container = bootstrap(FollowupSettings(database_url=database_url))
    smtp_config = _smtp(smtp)
    try:
        loaded = DEFAULTS.exists() and apply_defaults(
            container.uow,
            container.clock,
            load_document(DEFAULTS),
            webhook_url=webhook_url,
            webhook_secret=webhook_secret or secrets.token_hex(24),
            smtp=smtp_config,
        )
        secret = None
        with container.uow() as uow:
            for channel in uow.session.scalars(select(ChannelRow).with_for_update()):
                config = dict(channel.config)
                if channel.kind == "webhook" and webhook_url:
                    config["url"] = webhook_url
                    if webhook_secret:
                        config["secret"] = webhook_secret
                    secret = config.get("secret")
                elif channel.kind == "email" and smtp_config:
                    config.update(smtp_config)
                else:
                    continue
                if config != channel.config or not channel.enabled:
                    channel.config, channel.enabled = config, True
                    channel.version += 1
                    channel.updated_at = container.clock.now()
            uow.commit()
        return LocalAlerts(loaded, webhook_url, secret, smtp)
    finally:
        container.close()


def _smtp(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"SMTP server must be HOST:PORT, not {value!r}")
    return {"host": host, "port": int(port)}

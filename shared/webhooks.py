"""Outgoing webhooks: the signature receivers check and the retry schedule, the same for intake's
status webhooks and followup's alerts."""

from __future__ import annotations

import hashlib
import hmac


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the receiver recomputes and compares."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_webhook(secret: str, header: str, body: bytes) -> bool:
    """Receiver side of `sign_webhook` (used by tests and documented for clients)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        expected = sign_webhook(secret, int(parts["t"]), body)
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(expected.encode(), header.encode("utf-8", "replace"))


def retry_delay(attempt: int, base_s: float, cap_s: float = 3600.0) -> float:
    """Exponential back-off in seconds after the `attempt`-th failure (1-based), capped."""
    return float(min(cap_s, base_s * 2 ** min(attempt - 1, 62)))

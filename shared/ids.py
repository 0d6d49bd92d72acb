"""Identifiers: UUIDv7, time-ordered so that new rows land at the end of indexes."""

from __future__ import annotations

import uuid

import uuid6


def new_id() -> uuid.UUID:
    """A new UUIDv7."""
    return uuid.UUID(bytes=uuid6.uuid7().bytes)

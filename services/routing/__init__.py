"""Routing: assigns each complaint to the cross-functional owner of its customer journey."""

from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"

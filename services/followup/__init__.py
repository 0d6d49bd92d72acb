"""Follow-up: loops, promises, SLAs and escalation (issue 4)."""

from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"

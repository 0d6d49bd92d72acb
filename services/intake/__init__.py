"""Intake: accepts complaints, never loses them, and answers their live status."""

from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"

"""Topic short names; the full name is `settings.topic(name)` (prefix + name)."""

from __future__ import annotations

COMPLAINTS = "complaints"
ASSIGNMENTS = "assignments"
LOOPS = "loops"
DEAD_LETTERS = "dead-letters"

ALL = (COMPLAINTS, ASSIGNMENTS, LOOPS, DEAD_LETTERS)

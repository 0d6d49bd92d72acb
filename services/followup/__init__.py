"""Follow-up: loops, promises, SLAs and escalation (issue 4)."""

"""Routing: assigns each complaint to the owner of its customer journey (issue 3)."""

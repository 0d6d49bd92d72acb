"""drain(): run relays and consumers until nothing moves — end-to-end tests without sleeps."""

from __future__ import annotations

import time
from typing import Protocol


class Pump(Protocol):
    def run_once(self) -> int:
        """Do one pass; return how many things moved."""
        ...

    def idle(self) -> bool:
        """True when nothing is waiting (outbox empty, consumer caught up)."""
        ...


class DrainTimeout(AssertionError):
    pass


def drain(*pumps: Pump, timeout_s: float = 30.0, quiet_rounds: int = 3) -> int:
    """Call every pump until none moves for `quiet_rounds` passes and all are idle.

    Each consumer pass is a broker fetch that waits up to `fetch_max_wait_ms`, so a quiet round
    means the broker had nothing new, not that we merely slept. Returns the total moved.
    """
    deadline = time.monotonic() + timeout_s
    total, quiet = 0, 0
    while time.monotonic() < deadline:
        moved = sum(p.run_once() for p in pumps)
        total += moved
        if moved == 0 and all(p.idle() for p in pumps):
            quiet += 1
            if quiet >= quiet_rounds:
                return total
        else:
            quiet = 0
    raise DrainTimeout(f"still moving after {timeout_s}s (moved {total})")

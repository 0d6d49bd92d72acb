"""Pure intake rules: repeat contacts, the status read model, request fingerprints and webhook
address screening (signing and retries are shared.webhooks). No I/O here."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal[
    "received", "assigned", "acknowledged", "promised", "resolved", "closed", "reopened"
]
STATUSES: tuple[Status, ...] = (
    "received",
    "assigned",
    "acknowledged",
    "promised",
    "resolved",
    "closed",
    "reopened",
)
CONFIRMABLE: frozenset[str] = frozenset({"resolved", "closed"})


@dataclass(frozen=True)
class RepeatContact:
    count_30d: int
    is_repeat: bool


def repeat_contact(earlier_in_window: int, threshold: int) -> RepeatContact:
    """This complaint plus the customer's earlier ones in the window; a repeat at `threshold`."""
    count = earlier_in_window + 1
    return RepeatContact(count_30d=count, is_repeat=count >= threshold)


# (current status, event) -> new status. Missing pairs leave the status as it is, so a late or
# re-emitted event (e.g. a second `complaint.assigned` after reconciliation) never moves it back.
_TRANSITIONS: dict[tuple[str, str], Status] = {
    ("received", "complaint.assigned"): "assigned",
    ("received", "loop.opened"): "assigned",
    ("assigned", "loop.acknowledged"): "acknowledged",
    ("reopened", "loop.acknowledged"): "acknowledged",
    **{
        (s, "promise.made"): "promised"
        for s in ("received", "assigned", "acknowledged", "reopened")
    },
    **{
        (s, "loop.resolved"): "resolved"
        for s in ("received", "assigned", "acknowledged", "promised", "reopened")
    },
    ("resolved", "loop.closed"): "closed",
    **{(s, "loop.closed"): "closed" for s in ("assigned", "acknowledged", "promised", "reopened")},
    ("resolved", "loop.reopened"): "reopened",
    ("closed", "loop.reopened"): "reopened",
}


def status_after(current: str, event_name: str) -> str:
    """The complaint status once `event_name` (e.g. `loop.resolved`) has happened."""
    return _TRANSITIONS.get((current, event_name), current)


PROMISE_STATUS: dict[str, str] = {
    "promise.made": "pending",
    "promise.kept": "kept",
    "promise.overdue": "overdue",
    "promise.renegotiated": "renegotiated",
    "promise.cancelled": "cancelled",
}


def fingerprint(body: Any) -> str:
    """A stable hash of a request body: same JSON content, same fingerprint."""
    # ASCII escapes: any str, even one with lone surrogates, has an encoding to hash.
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo), else itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return ip


def address_is_public(ip: IPAddress) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses,
    also when an IPv6 address merely wraps such an IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip in _IPV4_COMPATIBLE:
        return False  # deprecated IPv4-compatible form, ::a.b.c.d
    ip = embedded_ipv4(ip)
    return ip.is_global and not ip.is_multicast


def host_allowed(host: str, addresses: Iterable[IPAddress], allow_list: Iterable[str]) -> bool:
    """A webhook host is allowed when every address it resolves to is public, or allow-listed.

    The allow-list holds host names or CIDRs; it exists for local use (a receiver on loopback).
    """
    allow = list(allow_list)
    if host.lower() in {a.lower() for a in allow}:
        return True
    networks = []
    for entry in allow:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    addrs = list(addresses)
    if not addrs:
        return False
    return all(
        address_is_public(ip) or any(embedded_ipv4(ip) in n or ip in n for n in networks)
        for ip in addrs
    )

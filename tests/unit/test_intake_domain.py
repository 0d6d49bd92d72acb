"""Pure intake rules: the status read model, repeat contacts, fingerprints, webhook signatures,
webhook destination screening and retry back-off."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re

import pytest

from services.intake.domain import (
    STATUSES,
    address_is_public,
    fingerprint,
    host_allowed,
    repeat_contact,
    status_after,
)
from shared.webhooks import retry_delay, sign_webhook, verify_webhook

ip = ipaddress.ip_address

# Every event name the intake read model hears about.
EVENTS = (
    "complaint.assigned",
    "complaint.reassigned",
    "loop.opened",
    "loop.acknowledged",
    "promise.made",
    "promise.kept",
    "promise.overdue",
    "promise.renegotiated",
    "promise.cancelled",
    "loop.escalated",
    "loop.resolved",
    "loop.closed",
    "loop.reopened",
)
FORWARD = ("received", "assigned", "acknowledged", "promised", "resolved", "closed")


# --- status_after ----------------------------------------------------------------------------


def test_happy_path_moves_through_every_status_in_order() -> None:
    status = "received"
    seen = [status]
    for event in (
        "complaint.assigned",
        "loop.opened",
        "loop.acknowledged",
        "promise.made",
        "loop.resolved",
        "loop.closed",
    ):
        status = status_after(status, event)
        seen.append(status)
    assert seen == [
        "received",
        "assigned",
        "assigned",  # loop.opened after the assignment changes nothing
        "acknowledged",
        "promised",
        "resolved",
        "closed",
    ]


def test_loop_opened_before_the_assignment_event_also_means_assigned() -> None:
    assert status_after("received", "loop.opened") == "assigned"
    assert status_after("assigned", "complaint.assigned") == "assigned"


@pytest.mark.parametrize("current", ["resolved", "closed"])
def test_reopened_from_resolved_or_closed(current: str) -> None:
    assert status_after(current, "loop.reopened") == "reopened"


@pytest.mark.parametrize("current", ["received", "assigned", "acknowledged", "promised"])
def test_reopen_of_a_loop_still_in_progress_changes_nothing(current: str) -> None:
    assert status_after(current, "loop.reopened") == current


def test_a_reopened_complaint_moves_forward_again() -> None:
    assert status_after("reopened", "loop.acknowledged") == "acknowledged"
    assert status_after("reopened", "promise.made") == "promised"
    assert status_after("reopened", "loop.resolved") == "resolved"
    assert status_after("reopened", "loop.closed") == "closed"


@pytest.mark.parametrize("current", [s for s in STATUSES if s != "received"])
@pytest.mark.parametrize("event", ["complaint.assigned", "loop.opened", "complaint.reassigned"])
def test_late_or_duplicate_assignment_never_moves_the_status_back(current: str, event: str) -> None:
    assert status_after(current, event) == current


@pytest.mark.parametrize("current", FORWARD)
@pytest.mark.parametrize("event", [e for e in EVENTS if e != "loop.reopened"])
def test_no_event_but_reopen_moves_a_status_backwards(current: str, event: str) -> None:
    after = status_after(current, event)
    assert after in FORWARD
    assert FORWARD.index(after) >= FORWARD.index(current)


@pytest.mark.parametrize(
    ("current", "event"),
    [
        ("closed", "loop.resolved"),
        ("closed", "loop.acknowledged"),
        ("resolved", "promise.made"),
        ("promised", "loop.acknowledged"),
    ],
)
def test_stale_events_after_progress_are_ignored(current: str, event: str) -> None:
    assert status_after(current, event) == current


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize(
    "event",
    ["complaint.received", "complaint.confirmed", "loop.escalated", "promise.kept", "x.y", ""],
)
def test_events_without_a_status_meaning_leave_the_status_unchanged(
    current: str, event: str
) -> None:
    assert status_after(current, event) == current


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("event", EVENTS)
def test_every_result_is_a_known_status(current: str, event: str) -> None:
    assert status_after(current, event) in STATUSES


# --- repeat_contact --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "threshold", "count", "is_repeat"),
    [
        (0, 2, 1, False),
        (1, 2, 2, True),
        (0, 3, 1, False),
        (1, 3, 2, False),  # one below the threshold
        (2, 3, 3, True),  # exactly at the threshold
        (7, 3, 8, True),
    ],
)
def test_repeat_contact_counts_this_complaint_and_flags_at_the_threshold(
    earlier: int, threshold: int, count: int, is_repeat: bool
) -> None:
    result = repeat_contact(earlier, threshold)
    assert (result.count_30d, result.is_repeat) == (count, is_repeat)


# --- fingerprint -----------------------------------------------------------------------------


def test_fingerprint_ignores_key_order_at_every_level() -> None:
    a = {"summary": "late", "customer": {"ref": "c-1", "name": "Ada"}, "tags": [1, 2]}
    b = {"tags": [1, 2], "customer": {"name": "Ada", "ref": "c-1"}, "summary": "late"}
    assert fingerprint(a) == fingerprint(b)
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint(a))


@pytest.mark.parametrize(
    "other",
    [
        {"summary": "Late", "customer": {"ref": "c-1"}},
        {"summary": "late", "customer": {"ref": "c-2"}},
        {"summary": "late", "customer": {"ref": "c-1"}, "extra": None},
        {"summary": "late"},
        [{"summary": "late", "customer": {"ref": "c-1"}}],
    ],
)
def test_fingerprint_differs_for_different_content(other: object) -> None:
    assert fingerprint({"summary": "late", "customer": {"ref": "c-1"}}) != fingerprint(other)


def test_fingerprint_keeps_list_order_significant() -> None:
    assert fingerprint([{"a": 1}, {"a": 2}]) != fingerprint([{"a": 2}, {"a": 1}])


def test_fingerprint_accepts_any_json_string() -> None:
    assert fingerprint({"summary": "\ud800"}) != fingerprint({"summary": "\ud801"})


# --- webhook signatures ----------------------------------------------------------------------

SECRET = "whsec-test-0123456789"
BODY = b'{"id":"d-1","status":"assigned"}'
TS = 1_795_424_400


def test_signature_header_format_and_value() -> None:
    header = sign_webhook(SECRET, TS, BODY)
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header)
    assert match is not None
    assert int(match[1]) == TS
    expected = hmac.new(SECRET.encode(), f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert match[2] == expected


def test_signature_verifies_with_the_same_secret_and_body() -> None:
    assert verify_webhook(SECRET, sign_webhook(SECRET, TS, BODY), BODY)


def test_tampered_body_fails_verification() -> None:
    header = sign_webhook(SECRET, TS, BODY)
    assert not verify_webhook(SECRET, header, BODY.replace(b"assigned", b"resolved"))
    assert not verify_webhook(SECRET, header, BODY + b" ")


def test_wrong_secret_fails_verification() -> None:
    assert not verify_webhook("another-secret", sign_webhook(SECRET, TS, BODY), BODY)


def test_replayed_signature_with_a_new_timestamp_fails_verification() -> None:
    mac = sign_webhook(SECRET, TS, BODY).split(",v1=")[1]
    assert not verify_webhook(SECRET, f"t={TS + 60},v1={mac}", BODY)


@pytest.mark.parametrize(
    "header", ["", "garbage", f"t={TS}", "v1=abc", f"t=soon,v1={'0' * 64}", f"t={TS},v1="]
)
def test_malformed_signature_headers_fail_verification(header: str) -> None:
    assert verify_webhook(SECRET, header, BODY) is False


def test_non_ascii_signature_header_fails_verification() -> None:
    assert verify_webhook(SECRET, f"t={TS},v1=\u00e9", BODY) is False


# --- destination screening -------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "10.0.0.1",
        "10.255.255.254",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.10",
        "169.254.169.254",  # cloud metadata
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "0.0.0.0",
        "::",
        "100.64.0.1",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
    ],
)
def test_non_public_addresses_are_not_public(address: str) -> None:
    assert address_is_public(ip(address)) is False


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_public(address: str) -> None:
    assert address_is_public(ip(address)) is True


@pytest.mark.parametrize("address", ["64:ff9b::a00:1", "2002:a00:1::1", "::127.0.0.1"])
def test_ipv6_forms_embedding_a_private_ipv4_are_not_public(address: str) -> None:
    assert address_is_public(ip(address)) is False


def test_public_host_is_allowed() -> None:
    assert host_allowed("example.com", [ip("93.184.216.34")], []) is True


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "10.1.2.3", "169.254.169.254", "::ffff:127.0.0.1", "0.0.0.0"]
)
def test_host_resolving_to_a_private_address_is_refused(address: str) -> None:
    assert host_allowed("evil.example", [ip(address)], []) is False


def test_one_private_address_among_public_ones_is_refused() -> None:
    # DNS rebinding style: every resolved address must pass, not just one.
    addresses = [ip("93.184.216.34"), ip("10.0.0.5")]
    assert host_allowed("mixed.example", addresses, []) is False


def test_empty_resolution_is_refused() -> None:
    assert host_allowed("nowhere.example", [], []) is False
    assert host_allowed("nowhere.example", [], ["10.0.0.0/8"]) is False


def test_allow_list_by_cidr_admits_addresses_inside_it_only() -> None:
    allow = ["127.0.0.0/8", "fd00::/8"]
    assert host_allowed("receiver", [ip("127.0.0.1")], allow) is True
    assert host_allowed("receiver", [ip("fd00::5")], allow) is True
    assert host_allowed("receiver", [ip("10.0.0.1")], allow) is False
    assert host_allowed("receiver", [ip("127.0.0.1"), ip("192.168.0.1")], allow) is False


def test_allow_list_by_host_name_is_case_insensitive() -> None:
    assert host_allowed("LocalHost", [ip("127.0.0.1")], ["localhost"]) is True
    assert host_allowed("localhost", [ip("::1")], ["LOCALHOST"]) is True
    assert host_allowed("notlocalhost", [ip("127.0.0.1")], ["localhost"]) is False


def test_allow_list_entries_that_are_neither_cidr_nor_this_host_are_ignored() -> None:
    assert host_allowed("evil.example", [ip("127.0.0.1")], ["localhost", "", "300.1.1.1"]) is False


# --- retry_delay -----------------------------------------------------------------------------


def test_retry_delay_doubles_from_the_base() -> None:
    assert [retry_delay(n, 2.0) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 32.0]


def test_retry_delay_is_capped() -> None:
    assert retry_delay(20, 2.0) == 3600.0
    assert retry_delay(4, 2.0, cap_s=10.0) == 10.0
    assert retry_delay(3, 2.0, cap_s=10.0) == 8.0
    assert isinstance(retry_delay(1, 1), float)

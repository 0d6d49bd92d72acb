"""The `closeloop` command as an operator uses it: tokens, migrations, topics, dead letters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.auth import TokenVerifier
from shared.bus.kafka import Producer, read_topic
from shared.clock import SystemClock
from shared.config import ServiceSettings
from shared.events import topics
from shared.events.envelope import KafkaMessage
from shared.testing.broker import TansuBroker


def closeloop(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLOSELOOP_")}
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        capture_output=True,
        text=True,
        env=base | (env or {}),
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_token_issue_prints_a_token_the_services_accept() -> None:
    out = closeloop(
        "token", "issue", "--role", "manager", "--subject", "mia", "--journey", "borrow"
    )
    assert out.returncode == 0, out.stderr
    principal = TokenVerifier(ServiceSettings(), SystemClock()).verify(out.stdout.strip())
    assert (principal.role, principal.subject, principal.journeys) == (
        "manager",
        "mia",
        ("borrow",),
    )


def test_token_issue_refuses_an_unknown_role() -> None:
    out = closeloop("token", "issue", "--role", "king", "--subject", "x")
    assert out.returncode != 0
    assert "invalid choice" in out.stderr


def test_migrate_builds_the_sqlite_database(tmp_path: Path) -> None:
    out = closeloop("migrate", "intake", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / ".closeloop" / "intake.db").exists()


@pytest.mark.broker
def test_topics_dlq_list_and_replay(broker: TansuBroker, topic_prefix: str) -> None:
    env = {"CLOSELOOP_KAFKA_BOOTSTRAP": broker.bootstrap, "CLOSELOOP_TOPIC_PREFIX": topic_prefix}
    created = closeloop("topics", "create", env=env)
    assert created.returncode == 0, created.stderr
    assert f"{topic_prefix}dead-letters" in created.stdout

    settings = ServiceSettings(kafka_bootstrap=broker.bootstrap, topic_prefix=topic_prefix)
    producer = Producer(settings, "test")
    original = settings.topic(topics.COMPLAINTS)
    try:
        producer.send(
            KafkaMessage(
                topic=settings.topic(topics.DEAD_LETTERS),
                key=b"cust",
                value=b'{"x": 1}',
                headers=[
                    ("ce_id", b"evt-1"),
                    ("ce_type", b"closeloop.complaint.received.v1"),
                    ("dlq_error", b"boom"),
                    ("dlq_original_topic", original.encode()),
                    ("dlq_original_offset", b"7"),
                    ("dlq_consumer_group", b"routing"),
                    ("dlq_failed_at", b"2026-11-23T09:00:00+00:00"),
                ],
            )
        )
    finally:
        producer.close()

    listed = closeloop("dlq", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (letter,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert letter["event_id"] == "evt-1"
    assert letter["error"] == "boom"
    assert letter["consumer_group"] == "routing"

    replayed = closeloop("dlq", "replay", "evt-1", env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1" in replayed.stdout
    (msg,) = list(read_topic(settings, original))
    assert msg.value == b'{"x": 1}'
    assert msg.header("ce_id") == "evt-1"
    assert msg.header("dlq_error") is None  # the original message, without the failure notes

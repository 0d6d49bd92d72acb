"""`closeloop up` as a user runs it: starts everything, prints URLs and tokens, takes real CFPB
complaints through `closeloop replay-cfpb`, answers look-ups, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from shared.cfpb import default_csv_path, map_row, read_rows
from shared.testing.broker import free_port


@pytest.fixture
def system(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`closeloop up` in an empty folder; yields the intake URL and the intake-client token."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSELOOP_")}
    env["CLOSELOOP_INTAKE_PORT"] = str(port)
    env["CLOSELOOP_ROUTING_PORT"] = str(free_port())
    env["CLOSELOOP_FOLLOWUP_PORT"] = str(free_port())
    os.environ["E2E_ROUTING_URL"] = f"http://127.0.0.1:{env['CLOSELOOP_ROUTING_PORT']}"
    os.environ["E2E_FOLLOWUP_URL"] = f"http://127.0.0.1:{env['CLOSELOOP_FOLLOWUP_PORT']}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            pytest.fail("closeloop up exited early:\n" + "".join(lines))
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            break
    out = "".join(lines)
    assert f"http://127.0.0.1:{port}" in out, out
    match = re.search(r"intake-client\s+\(demo-contact-center\): (\S+)", out)
    assert match, out
    try:
        yield f"http://127.0.0.1:{port}", match.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest
        assert "stopped" in rest


def test_make_run_takes_real_complaints_and_answers_lookups(system: tuple[str, str]) -> None:
    url, token = system
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{url}/readyz").json()["checks"] == {"database": "ok", "broker": "ok"}

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.cli",
            "replay-cfpb",
            "--limit",
            "25",
            "--url",
            url,
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepted: 25" in result.stdout

    first = map_row(next(iter(read_rows(default_csv_path(), 1))))
    found = httpx.get(
        f"{url}/v1/complaints", params={"external_ref": first["external_ref"]}, headers=headers
    ).json()["items"]
    assert len(found) == 1
    complaint = httpx.get(f"{url}/v1/complaints/{found[0]['id']}", headers=headers).json()
    assert complaint["summary"] == first["summary"]
    # Routing may already have assigned it: the look-up races the running system.
    assert complaint["status"] in ("received", "assigned")
    history = httpx.get(
        f"{url}/v1/customers/{first['customer']['ref']}/complaints", headers=headers
    ).json()
    assert found[0]["id"] in [c["id"] for c in history["items"]]

    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.cli",
            "replay-cfpb",
            "--limit",
            "25",
            "--url",
            url,
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "replayed: 25" in again.stdout, again.stdout  # Idempotency-Key: no duplicates


def test_make_run_routes_every_complaint_and_explains_it(
    system: tuple[str, str], tmp_path: Path
) -> None:
    url, token = system
    routing = os.environ["E2E_ROUTING_URL"]
    headers = {"Authorization": f"Bearer {token}"}
    cli = [sys.executable, "-m", "shared.cli"]
    posted = subprocess.run(
        [*cli, "replay-cfpb", "--limit", "40", "--url", url, "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "accepted: 40" in posted.stdout, posted.stdout + posted.stderr

    # Every complaint gets assigned (routing consumes, intake's read model follows): wait for
    # the status the user would see, bounded.
    deadline = time.monotonic() + 60
    statuses: set[str] = set()
    while time.monotonic() < deadline:
        page = httpx.get(f"{url}/v1/complaints", params={"limit": 200}, headers=headers).json()
        statuses = {c["status"] for c in page["items"]}
        if statuses == {"assigned"}:
            break
        time.sleep(0.5)  # another process's consumers: polling its API is all a user can do
    assert statuses == {"assigned"}
    some = page["items"][0]
    assert some["journey"]["key"]
    assert some["owner"]["key"]

    stats = subprocess.run(
        [*cli, "routing", "stats", "--url", routing], capture_output=True, text=True, check=False
    )
    assert stats.returncode == 0, stats.stderr
    assert "assignments: 40" in stats.stdout
    assert "routed to triage:" in stats.stdout

    exported = tmp_path / "catalog.yaml"
    out = subprocess.run(
        [*cli, "catalog", "export", "--url", routing, "-o", str(exported)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    broken = tmp_path / "broken.yaml"
    document = yaml.safe_load(exported.read_text())
    document["journeys"][0]["team"].insert(0, "nobody-here")
    broken.write_text(yaml.safe_dump(document))
    refused = subprocess.run(
        [*cli, "catalog", "apply", str(broken), "--url", routing],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert "journeys[0].team[0]: unknown owner 'nobody-here'" in refused.stderr
    applied = subprocess.run(
        [*cli, "catalog", "apply", str(exported), "--url", routing],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "catalog applied as version 2" in applied.stdout, applied.stdout + applied.stderr


def test_make_run_follows_up_every_routed_complaint_under_the_default_sla(
    system: tuple[str, str],
) -> None:
    url, _ = system
    followup = os.environ["E2E_FOLLOWUP_URL"]
    cli = [sys.executable, "-m", "shared.cli"]
    posted = subprocess.run(
        [*cli, "replay-cfpb", "--limit", "20", "--url", url, "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "accepted: 20" in posted.stdout, posted.stdout + posted.stderr
    token = subprocess.run(
        [*cli, "token", "issue", "--role", "admin", "--subject", "e2e"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}

    deadline = time.monotonic() + 60
    loops: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        loops = httpx.get(f"{followup}/v1/loops", params={"limit": 200}, headers=headers).json()[
            "items"
        ]
        if len(loops) == 20:
            break
        time.sleep(0.5)  # another process's consumers: polling its API is all a user can do
    assert len(loops) == 20
    # `closeloop up` loaded the default SLA policies: every loop has its acknowledge target due.
    assert all(loop["next_due_at"] for loop in loops)
    policies = httpx.get(f"{followup}/v1/sla-policies", headers=headers).json()["items"]
    assert {p["severity"] for p in policies} >= {"low", "medium", "high", "critical"}

    # Re-applying the defaults through the API is idempotent.
    applied = subprocess.run(
        [*cli, "followup", "defaults", "--url", followup],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    again = httpx.get(f"{followup}/v1/sla-policies", headers=headers).json()["items"]
    assert sorted(p["id"] for p in again) == sorted(p["id"] for p in policies)

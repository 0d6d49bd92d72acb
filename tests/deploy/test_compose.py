"""docker-compose.yml is valid for a real Compose v2 (`config` needs no Docker engine)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SIGNING_KEY = "test-signing-key"

Project = dict[str, Any]


def run_compose(
    compose_bin: Path,
    compose_file: Path,
    *args: str,
    env_file: Path,
    signing_key: str | None = SIGNING_KEY,
) -> subprocess.CompletedProcess[str]:
    """`docker-compose -f FILE config ...`, isolated from the caller's COMPOSE_* and .env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "CLOSELOOP_"))}
    if signing_key is not None:
        env["CLOSELOOP_AUTH_SIGNING_KEY"] = signing_key
    command = [
        str(compose_bin),
        "--project-name",
        "closeloop",
        "--env-file",
        str(env_file),
        "-f",
        str(compose_file),
        *args,
    ]
    return subprocess.run(
        command, cwd=compose_file.parent, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def empty_env_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


@pytest.fixture
def project(compose_bin: Path, empty_env_file: Path) -> Project:
    """The compose file as Compose resolves it: anchors merged, variables interpolated."""
    done = run_compose(
        compose_bin, COMPOSE_FILE, "config", "--format", "json", env_file=empty_env_file
    )
    assert done.returncode == 0, done.stderr
    resolved: Project = json.loads(done.stdout)
    return resolved


def test_compose_file_is_valid(compose_bin: Path, empty_env_file: Path) -> None:
    done = run_compose(compose_bin, COMPOSE_FILE, "config", "--quiet", env_file=empty_env_file)

    assert done.returncode == 0, f"docker-compose config rejected {COMPOSE_FILE}:\n{done.stderr}"


def test_signing_key_is_required(compose_bin: Path, empty_env_file: Path) -> None:
    done = run_compose(
        compose_bin,
        COMPOSE_FILE,
        "config",
        "--quiet",
        env_file=empty_env_file,
        signing_key=None,
    )

    assert done.returncode != 0
    assert "CLOSELOOP_AUTH_SIGNING_KEY" in done.stderr


@pytest.mark.parametrize(
    "name",
    ["kafka", "postgres", "intake-api", "intake-worker", "routing-api", "routing-worker"],
)
def test_long_running_services_have_healthchecks(project: Project, name: str) -> None:
    service = project["services"][name]

    healthcheck = service.get("healthcheck", {})
    assert not healthcheck.get("disable", False)
    assert healthcheck.get("test"), f"{name} has no healthcheck"
    assert service.get("restart") == "unless-stopped"


@pytest.mark.parametrize("name", ["intake-worker", "routing-worker"])
def test_workers_run_two_replicas(project: Project, name: str) -> None:
    assert project["services"][name]["deploy"]["replicas"] == 2


@pytest.mark.parametrize(
    ("name", "svc"),
    [
        ("intake-api", "intake"),
        ("intake-worker", "intake"),
        ("routing-api", "routing"),
        ("routing-worker", "routing"),
    ],
)
def test_services_start_after_migrations_and_topics(project: Project, name: str, svc: str) -> None:
    service = project["services"][name]

    assert service["command"][:3] == ["python", "-m", f"services.{svc}"]
    depends_on = service["depends_on"]
    for job in (f"migrate-{svc}", "topics"):
        assert depends_on[job]["condition"] == "service_completed_successfully"
    environment = service["environment"]
    assert environment["CLOSELOOP_ENV"] == "prod"
    assert environment["CLOSELOOP_AUTH_SIGNING_KEY"] == SIGNING_KEY
    assert environment["CLOSELOOP_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert environment["CLOSELOOP_DATABASE_URL"].endswith(f"@postgres:5432/{svc}")


def test_one_shot_jobs_wait_for_their_dependencies(project: Project) -> None:
    services = project["services"]

    assert services["migrate-intake"]["command"] == ["closeloop", "migrate", "intake"]
    assert services["topics"]["command"] == ["closeloop", "topics", "create"]
    for job, needs in (("migrate-intake", {"postgres", "kafka"}), ("topics", {"kafka"})):
        depends_on = services[job]["depends_on"]
        assert {k for k, v in depends_on.items() if v["condition"] == "service_healthy"} >= needs
        assert services[job].get("restart", "no") == "no"


def test_kafka_does_not_create_topics_on_its_own(project: Project) -> None:
    environment = project["services"]["kafka"]["environment"]

    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert environment["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"


def write_copy(doc: Project, directory: Path) -> Path:
    """A copy of the compose file (anchors expanded) in `directory`."""
    path = directory / "docker-compose.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_unmodified_copy_is_accepted(
    compose_bin: Path, empty_env_file: Path, tmp_path: Path
) -> None:
    """Control for the test below: copying alone does not make the file invalid."""
    copy = write_copy(yaml.safe_load(COMPOSE_FILE.read_text()), tmp_path)

    done = run_compose(compose_bin, copy, "config", "--quiet", env_file=empty_env_file)

    assert done.returncode == 0, done.stderr


def _depend_on_undefined_service(doc: Project) -> str:
    doc["services"]["intake-api"]["depends_on"]["no-such-service"] = {
        "condition": "service_started"
    }
    return "no-such-service"


def _misspell_healthcheck(doc: Project) -> str:
    doc["services"]["postgres"]["helthcheck"] = doc["services"]["postgres"].pop("healthcheck")
    return "helthcheck"


def _non_numeric_replicas(doc: Project) -> str:
    doc["services"]["intake-worker"]["deploy"]["replicas"] = "two"
    return "replicas"


@pytest.mark.parametrize(
    "break_it",
    [_depend_on_undefined_service, _misspell_healthcheck, _non_numeric_replicas],
)
def test_broken_copy_is_rejected(
    compose_bin: Path,
    empty_env_file: Path,
    tmp_path: Path,
    break_it: Callable[[Project], str],
) -> None:
    """The check can fail: a copy of the real file with one mistake is refused."""
    doc: Project = yaml.safe_load(COMPOSE_FILE.read_text())
    culprit = break_it(doc)
    broken = write_copy(doc, tmp_path)

    done = run_compose(compose_bin, broken, "config", "--quiet", env_file=empty_env_file)

    assert done.returncode != 0, "docker-compose config accepted a broken file"
    assert culprit in done.stderr

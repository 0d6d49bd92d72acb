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

from shared.services import SERVICES

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SIGNING_KEY = "test-signing-key"

Project = dict[str, Any]

# (service, API port, worker metrics port, worker replicas), as in shared/services.py.
DEPLOYED = [
    ("intake", 8001, 9101, 2),
    ("routing", 8002, 9102, 2),
    ("followup", 8003, 9103, 3),
]
SERVICE_NAMES = [svc for svc, *_ in DEPLOYED]


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
    [
        "kafka",
        "postgres",
        *(f"{svc}-{process}" for svc in SERVICE_NAMES for process in ("api", "worker")),
    ],
)
def test_long_running_services_have_healthchecks(project: Project, name: str) -> None:
    service = project["services"][name]

    healthcheck = service.get("healthcheck", {})
    assert not healthcheck.get("disable", False)
    assert healthcheck.get("test"), f"{name} has no healthcheck"
    assert service.get("restart") == "unless-stopped"


def test_every_registered_service_is_deployed(project: Project) -> None:
    """Each service `closeloop migrate` knows has its job, API and worker, on its ports."""
    deployed = {svc: (port, metrics) for svc, port, metrics, _ in DEPLOYED}
    assert {info.name: (info.default_port, info.worker_metrics_port) for info in SERVICES} == (
        deployed
    )
    for svc in deployed:
        for name in (f"migrate-{svc}", f"{svc}-api", f"{svc}-worker"):
            assert name in project["services"]


@pytest.mark.parametrize(("svc", "replicas"), [(svc, n) for svc, _, _, n in DEPLOYED])
def test_workers_run_several_replicas(project: Project, svc: str, replicas: int) -> None:
    assert project["services"][f"{svc}-worker"]["deploy"]["replicas"] == replicas


@pytest.mark.parametrize(("svc", "port", "metrics_port"), [d[:3] for d in DEPLOYED])
def test_env_anchor_ports_and_health_checks_agree(
    project: Project, svc: str, port: int, metrics_port: int
) -> None:
    """Both containers of a service share its env anchor; each checks its own port."""
    api, worker = project["services"][f"{svc}-api"], project["services"][f"{svc}-worker"]

    assert api["environment"] == worker["environment"]
    environment = api["environment"]
    assert environment["CLOSELOOP_SERVICE_NAME"] == svc
    assert environment["CLOSELOOP_HTTP_HOST"] == "0.0.0.0"
    assert environment["CLOSELOOP_HTTP_PORT"] == str(port)
    assert environment["CLOSELOOP_WORKER_METRICS_PORT"] == str(metrics_port)
    assert project["services"][f"migrate-{svc}"]["environment"] == environment
    assert [(p["target"], str(p["published"])) for p in api["ports"]] == [(port, str(port))]
    assert worker["expose"] == [str(metrics_port)]
    assert api["command"][-1] == "api"
    assert worker["command"][-1] == "worker"
    assert f"http://127.0.0.1:{port}/readyz" in api["healthcheck"]["test"][-1]
    assert f"http://127.0.0.1:{metrics_port}/healthz" in worker["healthcheck"]["test"][-1]


@pytest.mark.parametrize(
    ("name", "svc"),
    [(f"{svc}-{process}", svc) for svc in SERVICE_NAMES for process in ("api", "worker")],
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

    for svc in SERVICE_NAMES:
        assert services[f"migrate-{svc}"]["command"] == ["closeloop", "migrate", svc]
    assert services["topics"]["command"] == ["closeloop", "topics", "create"]
    jobs = [
        ("migrate-intake", {"postgres", "kafka"}),
        ("migrate-routing", {"postgres"}),
        ("migrate-followup", {"postgres"}),
        ("topics", {"kafka"}),
    ]
    for job, needs in jobs:
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

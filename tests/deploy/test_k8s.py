"""The Kubernetes manifests parse and keep the properties operators rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.services import SERVICES

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"

# (service, API port, worker metrics port, worker replicas), as in shared/services.py.
DEPLOYED = [
    ("intake", 8001, 9101, 2),
    ("routing", 8002, 9102, 2),
    ("followup", 8003, 9103, 3),
]
SERVICE_NAMES = [svc for svc, *_ in DEPLOYED]


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def deployments() -> list[dict[str, Any]]:
    return [d for d in documents() if d["kind"] == "Deployment"]


def find(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every Deployment and Job."""
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for d in documents()
        if d["kind"] in ("Deployment", "Job")
    ]


def test_names_are_unique_per_kind() -> None:
    names = [(d["kind"], d["metadata"]["name"]) for d in documents()]
    assert len(names) == len(set(names))


def test_every_registered_service_is_deployed() -> None:
    """Each service `closeloop migrate` knows has manifests, on the ports it defaults to."""
    assert {info.name: (info.default_port, info.worker_metrics_port) for info in SERVICES} == {
        svc: (port, metrics) for svc, port, metrics, _ in DEPLOYED
    }


@pytest.mark.parametrize("svc", SERVICE_NAMES)
def test_every_service_has_api_worker_migration_and_config(svc: str) -> None:
    have = {(d["kind"], d["metadata"]["name"]) for d in documents()}
    assert {
        ("Deployment", f"{svc}-api"),
        ("Service", f"{svc}-api"),
        ("Deployment", f"{svc}-worker"),
        ("Job", f"migrate-{svc}"),
        ("ConfigMap", f"{svc}-config"),
        ("Secret", f"{svc}-secrets"),
    } <= have


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["metadata"]["name"])
def test_deployments_are_probed_and_run_unprivileged(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert "livenessProbe" in container
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    if deployment["metadata"]["name"].endswith("-api"):
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize(("svc", "port", "metrics_port", "replicas"), DEPLOYED)
def test_service_manifests_agree_on_ports_config_and_replicas(
    svc: str, port: int, metrics_port: int, replicas: int
) -> None:
    config = find("ConfigMap", f"{svc}-config")["data"]
    assert config["CLOSELOOP_SERVICE_NAME"] == svc
    assert config["CLOSELOOP_HTTP_PORT"] == str(port)
    assert config["CLOSELOOP_WORKER_METRICS_PORT"] == str(metrics_port)
    assert config["CLOSELOOP_ENV"] == "prod"
    secret = find("Secret", f"{svc}-secrets")["stringData"]
    assert secret["CLOSELOOP_DATABASE_URL"].endswith(f"/{svc}")

    api = find("Deployment", f"{svc}-api")
    (api_container,) = api["spec"]["template"]["spec"]["containers"]
    assert api_container["command"] == ["python", "-m", f"services.{svc}", "api"]
    assert api_container["ports"] == [{"name": "http", "containerPort": port}]
    service = find("Service", f"{svc}-api")
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]

    worker = find("Deployment", f"{svc}-worker")
    assert worker["spec"]["replicas"] == replicas
    template = worker["spec"]["template"]
    (worker_container,) = template["spec"]["containers"]
    assert worker_container["command"] == ["python", "-m", f"services.{svc}", "worker"]
    assert worker_container["ports"] == [{"name": "metrics", "containerPort": metrics_port}]
    assert worker_container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)

    job = find("Job", f"migrate-{svc}")
    (job_container,) = job["spec"]["template"]["spec"]["containers"]
    assert job_container["command"] == ["closeloop", "migrate", svc]

    for deployment in (api, worker):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for container in (api_container, worker_container, job_container):
        assert container["envFrom"] == [
            {"configMapRef": {"name": f"{svc}-config"}},
            {"secretRef": {"name": f"{svc}-secrets"}},
        ]


@pytest.mark.parametrize("pod", [pytest.param(pod, id=name) for name, pod in pod_specs()])
def test_pods_have_a_restricted_security_context(pod: dict[str, Any]) -> None:
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert "memory" in container["resources"]["limits"]

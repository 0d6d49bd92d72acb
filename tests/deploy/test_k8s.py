"""The Kubernetes manifests parse and keep the properties operators rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def deployments() -> list[dict[str, Any]]:
    return [d for d in documents() if d["kind"] == "Deployment"]


def test_names_are_unique_per_kind() -> None:
    names = [(d["kind"], d["metadata"]["name"]) for d in documents()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("svc", ["intake", "routing"])
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

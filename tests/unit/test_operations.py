"""The Kubernetes manifests, the Prometheus configuration and alert rules, and the Grafana dashboard, checked without
a cluster: against the Kubernetes schemas (`kubernetes-validate`, offline), `promtool`, and the code (commands,
settings, ports, metrics)."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from prometheus_client import REGISTRY

from services.broker.topics import STREAM
from services.plan_files import DEFAULT_PLANS_DIR
from services.processor.app import internal_topics_prefix
from services.settings import Settings
from tests.support.deployment import (
    ALERTS,
    DASHBOARD,
    DEPLOY,
    PREFIX,
    PROMETHEUS_CONFIG,
    PROMETHEUS_OWN,
    ROOT,
    alert_expressions,
    command_problem,
    dashboard_expressions,
    exported_names,
    queried_metrics,
    settings_of,
)

K8S = DEPLOY / "k8s"
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
"""The oldest Kubernetes the manifests are for, and the newest the schemas know."""
CUSTOM_RESOURCES = {"keda.sh/v1alpha1"}  # CRDs: not in the Kubernetes schemas, their shape is checked here
PLACEHOLDER = "REPLACE_ME"


@cache
def manifests() -> list[tuple[str, dict[str, Any]]]:
    """(file name, resource) for every resource of every manifest of deploy/k8s."""
    return [(path.name, doc) for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in manifests() if doc["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return only


def environment(deployment: dict[str, Any]) -> dict[str, str]:
    """The variables a Deployment's container gets from its ConfigMaps and Secrets."""
    config_maps, secrets = resources("ConfigMap"), resources("Secret")
    env: dict[str, str] = {}
    for source in container(deployment)["envFrom"]:
        if "configMapRef" in source:
            env |= config_maps[source["configMapRef"]["name"]]["data"]
        else:
            env |= secrets[source["secretRef"]["name"]]["stringData"]
    return env


def served_port(deployment: dict[str, Any]) -> int:
    """The port the container serves `/healthz` and `/metrics` on, as its settings say."""
    settings = settings_of(environment(deployment))
    return settings.processor_web_port if container(deployment)["args"] == ["processor"] else settings.api_port


def port_number(deployment: dict[str, Any], port: int | str) -> int:
    """A container port given by number or by name."""
    named = {entry["name"]: entry["containerPort"] for entry in container(deployment)["ports"]}
    return named[port] if isinstance(port, str) else port


def test_kustomization_applies_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    images = {image["name"] for image in kustomization["images"]}
    assert {container(deployment)["image"] for deployment in resources("Deployment").values()} == images


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_validate_against_the_kubernetes_schemas(version: str):
    for _, doc in manifests():
        if doc["apiVersion"] not in CUSTOM_RESOURCES:
            kubernetes_validate.validate(doc, version, strict=True)  # raises, naming the field, when invalid


def test_each_service_runs_as_a_deployment_of_its_own_command():
    deployments = resources("Deployment")
    assert set(deployments) == {"ingest", "ledger", "processor", "query", "settlement"}
    for name, deployment in deployments.items():
        assert container(deployment)["args"] == [name]
        assert command_problem(container(deployment)["args"]) is None


def test_deployments_have_known_settings_probes_on_healthz_and_resources():
    for name, deployment in resources("Deployment").items():
        env = environment(deployment)
        assert [key for key in env if key.startswith(PREFIX) and key.removeprefix(PREFIX).lower()
                not in Settings.model_fields] == [], name
        settings_of(env)  # valid values
        spec = container(deployment)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            http = spec[probe]["httpGet"]
            assert (http["path"], port_number(deployment, http["port"])) == ("/healthz", served_port(deployment)), name
        for bound in ("requests", "limits"):
            assert set(spec["resources"][bound]) == {"cpu", "memory"}, name
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert (annotations["prometheus.io/path"], int(annotations["prometheus.io/port"])) == (
            "/metrics", served_port(deployment)), name


def test_volumes_hold_the_plans_and_tokens_where_the_settings_look():
    config_maps, secrets = resources("ConfigMap"), resources("Secret")
    for name, deployment in resources("Deployment").items():
        settings = settings_of(environment(deployment))
        volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
        mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in container(deployment)["volumeMounts"]}
        assert "emptyDir" in mounts[str(settings.data_dir)], name  # the root file system is read-only
        assert {volume["configMap"]["name"] for volume in volumes.values() if "configMap" in volume} <= set(config_maps)
        assert {volume["secret"]["secretName"] for volume in volumes.values() if "secret" in volume} <= set(secrets)
        if name in {"query", "settlement"}:  # they evaluate plans
            assert mounts[str(settings.plans_dir)]["configMap"]["name"] == "convergence-plans"
        if name in {"ingest", "query", "settlement"}:  # they check tokens
            tokens = mounts[str(settings.resolved_tokens_file.parent)]["secret"]["secretName"]
            assert settings.resolved_tokens_file.name in secrets[tokens]["stringData"]


def test_the_plans_config_map_holds_the_example_plans():
    data = resources("ConfigMap")["convergence-plans"]["data"]
    assert data == {path.name: path.read_text() for path in DEFAULT_PLANS_DIR.glob("*.yaml")}


def test_secrets_hold_placeholders_only():
    secrets = resources("Secret")
    assert all("data" not in secret for secret in secrets.values())  # stringData: what is there can be read
    url = urlsplit(secrets["convergence-database"]["stringData"]["CONVERGENCE_DATABASE_URL"])
    assert url.password == PLACEHOLDER
    assert json.loads(secrets["convergence-tokens"]["stringData"]["tokens.json"]) == {"tokens": []}


def test_services_send_to_their_deployments_named_ports():
    deployments = resources("Deployment")
    for name, service in resources("Service").items():
        [target] = [d for d in deployments.values()
                    if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        for port in service["spec"]["ports"]:
            assert port_number(target, port["targetPort"]) == served_port(target), name


def test_the_processor_loses_one_worker_at_a_time_to_a_disruption():
    [budget] = resources("PodDisruptionBudget").values()
    processor = resources("Deployment")["processor"]
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= processor["spec"]["template"]["metadata"][
        "labels"].items()


def test_keda_scales_the_processor_by_its_groups_lag_on_the_stream_topic():
    """A CRD, so its shape is checked here: the trigger reads the processor's group, topic and broker."""
    [scaled] = resources("ScaledObject").values()
    processor = resources("Deployment")["processor"]
    settings = settings_of(environment(processor))
    spec = scaled["spec"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert spec["scaleTargetRef"] == {"name": processor["metadata"]["name"]}
    assert "replicas" not in processor["spec"]  # KEDA's
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= settings.partitions
    [trigger] = spec["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert metadata["bootstrapServers"] == settings.kafka_bootstrap
    assert metadata["topic"] == settings.topic(STREAM)
    assert metadata["consumerGroup"].startswith(internal_topics_prefix(settings))  # + the broker log's epoch
    assert metadata["offsetResetPolicy"] == "earliest"
    assert all(isinstance(value, str) for value in metadata.values())  # KEDA reads trigger metadata as strings
    assert int(metadata["lagThreshold"]) > 0


def promtool(*args: str | Path) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: apt-get install -y prometheus (.ci/run installs it)"
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, cwd=ALERTS.parent,
                          timeout=60, check=False)


@pytest.mark.parametrize("check", [("check", "config", PROMETHEUS_CONFIG), ("check", "rules", ALERTS),
                                   ("test", "rules", ALERTS.with_name("alerts_test.yml"))],
                         ids=["config", "rules", "alerts fire"])
def test_promtool_accepts_the_prometheus_configuration(check: tuple[str | Path, ...]):
    run = promtool(*check)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_metric_a_panel_or_an_alert_queries_is_declared_by_a_service():
    """The quick check, on the declarations; tests/e2e/test_observability.py reads what a running system serves."""
    for module in sorted(ROOT.glob("services/*/metrics.py")):
        importlib.import_module(f"services.{module.parent.name}.metrics")
    queried = queried_metrics(dashboard_expressions() + alert_expressions())
    assert queried - exported_names(REGISTRY.collect()) - PROMETHEUS_OWN == set()


def test_the_dashboard_has_a_panel_for_each_part_of_the_pipeline():
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    assert all(panel["targets"] and panel["gridPos"]["w"] > 0 for panel in panels)
    assert all("$" not in expression for expression in dashboard_expressions())  # no variable but $__rate_interval
    assert {"convergence_ingest_events_total", "convergence_processor_events_total",
            "convergence_ledger_dead_letters_total", "convergence_processor_partition_lag_messages",
            "convergence_processor_lag_seconds", "convergence_settlement_close_seconds_bucket",
            "convergence_query_request_seconds_bucket"} <= queried_metrics(dashboard_expressions())

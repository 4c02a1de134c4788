"""docker-compose.yml and deploy/Dockerfile, checked by parsing: there is no Docker engine in the test run. The
observability stack's wiring too: Prometheus finds every service where it serves `/metrics`, Grafana its data
source and dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.settings import Settings
from tests.support.deployment import (
    DASHBOARD,
    DOCKERFILE,
    PREFIX,
    PROMETHEUS_CONFIG,
    ROOT,
    command_problem,
    image_environment,
    settings_of,
)

COMPOSE = ROOT / "docker-compose.yml"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)
REQUIRED = re.compile(r"^\$\{\w+:\?[^}]+\}$")  # `${VAR:?message}`: no value unless the environment has one
URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]*)@")
DEFAULT = re.compile(r"\$\{(\w+)(?::?-([^}]*)|:?\?[^}]*)?\}")


def load(path: Path = COMPOSE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def defaulted(value: Any) -> str:
    """A compose value as it is when its variables are unset: `${VAR:-default}` its default, `${VAR:?…}` `x`."""
    return DEFAULT.sub(lambda m: m.group(2) or "x", str(value))


def runs_convergence(service: dict[str, Any]) -> bool:
    return service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"


def unknown_commands(doc: dict[str, Any]) -> list[str]:
    """`service: command` for each Convergence service whose command the Typer app does not have."""
    return [f"{name}: {problem}" for name, service in doc["services"].items()
            if runs_convergence(service) and (problem := command_problem(service.get("command", [])))]


def environments(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {name: {key: str(value) for key, value in (service.get("environment") or {}).items()}
            for name, service in doc["services"].items()}


def unknown_settings(doc: dict[str, Any]) -> list[str]:
    fields = {PREFIX + field.upper() for field in Settings.model_fields}
    return [f"{name}: {key}" for name, env in environments(doc).items()
            for key in env if key.startswith(PREFIX) and key not in fields]


def invalid_settings(doc: dict[str, Any]) -> list[str]:
    """Each Convergence service's settings, defaults substituted, must validate as `Settings`."""
    problems = []
    for name, env in environments(doc).items():
        if not runs_convergence(doc["services"][name]):
            continue
        values = {key.removeprefix(PREFIX).lower(): defaulted(value)
                  for key, value in env.items() if key.startswith(PREFIX)}
        try:
            Settings(_env_file=None, **values)
        except ValueError as error:
            problems.append(f"{name}: {error}")
    return problems


def bad_dependencies(doc: dict[str, Any]) -> list[str]:
    """Every `depends_on` waits for health when the target has a healthcheck, else for start or completion."""
    services = doc["services"]
    problems = []
    for name, service in services.items():
        depends = service.get("depends_on", {})
        if isinstance(depends, list):
            problems.append(f"{name}: depends_on without conditions: {depends}")
            continue
        for target, spec in depends.items():
            if target not in services:
                problems.append(f"{name} -> {target}: no such service")
                continue
            wanted = ({"service_healthy"} if "healthcheck" in services[target]
                      else {"service_started", "service_completed_successfully"})
            if (spec or {}).get("condition") not in wanted:
                problems.append(f"{name} -> {target}: condition {(spec or {}).get('condition')}, want {wanted}")
    return problems


def plaintext_secrets(doc: dict[str, Any]) -> list[str]:
    """Passwords, secrets and tokens must come from the environment, as `${VAR:?message}`."""
    problems = []
    for name, env in environments(doc).items():
        for key, value in env.items():
            secrets = [value] if SECRET_NAME.search(key) and not key.endswith("_FILE") else []
            secrets += URL_PASSWORD.findall(value)
            problems += [f"{name}: {key}" for secret in secrets if not REQUIRED.match(secret)]
    return problems


def served_port(service: dict[str, Any]) -> int:
    """The port a Convergence service serves `/healthz` and `/metrics` on, as its settings (image and compose) say."""
    settings = settings_of({key: defaulted(value) for key, value in service["environment"].items()})
    return settings.processor_web_port if service["command"] == ["processor"] else settings.api_port


def replicas(service: dict[str, Any]) -> int:
    return int(defaulted(service.get("deploy", {}).get("replicas", 1)))


def missing_healthchecks(doc: dict[str, Any]) -> list[str]:
    return [name for name, service in doc["services"].items() if "healthcheck" not in service]


def bad_replicas(doc: dict[str, Any]) -> list[str]:
    """The processor's workers, ingest and query run several replicas; the ledger and the settlement one."""
    wanted = {"processor": range(2, 100), "ingest": range(2, 100), "query": range(2, 100), "ledger": range(1, 2),
              "settlement": range(1, 2)}
    return [f"{name}: {replicas(doc['services'][name])} replicas" for name, allowed in wanted.items()
            if replicas(doc["services"][name]) not in allowed]


def unserved_ports(doc: dict[str, Any]) -> list[str]:
    """A Convergence service publishes the port it serves on, with a host port for each of its replicas."""
    problems = []
    for name, service in doc["services"].items():
        for mapping in service.get("ports", []):
            host, _, container = defaulted(mapping).rpartition(":")
            first, _, last = host.partition("-")
            if int(last or first) - int(first) + 1 < replicas(service):
                problems.append(f"{name}: {host} is fewer host ports than its {replicas(service)} replicas")
            if runs_convergence(service) and int(container) != served_port(service):
                problems.append(f"{name}: publishes {container}, serves {served_port(service)}")
    return problems


def healthcheck_defaults(doc: dict[str, Any]) -> list[str]:
    """A healthcheck that reads a setting from the environment falls back to that setting's own default."""
    fields = Settings.model_fields
    return [f"{name}: {PREFIX}{field} defaults to {default}"
            for name, service in doc["services"].items()
            for field, default in re.findall(rf"os\.environ\.get\('{PREFIX}(\w+)', '([^']*)'\)",
                                             str(service.get("healthcheck", {}).get("test")))
            if default != str(fields[field.lower()].default)]


def unscraped_services(doc: dict[str, Any], prometheus: dict[str, Any]) -> list[str]:
    """Prometheus has a job per Convergence service, named after it, finding every replica (compose's DNS
    answers a service's name with all of its containers) on the port it serves `/metrics` on."""
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    problems = [f"job {name}: no such service" for name in jobs
                if name not in doc["services"] and name != "prometheus"]
    for name, service in doc["services"].items():
        if runs_convergence(service):
            found = [(sd["names"], sd["port"]) for sd in jobs.get(name, {}).get("dns_sd_configs", [])]
            if found != [([name], served_port(service))]:
                problems.append(f"{name}: scraped at {found}, serves {served_port(service)}")
    return problems


def host_path(service: dict[str, Any], inside: str) -> Path | None:
    """The file of this checkout that a service sees at `inside`, through its bind mounts (None: not one)."""
    for volume in service.get("volumes", []):
        source, target = defaulted(volume).split(":")[:2]
        if source.startswith("./") and (inside == target or inside.startswith(target.rstrip("/") + "/")):
            return ROOT / source / inside.removeprefix(target).lstrip("/")
    return None


def missing_mounts(doc: dict[str, Any]) -> list[str]:
    return [f"{name}: {volume}" for name, service in doc["services"].items()
            for volume in service.get("volumes", [])
            if defaulted(volume).startswith("./") and not (ROOT / defaulted(volume).split(":")[0]).exists()]


def test_compose_parses_with_the_expected_services():
    assert {"kafka", "postgres", "ingest", "query", "settlement", "ledger", "processor"} <= set(load()["services"])


@pytest.mark.parametrize("check", [unknown_commands, unknown_settings, invalid_settings, bad_dependencies,
                                   plaintext_secrets, missing_healthchecks, bad_replicas, unserved_ports,
                                   healthcheck_defaults, missing_mounts])
def test_compose_passes(check):
    assert check(load()) == []


def test_prometheus_scrapes_every_replica_of_every_convergence_service():
    assert unscraped_services(load(), yaml.safe_load(PROMETHEUS_CONFIG.read_text())) == []


def test_prometheus_runs_the_configuration_of_this_checkout():
    prometheus = load()["services"]["prometheus"]
    [config] = [flag.split("=", 1)[1] for flag in prometheus["command"] if flag.startswith("--config.file=")]
    assert host_path(prometheus, config) == PROMETHEUS_CONFIG


def test_grafana_is_provisioned_with_the_prometheus_data_source_and_the_dashboard():
    services = load()["services"]
    grafana = services["grafana"]
    sources = host_path(grafana, "/etc/grafana/provisioning/datasources")
    providers = host_path(grafana, "/etc/grafana/provisioning/dashboards")
    assert sources is not None and providers is not None
    [source] = yaml.safe_load((sources / "prometheus.yml").read_text())["datasources"]
    [provider] = yaml.safe_load((providers / "convergence.yml").read_text())["providers"]
    prometheus_port = re.search(r"127\.0\.0\.1:(\d+)", str(services["prometheus"]["healthcheck"]["test"]))
    assert prometheus_port and source["url"] == f"http://prometheus:{prometheus_port.group(1)}"
    assert host_path(grafana, provider["options"]["path"]) == DASHBOARD.parent
    assert host_path(grafana, grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]) == DASHBOARD
    panels = json.loads(DASHBOARD.read_text())["panels"]
    used = {panel["datasource"]["uid"] for panel in panels} | {
        target["datasource"]["uid"] for panel in panels for target in panel["targets"]}
    assert used == {source["uid"]}


def test_every_convergence_service_has_a_healthcheck_and_the_shared_broker_and_database():
    for name, service in load()["services"].items():
        if runs_convergence(service):
            env = service["environment"]
            assert "healthcheck" in service, name
            assert env["CONVERGENCE_KAFKA_BOOTSTRAP"] == "kafka:9092", name
            assert env["CONVERGENCE_DATABASE_URL"].startswith("postgresql+asyncpg://"), name
            assert "CONVERGENCE_TOKENS_FILE" in env, name


def test_the_checks_catch_a_broken_compose_file():
    broken = load()
    services = broken["services"]
    services["ingest"]["command"] = ["serve"]
    services["query"]["command"] = ["token"]
    services["ledger"]["environment"] = {**services["ledger"]["environment"], "CONVERGENCE_KAFKA_BROKERS": "x",
                                         "CONVERGENCE_PARTITIONS": "${P:-four}"}
    services["settlement"]["depends_on"] = {"ledger": {"condition": "service_started"}, "nowhere": None}
    services["processor"]["depends_on"] = ["kafka"]
    services["postgres"]["environment"] = {"POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:-postgres}"}
    services["ingest"]["environment"] = {"CONVERGENCE_DATABASE_URL": "postgresql+asyncpg://u:hunter2@db/c"}
    del services["grafana"]["healthcheck"]
    services["settlement"]["deploy"] = {"replicas": 2}
    services["query"]["ports"] = ["8002:8000"]
    services["ingest"]["ports"] = ["8001-8002:8080"]
    services["processor"]["healthcheck"]["test"] = ["CMD", "os.environ.get('CONVERGENCE_PROCESSOR_WEB_PORT', '8080')"]
    services["prometheus"]["volumes"] = ["./deploy/nowhere:/etc/prometheus:ro"]
    assert unknown_commands(broken) == ["ingest: serve", "query: ['token'] names no command"]
    assert unknown_settings(broken) == ["ledger: CONVERGENCE_KAFKA_BROKERS"]
    assert [problem.split(":")[0] for problem in invalid_settings(broken)] == ["ledger"]
    assert len(bad_dependencies(broken)) == 3
    assert plaintext_secrets(broken) == ["postgres: POSTGRES_PASSWORD", "ingest: CONVERGENCE_DATABASE_URL"]
    assert missing_healthchecks(broken) == ["grafana"]
    assert bad_replicas(broken) == ["settlement: 2 replicas"]
    assert unserved_ports(broken) == ["ingest: publishes 8080, serves 8000",
                                      "query: 8002 is fewer host ports than its 2 replicas",
                                      "settlement: 8003 is fewer host ports than its 2 replicas"]
    assert healthcheck_defaults(broken) == ["processor: CONVERGENCE_PROCESSOR_WEB_PORT defaults to 8080"]
    assert missing_mounts(broken) == ["prometheus: ./deploy/nowhere:/etc/prometheus:ro"]
    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    prometheus["scrape_configs"][0]["dns_sd_configs"][0]["port"] = 8000
    prometheus["scrape_configs"].append({"job_name": "kafka-exporter"})
    assert unscraped_services(load(), prometheus) == ["job kafka-exporter: no such service",
                                                      "processor: scraped at [(['processor'], 8000)], serves 6066"]


def test_dockerfile_runs_convergence_as_a_non_root_user_with_the_example_plans():
    text = DOCKERFILE.read_text()
    final = text.split("\nFROM ")[-1]
    assert final.startswith("python:3.11-slim")
    assert 'ENTRYPOINT ["convergence"]' in final
    assert re.search(r"^USER (?!root\b)\S+", final, re.MULTILINE)
    assert "COPY services/default_plans /etc/convergence/plans" in final
    env = image_environment()
    assert env["CONVERGENCE_PLANS_DIR"] == "/etc/convergence/plans"
    assert env["CONVERGENCE_API_HOST"] == "0.0.0.0"
    assert {key.removeprefix(PREFIX).lower() for key in env} <= set(Settings.model_fields)

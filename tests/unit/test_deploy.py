"""docker-compose.yml and deploy/Dockerfile, checked by parsing: there is no Docker engine in the test run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from services.cli import app
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PREFIX = "CONVERGENCE_"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)
REQUIRED = re.compile(r"^\$\{\w+:\?[^}]+\}$")  # `${VAR:?message}`: no value unless the environment has one
URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]*)@")
DEFAULT = re.compile(r"\$\{(\w+)(?::?-([^}]*)|:?\?[^}]*)?\}")


def load(path: Path = COMPOSE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def runs_convergence(service: dict[str, Any]) -> bool:
    return service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"


def unknown_commands(doc: dict[str, Any]) -> list[str]:
    """`service: command` for each Convergence service whose command the Typer app does not have."""
    problems = []
    for name, service in doc["services"].items():
        if not runs_convergence(service):
            continue
        command = typer.main.get_command(app)  # a group's subcommands are in `.commands`, a leaf has none
        for word in service.get("command", []):
            if word not in getattr(command, "commands", {}):
                problems.append(f"{name}: {' '.join(service.get('command', []))}")
                break
            command = command.commands[word]
        else:
            if hasattr(command, "commands"):
                problems.append(f"{name}: {service.get('command')} names no command")
    return problems


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
        values = {key.removeprefix(PREFIX).lower(): DEFAULT.sub(lambda m: m.group(2) or "x", value)
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


def test_compose_parses_with_the_expected_services():
    assert {"kafka", "postgres", "ingest", "query", "settlement", "ledger", "processor"} <= set(load()["services"])


@pytest.mark.parametrize("check", [unknown_commands, unknown_settings, invalid_settings, bad_dependencies,
                                   plaintext_secrets])
def test_compose_passes(check):
    assert check(load()) == []


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
    assert unknown_commands(broken) == ["ingest: serve", "query: ['token'] names no command"]
    assert unknown_settings(broken) == ["ledger: CONVERGENCE_KAFKA_BROKERS"]
    assert [problem.split(":")[0] for problem in invalid_settings(broken)] == ["ledger"]
    assert len(bad_dependencies(broken)) == 3
    assert plaintext_secrets(broken) == ["postgres: POSTGRES_PASSWORD", "ingest: CONVERGENCE_DATABASE_URL"]


def test_dockerfile_runs_convergence_as_a_non_root_user_with_the_example_plans():
    text = DOCKERFILE.read_text()
    final = text.split("\nFROM ")[-1]
    assert final.startswith("python:3.11-slim")
    assert 'ENTRYPOINT ["convergence"]' in final
    assert re.search(r"^USER (?!root\b)\S+", final, re.MULTILINE)
    assert "COPY services/default_plans /etc/convergence/plans" in final
    env = dict(re.findall(r"(CONVERGENCE_\w+)=(\S+)", final))
    assert env["CONVERGENCE_PLANS_DIR"] == "/etc/convergence/plans"
    assert env["CONVERGENCE_API_HOST"] == "0.0.0.0"
    assert {key.removeprefix(PREFIX).lower() for key in env} <= set(Settings.model_fields)

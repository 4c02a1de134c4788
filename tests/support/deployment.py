"""What the deployment files (compose, Kubernetes, Prometheus, Grafana) are checked against: the `convergence`
commands, the `Settings` fields, the image's environment and the metrics the services export."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import promql_parser
import typer
import yaml
from prometheus_client.metrics_core import Metric

from services.cli import app
from services.settings import Settings

__all__ = ["ALERTS", "DASHBOARD", "DEPLOY", "DOCKERFILE", "PREFIX", "PROMETHEUS_CONFIG", "PROMETHEUS_OWN", "ROOT",
           "alert_expressions", "command_problem", "dashboard_expressions", "exported_names", "image_environment",
           "queried_metrics", "settings_of"]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "convergence.json"
PREFIX = "CONVERGENCE_"
PROMETHEUS_OWN = {"up"}
"""Series Prometheus makes for each target it scrapes, not the services."""
RATE_INTERVAL = "1m"
"""What Grafana's `$__rate_interval` stands for when a panel's query is parsed or run outside Grafana."""
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "summary": ("_count", "_sum", "_created"), "info": ("_info",)}


def command_problem(words: Sequence[str]) -> str | None:
    """None when `convergence WORDS` runs a command of the Typer app; else what is wrong with WORDS."""
    command = typer.main.get_command(app)  # a group's subcommands are in `.commands`, a leaf has none
    for word in words:
        if word not in getattr(command, "commands", {}):
            return " ".join(words)
        command = command.commands[word]
    return f"{list(words)} names no command" if hasattr(command, "commands") else None


def image_environment() -> dict[str, str]:
    """The `CONVERGENCE_*` variables deploy/Dockerfile's final image sets."""
    final = DOCKERFILE.read_text().split("\nFROM ")[-1]
    return dict(re.findall(r"(CONVERGENCE_\w+)=(\S+)", final))


def settings_of(environment: Mapping[str, str]) -> Settings:
    """The settings a container of the image with `environment` builds (ValueError when they are invalid); the
    environment of this test process plays no part."""
    merged = {**image_environment(), **environment}
    return Settings.model_validate({key.removeprefix(PREFIX).lower(): value for key, value in merged.items()
                                    if key.startswith(PREFIX)})


def dashboard_expressions() -> list[str]:
    """The PromQL of every panel of the Grafana dashboard, `$__rate_interval` substituted."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"].replace("$__rate_interval", RATE_INTERVAL) for panel in panels
            for target in panel["targets"]]


def alert_expressions() -> list[str]:
    """The PromQL of every alert rule."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def queried_metrics(expressions: Iterable[str]) -> set[str]:
    """The metric names the `expressions` select."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    for expression in expressions:
        promql_parser.walk(promql_parser.parse(expression), visit)
    return names


def exported_names(families: Iterable[Metric]) -> set[str]:
    """Every series name `families` can export (a histogram's `_bucket`, `_sum`, … included), samples or not yet."""
    names: set[str] = set()
    for family in families:
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names

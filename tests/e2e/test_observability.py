"""The observability stack against a running `convergence up`: every metric a dashboard panel or an alert queries is
served, and a real Prometheus (Debian's package) scrapes every target, evaluates every alert rule and runs every
panel's query without an error. One system and one Prometheus serve every test here."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from services.broker.embedded import free_port
from services.plan_files import DEFAULT_PLANS_DIR
from services.settings import Settings
from tests.support.deployment import (
    ALERTS,
    PROMETHEUS_OWN,
    alert_expressions,
    dashboard_expressions,
    exported_names,
    queried_metrics,
)
from tests.support.events import raw_event
from tests.support.system import System, running_system

pytestmark = pytest.mark.e2e

WORKERS = 2
SCRAPE_INTERVAL = "1s"
READY_TIMEOUT_S = 60.0


def metrics_urls(system: System) -> list[str]:
    """The `/metrics` of the API and of each processor worker (worker i on the web port + i)."""
    first = int(system.env["CONVERGENCE_PROCESSOR_WEB_PORT"])
    return [f"{system.base_url}/metrics",
            *(f"http://127.0.0.1:{first + number}/metrics" for number in range(WORKERS))]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with running_system(tmp_path_factory.mktemp("observed"), DEFAULT_PLANS_DIR, workers=WORKERS) as running:
        yield running


def scrape_config(system: System) -> dict[str, Any]:
    """deploy/prometheus's rules, with static targets at this system's ports instead of compose's DNS names."""
    api, *workers = (url.removeprefix("http://").removesuffix("/metrics") for url in metrics_urls(system))
    return {"global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL,
                       "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": "convergence", "static_configs": [{"targets": [api]}]},
                               {"job_name": "processor", "static_configs": [{"targets": workers}]}]}


def until(what: str, check, timeout_s: float = READY_TIMEOUT_S) -> Any:
    """Poll `check()` until it returns something true; fail with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout_s:g} s")


@pytest.fixture(scope="module")
def prometheus(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: apt-get install -y prometheus (.ci/run installs it)"
    tmp = tmp_path_factory.mktemp("prometheus")
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(system)))
    address = f"127.0.0.1:{free_port()}"
    with (tmp / "prometheus.log").open("wb") as log:
        process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                                    f"--web.listen-address={address}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://{address}", timeout=10) as client:
            until("Prometheus ready", lambda: _answers(client, "/-/ready") and process.poll() is None)
            yield client
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.HTTPError:
        return False


def test_every_metric_a_panel_or_an_alert_queries_is_served(system: System):
    served: set[str] = set()
    for url in metrics_urls(system):
        response = httpx.get(url, timeout=10)
        response.raise_for_status()
        served |= exported_names(text_string_to_metric_families(response.text))
    assert queried_metrics(dashboard_expressions() + alert_expressions()) - served - PROMETHEUS_OWN == set()


def test_the_processor_reports_the_lag_of_each_partition_it_folds(system: System):
    sales = [raw_event("sale.closed", "2026-03-05", order_id=f"o-{n}", customer_id=f"c-{n}", amount="100.00",
                       currency="USD", credits=[{"party_id": f"ae-{n % 5}", "share": "1"}]) for n in range(40)]
    with system.client() as client:
        posted = client.post("/v1/events", json=sales, headers={"Content-Type": "application/cloudevents-batch+json"})
    assert posted.status_code == 202, posted.text

    def caught_up() -> bool:
        """Every partition's lag is reported by one worker, the one that holds it, and is 0."""
        lags = sorted((int(sample.labels["partition"]), sample.value) for url in metrics_urls(system)[1:]
                      for family in text_string_to_metric_families(httpx.get(url, timeout=10).text)
                      for sample in family.samples if sample.name == "convergence_processor_partition_lag_messages")
        return lags == [(number, 0.0) for number in range(Settings.model_fields["partitions"].default)]

    until("every partition's lag reported and caught up", caught_up)


def test_prometheus_finds_every_target_up(prometheus: httpx.Client):
    def all_up() -> list[dict] | None:
        targets = prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
        return targets if len(targets) == 1 + WORKERS and all(t["health"] == "up" for t in targets) else None

    targets = until("every target up", all_up)
    assert {target["labels"]["job"] for target in targets} == {"convergence", "processor"}


def test_every_alert_rule_evaluates_without_an_error(prometheus: httpx.Client):
    def evaluated() -> list[dict] | None:
        rules = [rule for group in prometheus.get("/api/v1/rules").json()["data"]["groups"]
                 for rule in group["rules"]]
        return rules if rules and all(rule["health"] != "unknown" for rule in rules) else None

    rules = until("every rule evaluated", evaluated)
    assert len(rules) == len(alert_expressions())
    assert {rule["name"]: rule.get("lastError", "") for rule in rules if rule["health"] != "ok"} == {}


def test_every_dashboard_query_runs(prometheus: httpx.Client):
    failed = {}
    for expression in dashboard_expressions():
        answer = prometheus.get("/api/v1/query", params={"query": expression}).json()
        if answer["status"] != "success":
            failed[expression] = answer.get("error")
    assert failed == {}

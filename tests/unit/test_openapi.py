"""The OpenAPI document is exact (SPEC §6): formats on parameters, the error body on every error status."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from services.api import create_api
from services.plans import PlansInForce
from services.settings import Settings
from shared.periods import PERIOD_PATTERN

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("openapi"), _env_file=None)
    return create_api(settings, PlansInForce.load(settings.plans_dir)).openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def is_error_body(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    """`{"error": {"code", "message"}}` required, or a union of such schemas."""
    schema = resolve(document, schema)
    if "anyOf" in schema:
        return all(is_error_body(document, branch) for branch in schema["anyOf"])
    detail = resolve(document, schema.get("properties", {}).get("error", {}))
    return "error" in schema.get("required", []) and {"code", "message"} <= set(detail.get("required", []))


def test_every_period_parameter_declares_the_period_pattern(document: dict[str, Any]) -> None:
    periods = [(method, path, parameter) for method, path, operation in operations(document)
               for parameter in operation.get("parameters", []) if parameter["name"] == "period"]
    assert {path for _, path, p in periods if p["in"] == "path"} == {
        path for path in document["paths"] if "{period}" in path}
    assert len(periods) > len(document["paths"]) / 2
    for method, path, parameter in periods:
        schema = parameter["schema"]
        patterns = [branch.get("pattern") for branch in schema.get("anyOf", [schema]) if branch.get("type") == "string"]
        assert patterns == [PERIOD_PATTERN], (method, path, schema)


def test_every_error_status_declares_the_error_body(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")) or path == "/healthz":
                continue
            content = response.get("content", {})
            assert list(content) == ["application/json"], (method, path, status)
            assert is_error_body(document, content["application/json"]["schema"]), (method, path, status)


def test_fastapis_own_validation_error_schema_is_replaced_by_the_error_body(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        if operation.get("parameters"):
            assert "422" in operation["responses"], (method, path)


def test_every_operation_behind_a_token_declares_401_and_403(document: dict[str, Any]) -> None:
    secured = [(method, path, operation) for method, path, operation in operations(document)
               if operation.get("security")]
    assert len(secured) == len(operations(document)) - 2  # all but /healthz and /metrics
    for method, path, operation in secured:
        assert {"401", "403"} <= set(operation["responses"]), (method, path)
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], (method, path)


def test_health_metrics_and_csv_declare_their_bodies(document: dict[str, Any]) -> None:
    health = document["paths"]["/healthz"]["get"]["responses"]
    assert set(health) == {"200", "503"}
    for response in health.values():
        schema = resolve(document, response["content"]["application/json"]["schema"])
        assert set(schema["required"]) == {"status", "checks"}
        assert schema["properties"]["checks"]["additionalProperties"]["pattern"] == r"^(ok|failing(: .+)?)$"
    assert list(document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == [CONTENT_TYPE_PLAIN_0_0_4]
    assert CONTENT_TYPE_PLAIN_0_0_4.startswith("text/plain; version=0.0.4")
    csv = document["paths"]["/v1/settlements/{period}/payouts.csv"]["get"]["responses"]["200"]
    assert list(csv["content"]) == ["text/csv"]


def test_posting_events_declares_every_refusal_of_the_http_binding(document: dict[str, Any]) -> None:
    responses = document["paths"]["/v1/events"]["post"]["responses"]
    assert set(responses) == {"202", "400", "401", "403", "413", "415", "422", "503"}
    invalid = resolve(document, responses["422"]["content"]["application/json"]["schema"])
    assert "errors" in invalid["required"]


def test_a_period_out_of_a_datetimes_range_is_not_a_period() -> None:
    from shared.periods import Period
    assert str(Period.parse("0001-01")) == "0001-01"
    assert str(Period.parse("9999-Q3").end.date()) == "9999-10-01"
    for text in ("0000-01", "0000-Q1", "9999-12", "9999-Q4", "2026-03\n", "２０２６-03", "٢٠٢٦-03"):
        with pytest.raises(ValueError):
            Period.parse(text)


def test_the_documented_pattern_is_the_one_periods_parse() -> None:
    import re
    pattern = re.compile(PERIOD_PATTERN)
    assert pattern.match("2026-03") and pattern.match("2026-Q4")
    assert not pattern.match("2026-13") and not pattern.match("2026-Q5") and not pattern.match("26-03")

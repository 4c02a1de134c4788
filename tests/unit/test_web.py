"""Shared HTTP plumbing: every error in one format, health checks, metrics."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.web import ApiError, add_health_check, install_error_handlers, ops_router


def client(*checks: bool) -> httpx.AsyncClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(ops_router)
    for number, healthy in enumerate(checks):
        async def check(healthy: bool = healthy) -> bool:
            return healthy
        add_health_check(app, f"check-{number}", check)

    @app.get("/items/{number}")
    async def item(number: int) -> dict[str, int]:
        if number == 409:
            raise ApiError(409, "already closed", extra={"period": "2026-03"})
        if number == 500:
            raise RuntimeError("boom")
        return {"number": number}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_errors_share_one_format_with_the_right_status() -> None:
    async with client() as http:
        conflict = await http.get("/items/409")
        missing = await http.get("/nowhere")
        invalid = await http.get("/items/abc")
        crashed = await http.get("/items/500")
    assert conflict.status_code == 409
    assert conflict.json() == {"error": {"code": "conflict", "message": "already closed"},
                               "period": "2026-03"}
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (422, "validation_error")
    assert "path.number" in invalid.json()["error"]["message"]
    assert crashed.json() == {"error": {"code": "internal", "message": "internal server error"}}


async def test_healthz_is_503_while_any_check_fails() -> None:
    async with client(True, True) as healthy, client(True, False) as sick:
        ok, failing = await healthy.get("/healthz"), await sick.get("/healthz")
    assert (ok.status_code, ok.json()["status"]) == (200, "ok")
    assert failing.status_code == 503
    assert failing.json()["checks"] == {"check-0": "ok", "check-1": "failing"}


async def test_metrics_are_prometheus_text() -> None:
    async with client() as http:
        response = await http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert "python_info" in response.text

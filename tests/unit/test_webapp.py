"""What the web app is served and what it reads: the shell and its files, and the query reads made for its pages
(earnings explained line by line, a party's last periods, a manager's team, the parties), in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.api import create_api
from services.plans import PlansInForce
from services.query.app import create_app
from services.settings import Settings
from services.webapp.router import PAGES, webapp_router
from tests.unit.test_query_routes import query_app, replica


@pytest.fixture
async def shell() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(webapp_router())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


@pytest.fixture
async def http(tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(auth=False, data_dir=tmp_path)
    transport = httpx.ASGITransport(app=query_app(settings, replica(settings)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_the_whole_api_and_the_query_service_alone_both_serve_the_app_outside_the_openapi(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    plans = PlansInForce.load(settings.plans_dir)
    for app in (create_api(settings, plans), create_app(settings, plans)):  # not started: the shell needs nothing
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            assert [(await client.get(path)).status_code for path in ("/", "/ops", "/static/app.css")] == [200] * 3
        assert {path for path in app.openapi()["paths"] if not path.startswith("/v1/")} == {"/healthz", "/metrics"}


async def test_every_page_path_serves_the_same_shell_without_a_token(shell: httpx.AsyncClient) -> None:
    pages = [await shell.get(path.replace("{party_id}", "ae-1").replace("{scorecard}", "ae-card")
                             .replace("{period}", "2026-03")) for path in PAGES]
    assert {page.status_code for page in pages} == {200} and len({page.text for page in pages}) == 1
    assert "cvg_" not in pages[0].text and '<script type="module" src="/static/js/app.js">' in pages[0].text
    assert pages[0].headers["content-security-policy"].startswith("default-src 'self'")


async def test_only_the_apps_own_files_are_served(shell: httpx.AsyncClient) -> None:
    script = await shell.get("/static/js/app.js")
    licence = await shell.get("/static/vendor/uplot/LICENSE")
    assert (script.status_code, script.headers["content-type"]) == (200, "text/javascript; charset=utf-8")
    assert licence.status_code == 200 and "MIT" in licence.text
    for path in ("/static/../router.py", "/static/%2e%2e/router.py", "/static/index.html", "/static/nothing.js"):
        assert (await shell.get(path)).status_code == 404, path


async def test_earnings_explain_each_line_with_its_band_and_the_next_one(http: httpx.AsyncClient) -> None:
    body = (await http.get("/v1/parties/ae-2/earnings")).json()
    # ae-2: net 250 on a quota of 1 000, the first of two bands at 10 %; fee 0.01 % of revenue 250
    assert (body["period"], body["kind"], body["totals"]) == ("2026-03", "workforce", {"USD": "25.02"})
    commission, fee = body["lines"]
    assert (commission["amount"], commission["base"], commission["measures"]) == (
        "25.00", "250", {"net_revenue@period": "250", "attainment": "0.250000"})
    assert commission["explanation"] | {"next": None} == {
        "type": "tiered_rate", "base": "net_revenue", "rate": "0.100000", "band": 1, "bands": 2, "gate": None,
        "conditions": [], "factor": None, "cap": None, "capped": False, "uncapped": "25.00", "level": None,
        "next": None}
    assert commission["explanation"]["next"] == {"measure": "net_revenue", "window": "period", "value": "250",
                                                 "at": "1000", "needed": "750", "beyond": True, "rate": "0.200000",
                                                 "level": None}
    assert (fee["amount"], fee["explanation"]["type"], fee["explanation"]["rate"]) == ("0.02", "rate", "0.000100")


async def test_history_gives_the_score_and_earnings_of_each_period_oldest_first(http: httpx.AsyncClient) -> None:
    body = (await http.get("/v1/parties/ae-1/history", params={"periods": 3})).json()
    assert body["scorecard"] == "ae-card"
    assert [(p["period"], p["score"], p["totals"]) for p in body["periods"]] == [
        ("2026-01", "0.00", {"USD": "0.00", "PTS": "0"}), ("2026-02", "37.50", {"USD": "0.00", "PTS": "0"}),
        ("2026-03", "116.25", {"USD": "110.12", "PTS": "375"})]
    assert (await http.get("/v1/parties/ae-1/history", params={"period": "0001-02", "periods": 36})).json()[
        "periods"][0]["period"] == "0001-01"  # nothing before the first period there is


async def test_a_team_lists_each_report_with_the_days_it_reported(http: httpx.AsyncClient) -> None:
    body = (await http.get("/v1/parties/mgr-1/team")).json()
    assert [(m["party_id"], m["name"], m["reports_now"], m["spans"]) for m in body["members"]] == [
        ("ae-1", "Ada", True, [{"first_day": None, "last_day": None}])]
    assert (await http.get("/v1/parties/ae-2/team")).json()["members"] == []


async def test_parties_page_through_in_id_order_of_one_kind(http: httpx.AsyncClient) -> None:
    first = (await http.get("/v1/parties", params={"kind": "workforce", "limit": 2})).json()
    rest = (await http.get("/v1/parties", params={"kind": "workforce", "after": first["next_after"]})).json()
    assert [p["party_id"] for p in first["parties"]] == ["ae-1", "ae-2"]
    assert [p["party_id"] for p in rest["parties"]] == ["ae-3", "ae-4", "mgr-1", "svc-1"] and rest["next_after"] is None
    assert [p["party_id"] for p in (await http.get("/v1/parties", params={"kind": "partner"})).json()["parties"]] == [
        "p-1"]

"""The query API over a read model filled in-process with the measures-topic records of a hand-made fold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.auth import create_token
from services.query.deps import get_now
from services.query.read_model import ReadModel
from services.query.routes import router
from services.records import MEASURE_KINDS, record_message
from services.settings import Settings
from services.web import add_health_check, install_error_handlers, ops_router
from shared.events import Event
from shared.fold import Fold
from shared.snapshot import record_keys
from tests.support.events import registered, reversal, sale, survey
from tests.support.folds import fold_of
from tests.support.plans import plan_set

NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)

TEAM_OVERRIDE = """
plan: team-override
applies_to: {kind: workforce, role: manager}
period: month
components:
  - {name: override, type: override, base: net_revenue, rate: 0.1}
"""

PLANS = plan_set("""
plan: ae-test
applies_to: {kind: workforce, role: account_executive}
period: month
currency: USD
quota: 1000
components:
  - {name: commission, type: tiered_rate, base: net_revenue, tiers: [{upto: 1.0, rate: 0.1}, {rate: 0.2}]}
  - {name: fee, type: rate, base: revenue, rate: 0.0001}
""", """
plan: ae-points
applies_to: {parties: [ae-1]}
period: month
currency: PTS
components:
  - {name: points, type: points, base: revenue, per_unit: 0.3}
""", """
plan: partner-q
applies_to: {kind: partner}
period: quarter
components:
  - {name: rebate, type: rate, base: revenue, rate: 0.01}
""", TEAM_OVERRIDE, """
scorecard: ae-card
applies_to: {kind: workforce, role: account_executive}
metrics:
  - {measure: net_revenue, window: period, target: 1000, weight: 3}
  - {measure: nps, window: 90d, target: 50, weight: 1}
cap: 1.5
""")

EVENTS = [
    registered("ae-1", role="account_executive", manager_id="mgr-1", name="Ada"),
    registered("ae-2", role="account_executive"),
    registered("ae-3", role="account_executive"),
    registered("ae-4", role="account_executive"),
    registered("svc-1", role="service_agent"),
    registered("mgr-1", role="manager"),
    sale("o-1", "2026-03-03", "1000.00", customer="c-1"),
    sale("o-2", "2026-03-10", "500.00", {"ae-1": "0.5", "ae-2": "0.5"}, customer="c-2", partner_id="p-1"),
    reversal("o-1", "2026-03-12", "200.00"),
    survey("ae-1", "2026-02-10", customer="c-3", nps=10),
]


def replica(settings: Settings) -> ReadModel:
    """A read model holding exactly what the processor would publish for `EVENTS`."""
    source = fold_of(EVENTS)
    model = ReadModel(settings, PLANS)
    for key in record_keys(source):
        if key[0] in MEASURE_KINDS:
            model.apply(*record_message(source, key))
    return model


def publish(source: Fold, model: ReadModel, *events: Event) -> None:
    """Fold `events` into `source` and apply the party and relationship records they changed to `model`, as the
    processor publishes them."""
    source.changed = set()
    for event in events:
        source.apply(event)
    for key in sorted(source.changed):
        if key[0] in MEASURE_KINDS:
            model.apply(*record_message(source, key))


def query_app(settings: Settings, model: ReadModel) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings
    app.state.read_model = model
    install_error_handlers(app)
    app.include_router(ops_router)
    app.include_router(router)
    app.dependency_overrides[get_now] = lambda: NOW
    return app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(auth=False, data_dir=tmp_path)


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=query_app(settings, replica(settings)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_party_shows_its_registration_plans_and_scorecards(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/parties/ae-1")
    assert response.status_code == 200
    hashes = {plan.plan: plan.hash for plan in PLANS.plans}
    body = response.json()
    [registration] = body.pop("registrations")
    assert registration.pop("id").startswith("t-")  # numbered in the order the tests made their events
    assert registration == {"effective_from": "2025-01-01", "event_time": "2025-01-01T12:00:00Z", "source": "test",
                            "kind": "workforce", "role": "account_executive", "manager_id": "mgr-1", "tier": None,
                            "name": "Ada"}
    assert body == {
        "party_id": "ae-1", "kind": "workforce", "role": "account_executive", "manager_id": "mgr-1",
        "tier": None, "name": "Ada", "scorecards": ["ae-card"],
        "plans": [{"plan": "ae-test", "period": "month", "currency": "USD", "hash": hashes["ae-test"]},
                  {"plan": "ae-points", "period": "month", "currency": "PTS", "hash": hashes["ae-points"]}]}


async def test_inferred_party_has_its_kind_and_no_registration(http: httpx.AsyncClient) -> None:
    body = (await http.get("/v1/parties/p-1")).json()
    assert (body["kind"], body["role"], body["plans"][0]["plan"], body["scorecards"]) == (
        "partner", None, "partner-q", [])


async def test_scorecard_scores_and_pays_as_of_now_with_totals_per_currency(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/scorecards/ae-1")
    assert response.status_code == 200
    body = response.json()
    # revenue 1000 + 250 = 1250, reversed 200 -> net 1050; nps 100 over 90d (one promoter in February)
    assert (body["period"], body["as_of"], body["scorecard"]) == ("2026-03", "2026-03-20T12:00:00Z", "ae-card")
    assert body["metrics"] == [
        {"measure": "net_revenue", "window": "period", "value": "1050", "target": "1000", "weight": "3",
         "attainment": "1.050000"},
        {"measure": "nps", "window": "90d", "value": "100", "target": "50", "weight": "1", "attainment": "1.500000"}]
    assert body["score"] == "116.25"  # 100 × (3 × 1.05 + 1 × 1.5) / 4
    assert body["earnings"] == {
        "total": None, "currency": None, "totals": {"USD": "110.12", "PTS": "375"},
        "lines": [{"plan": "ae-test", "component": "commission", "currency": "USD", "amount": "110.00"},
                  {"plan": "ae-test", "component": "fee", "currency": "USD", "amount": "0.12"},  # 0.125 half-even
                  {"plan": "ae-points", "component": "points", "currency": "PTS", "amount": "375"}]}


async def test_scorecards_follow_new_records_of_the_party_its_reports_and_the_plans(settings: Settings) -> None:
    source, model = fold_of(EVENTS, Fold(track_changes=True)), replica(settings)
    transport = httpx.ASGITransport(app=query_app(settings, model))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:

        async def totals() -> list[dict]:
            return [(await http.get(f"/v1/scorecards/{party}")).json()["earnings"]["totals"]
                    for party in ("ae-1", "mgr-1")]

        assert await totals() == [{"USD": "110.12", "PTS": "375"}, {"USD": "105.00"}]  # mgr-1: 10% of ae-1's 1050
        publish(source, model, sale("o-9", "2026-03-15", "100.00"))
        assert await totals() == [{"USD": "130.14", "PTS": "405"}, {"USD": "115.00"}]  # net 1150
        publish(source, model, registered("ae-2", role="account_executive", manager_id="mgr-1", time="2025-02-01"))
        assert (await totals())[1] == {"USD": "140.00"}  # ae-2's 250 joins the team
        publish(source, model, registered("ae-1", role="account_executive", manager_id="mgr-2", time="2025-02-01"))
        assert (await totals())[1] == {"USD": "25.00"}  # ae-1 leaves it
        model.plans = plan_set(TEAM_OVERRIDE.replace("rate: 0.1", "rate: 0.2"))
        assert (await totals())[1] == {"USD": "50.00"}


async def test_scorecard_of_one_currency_names_its_total(http: httpx.AsyncClient) -> None:
    earnings = (await http.get("/v1/scorecards/ae-2")).json()["earnings"]
    # net 250: commission 25.00, fee 0.025 -> 0.02
    assert (earnings["total"], earnings["currency"], earnings["totals"]) == ("25.02", "USD", {"USD": "25.02"})


async def test_scorecard_of_a_closed_period_is_as_of_its_end(http: httpx.AsyncClient) -> None:
    body = (await http.get("/v1/scorecards/ae-1", params={"period": "2026-02"})).json()
    assert (body["as_of"], body["metrics"][0]["value"], body["earnings"]["totals"]) == (
        "2026-03-01T00:00:00Z", "0", {"USD": "0.00", "PTS": "0"})


async def test_scorecard_period_defaults_to_the_kind_of_the_party_plans(http: httpx.AsyncClient) -> None:
    partner = (await http.get("/v1/scorecards/p-1")).json()
    agent = (await http.get("/v1/scorecards/svc-1")).json()
    assert (partner["period"], partner["earnings"]["lines"][0]["amount"]) == ("2026-Q1", "5.00")
    assert (partner["score"], partner["metrics"]) == (None, [])
    assert (agent["period"], agent["earnings"]) == (
        "2026-03", {"total": "0.00", "currency": "USD", "totals": {"USD": "0.00"}, "lines": []})


async def test_party_measures_roll_up_its_relationships_or_its_team(http: httpx.AsyncClient) -> None:
    own = (await http.get("/v1/parties/ae-1/measures", params={"window": "90d"})).json()
    team = (await http.get("/v1/parties/mgr-1/measures", params={"scope": "team"})).json()
    assert (own["period"], own["window"], own["scope"], own["events"]) == ("2026-03", "90d", "self", 4)
    assert {name: own["measures"][name] for name in ("revenue", "net_revenue", "deals", "nps")} == {
        "revenue": "1250", "net_revenue": "1050", "deals": "2", "nps": "100"}
    assert (team["measures"]["net_revenue"], team["events"]) == ("1050", 3)  # ae-1 is mgr-1's only report


async def test_relationship_measures_follow_the_window(http: httpx.AsyncClient) -> None:
    sold = (await http.get("/v1/relationships/ae-1/c-1")).json()
    surveyed = [(await http.get("/v1/relationships/ae-1/c-3", params={"window": window})).json()
                for window in ("period", "90d")]
    assert (sold["period"], sold["window"], sold["events"]) == ("2026-03", "period", 2)
    assert {name: sold["measures"][name] for name in ("revenue", "reversed", "net_revenue", "deals", "nps")} == {
        "revenue": "1000", "reversed": "200", "net_revenue": "800", "deals": "1", "nps": None}
    assert [body["measures"]["nps"] for body in surveyed] == [None, "100"]


async def test_relationships_page_through_counterparties_in_id_order(http: httpx.AsyncClient) -> None:
    first = (await http.get("/v1/relationships/ae-1", params={"limit": 2})).json()
    second = (await http.get("/v1/relationships/ae-1", params={"limit": 2, "cursor": first["next"]})).json()
    assert [r["counterparty_id"] for r in first["relationships"]] == ["c-1", "c-2"]
    assert [r["counterparty_id"] for r in second["relationships"]] == ["c-3"]
    assert second["next"] is None
    assert first["relationships"][1]["measures"]["revenue"] == "250"  # half of o-2


async def test_leaderboard_ranks_by_score_then_party_id(http: httpx.AsyncClient) -> None:
    body = (await http.get("/v1/leaderboards/ae-card", params={"limit": 3})).json()
    # ae-2: 100 × 3 × 0.25 / 4; ae-3 and ae-4 tie at 0
    assert (body["scorecard"], body["period"], body["as_of"]) == ("ae-card", "2026-03", "2026-03-20T12:00:00Z")
    assert body["entries"] == [{"rank": 1, "party_id": "ae-1", "score": "116.25"},
                               {"rank": 2, "party_id": "ae-2", "score": "18.75"},
                               {"rank": 3, "party_id": "ae-3", "score": "0.00"}]


@pytest.mark.parametrize(("path", "status"), [
    ("/v1/parties/nobody", 404),
    ("/v1/parties/nobody/measures", 404),
    ("/v1/parties/ae-1/measures?scope=everyone", 422),
    ("/v1/scorecards/nobody", 404),
    ("/v1/relationships/ae-1/c-9", 404),
    ("/v1/relationships/nobody", 404),
    ("/v1/leaderboards/no-card", 404),
    ("/v1/scorecards/ae-1?period=2026-13", 422),
    ("/v1/relationships/ae-1?window=7d", 422),
    ("/v1/leaderboards/ae-card?limit=0", 422),
    ("/v1/relationships/ae-1?cursor=%FF", 422),  # not even base64
    ("/v1/relationships/ae-1?cursor=_w==", 400),  # base64, but of no counterparty id (not UTF-8)
])
async def test_bad_requests_answer_in_the_error_format(http: httpx.AsyncClient, path: str, status: int) -> None:
    response = await http.get(path)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message"}


async def test_reads_need_the_scorecards_read_scope(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    reader = create_token(settings.resolved_tokens_file, ["scorecards:read"])
    writer = create_token(settings.resolved_tokens_file, ["events:write"])
    transport = httpx.ASGITransport(app=query_app(settings, replica(settings)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        statuses = [(await client.get("/v1/parties/ae-1", headers=headers)).status_code for headers in (
            {}, {"Authorization": f"Bearer {writer}"}, {"Authorization": f"Bearer {reader}"})]
    assert statuses == [401, 403, 200]


async def test_health_fails_until_the_read_model_has_caught_up(settings: Settings) -> None:
    model = replica(settings)
    app = query_app(settings, model)
    add_health_check(app, "measures", model.healthy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/healthz")
    assert (response.status_code, response.json()["checks"]) == (503, {"measures": "failing"})

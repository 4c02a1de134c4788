"""Plans re-read while the services run (SPEC §4): a file edited on disk, or `POST /v1/plans/reload`, changes
live earnings and the next close without a restart; a directory that does not validate is refused and the
plans in force stay. Real Tansu broker; the close runs on a real SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.api import create_api
from services.auth import SCOPES, create_token
from services.plan_files import directory_hash, load_plans, read_plan_files
from services.plans import FILE_WATCH, PlansInForce
from services.query.app import create_app
from services.query.deps import get_now
from services.settings import Settings
from services.store.audit import AuditEntry
from tests.integration.test_query import publish
from tests.support.events import raw_event, registered, sale
from tests.support.folds import fold_of

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)
TIMEOUT_S = 15
T = TypeVar("T")


def flat(rate: str, effective: str = "") -> str:
    """A plan paying `rate` × net revenue to the workforce, in the versions' range `effective` if given."""
    return f"""
plan: ae-flat
{effective}
applies_to: {{kind: workforce}}
components:
  - {{name: commission, type: rate, base: net_revenue, rate: {rate}}}
"""


@pytest.fixture
def plans_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "plans"
    directory.mkdir()
    (directory / "ae.yaml").write_text(flat("0.1"))
    return directory


def bearer(settings: Settings, *scopes: str, name: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(settings.resolved_tokens_file, scopes, name=name)}"}


async def until(read: Callable[[], Awaitable[T]], holds: Callable[[T], object]) -> T:
    """Poll `read()` until what it gives satisfies `holds`."""
    async with asyncio.timeout(TIMEOUT_S):
        while not holds(value := await read()):
            await asyncio.sleep(0.05)
    return value


@asynccontextmanager
async def running(app: FastAPI, headers: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://test",
                                                                   headers=headers) as client:
        yield client


@pytest.fixture
async def query(broker_settings: Settings, plans_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The query service alone on `plans_dir` (clock pinned to NOW), as a token with every scope, with ae-1's
    1 000.00 of sales in 2026-03 published to its measures topic."""
    producer = AIOKafkaProducer(bootstrap_servers=broker_settings.resolved_kafka_bootstrap)
    await producer.start()
    try:
        await publish(producer, broker_settings, fold_of([registered("ae-1"), sale("o-1", "2026-03-03", "1000.00")]))
    finally:
        await producer.stop()
    app = create_app(broker_settings, PlansInForce.load(plans_dir))
    app.dependency_overrides[get_now] = lambda: NOW
    async with running(app, bearer(broker_settings, *SCOPES)) as client:
        await until(lambda: earnings(client), lambda total: total is not None)
        yield client


async def earnings(client: httpx.AsyncClient) -> str | None:
    response = await client.get("/v1/scorecards/ae-1")
    return response.json()["earnings"]["total"] if response.status_code == 200 else None


async def test_an_edited_plan_file_changes_live_earnings_without_a_restart(
        query: httpx.AsyncClient, plans_dir: Path) -> None:
    assert await earnings(query) == "100.00"
    (plans_dir / "ae.yaml").write_text(flat("0.25"))
    assert await until(lambda: earnings(query), lambda total: total != "100.00") == "250.00"
    listed = (await query.get("/v1/plans")).json()
    assert listed["directory_hash"] == directory_hash(read_plan_files(plans_dir))


async def test_a_broken_file_is_refused_with_its_errors_and_the_plans_in_force_stay(
        query: httpx.AsyncClient, plans_dir: Path) -> None:
    before = (await query.get("/v1/plans")).json()
    assert (await query.get("/v1/plans/errors")).json() == {"refused_at": None, "errors": []}
    (plans_dir / "broken.yaml").write_text("plan: broken\ncomponents: []\n")

    refused = await until(lambda: query.get("/v1/plans/errors"), lambda response: response.json()["errors"])
    assert refused.json()["refused_at"] is not None
    assert any("broken.yaml" in error and "applies_to" in error for error in refused.json()["errors"])
    assert (await query.get("/v1/plans")).json() == before
    assert await earnings(query) == "100.00"

    again = await query.post("/v1/plans/reload")
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "plans_invalid"
    assert any("broken.yaml" in error for error in again.json()["errors"])
    assert (await query.get("/v1/plans")).json() == before

    (plans_dir / "broken.yaml").unlink()
    fixed = await query.post("/v1/plans/reload")
    assert fixed.status_code == 200
    assert fixed.json()["directory_hash"] == before["directory_hash"]
    assert (await query.get("/v1/plans/errors")).json() == {"refused_at": None, "errors": []}


async def test_the_plans_in_force_list_each_version_with_its_range_hash_and_time(
        query: httpx.AsyncClient, plans_dir: Path) -> None:
    (plans_dir / "ae.yaml").write_text(flat("0.1", "effective: {to: 2026-02}") + "---" +
                                       flat("0.2", "effective: {from: 2026-03}"))
    first = await query.post("/v1/plans/reload")
    assert first.status_code == 200
    hashes = {str(plan.effective): plan.hash for plan in load_plans(plans_dir).plans}
    versions = first.json()["plans"]
    assert [(v["plan"], v["effective"], v["hash"]) for v in versions] == [
        ("ae-flat", {"from": None, "to": "2026-02"}, hashes["… to 2026-02"]),
        ("ae-flat", {"from": "2026-03", "to": None}, hashes["2026-03 to …"])]
    assert versions[0]["applies_to"] == {"kind": "workforce", "role": None, "tier": None, "parties": None}
    assert first.json()["scorecards"] == []
    assert await earnings(query) == "200.00"  # 2026-03 is paid by the version from 2026-03

    (plans_dir / "ae.yaml").write_text(flat("0.1", "effective: {to: 2026-02}") + "---" +
                                       flat("0.3", "effective: {from: 2026-03}"))
    second = (await query.post("/v1/plans/reload")).json()["plans"]
    assert second[0] == versions[0]  # unchanged: same hash, same time it took effect
    assert second[1]["hash"] != versions[1]["hash"]
    assert second[1]["took_effect_at"] > versions[1]["took_effect_at"]


async def test_reading_the_plans_needs_a_valid_token_and_reloading_them_plans_write(
        query: httpx.AsyncClient, broker_settings: Settings) -> None:
    reader = bearer(broker_settings, "scorecards:read", name="bob")
    assert (await query.get("/v1/plans", headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await query.get("/v1/plans", headers=reader)).status_code == 200
    assert (await query.get("/v1/plans/errors", headers=reader)).status_code == 200
    refused = await query.post("/v1/plans/reload", headers=reader)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")


@pytest.fixture
async def api(broker_settings: Settings, plans_dir: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The whole API of `convergence up` (no processor) on `plans_dir`, as alice with every scope."""
    app = create_api(broker_settings, PlansInForce.load(plans_dir))
    async with running(app, bearer(broker_settings, *SCOPES)) as client:
        await until(lambda: client.get("/healthz"), lambda response: response.status_code == 200)
        yield app, client


async def reloads(app: FastAPI) -> list[AuditEntry]:
    """The audit log's entries of plan reloads, oldest first."""
    return [entry for entry in await app.state.plans.audit.entries() if entry.action.startswith("plans.")]


def statement_lines(settlement: dict, party_id: str = "ae-1") -> list[tuple[str, str, str | None]]:
    [statement] = [s for s in settlement["statements"] if s["party_id"] == party_id]
    return [(line["kind"], line["amount"], line.get("corrects")) for line in statement["lines"]]


async def test_a_close_on_a_directory_that_does_not_validate_uses_the_plans_in_force(
        api: tuple[FastAPI, httpx.AsyncClient], plans_dir: Path) -> None:
    app, client = api
    events = [raw_event("party.registered", "2026-01-01", party_id="ae-1", kind="workforce"),
              raw_event("sale.closed", "2026-10-10", order_id="o-1", customer_id="c-1", amount="1000.00",
                        currency="USD", credits=[{"party_id": "ae-1", "share": "1"}])]
    assert (await client.post("/v1/events", json=events)).status_code == 202
    in_force = load_plans(plans_dir).plans[0].hash
    (plans_dir / "ae.yaml").write_text(flat("-1"))
    closed = (await client.post("/v1/periods/2026-10/close")).json()
    assert statement_lines(closed) == [("payout", "100.00", None)]
    assert (await client.get("/v1/settlements/2026-10")).json()["plan_hashes"] == {"ae-flat": in_force}
    assert [(entry.actor, entry.action) for entry in await reloads(app)] == [(FILE_WATCH, "plans.reload_refused")]


async def test_a_reload_changes_the_next_close_and_never_a_closed_one(
        api: tuple[FastAPI, httpx.AsyncClient], plans_dir: Path) -> None:
    app, client = api
    events = [raw_event("party.registered", "2026-01-01", party_id="ae-1", kind="workforce"),
              *(raw_event("sale.closed", day, order_id=order, customer_id="c-1", amount=amount, currency="USD",
                          credits=[{"party_id": "ae-1", "share": "1"}])
                for order, day, amount in (("o-1", "2026-10-10", "1000.00"), ("o-2", "2026-11-10", "2000.00")))]
    assert (await client.post("/v1/events", json=events)).status_code == 202
    first = await client.post("/v1/periods/2026-10/close")
    assert statement_lines(first.json()) == [("payout", "100.00", None)]
    frozen = (await client.get("/v1/settlements/2026-10")).json()
    old_hash = load_plans(plans_dir).plans[0].hash

    (plans_dir / "ae.yaml").write_text(flat("0.2"))  # closed right away: the close reads the directory first
    second = (await client.post("/v1/periods/2026-11/close")).json()
    # the edited version covers 2026-10 too: a restatement, paid as an adjustment in 2026-11 (SPEC §5.2)
    assert statement_lines(second) == [("payout", "400.00", None), ("adjustment", "100.00", "2026-10")]
    new_hash = load_plans(plans_dir).plans[0].hash
    closed = (await client.get("/v1/settlements/2026-11")).json()
    assert (frozen["plan_hashes"], closed["plan_hashes"]) == ({"ae-flat": old_hash}, {"ae-flat": new_hash})
    assert (await client.get("/v1/settlements/2026-10")).json() == frozen
    # one PlansInForce: the query evaluates what the close used
    assert app.state.read_model.plans is app.state.plans.current
    assert [plan.hash for plan in app.state.plans.current.plans] == [new_hash]


async def test_every_reload_accepted_or_refused_is_audited(
        api: tuple[FastAPI, httpx.AsyncClient], plans_dir: Path) -> None:
    app, client = api
    (plans_dir / "ae.yaml").write_text(flat("0.2"))
    accepted = (await client.post("/v1/plans/reload")).json()
    (plans_dir / "ae.yaml").write_text(flat("-1"))
    reload, refusal = await until(lambda: reloads(app), lambda found: len(found) == 2)
    assert [(e.actor, e.action, e.content_hash) for e in (reload, refusal)] == [
        ("alice", "plans.reload", accepted["directory_hash"]),
        (FILE_WATCH, "plans.reload_refused", directory_hash(read_plan_files(plans_dir)))]
    assert reload.detail == {"versions": [{"plan": "ae-flat", "effective": {"from": None, "to": None},
                                           "hash": accepted["plans"][0]["hash"]}]}
    assert any("must not be negative" in error for error in refusal.detail["errors"])

"""Controls around money (SPEC §5.1, §5.4): close only ended periods, approvals by distinct names, rejection,
the audit log and payroll pulls per currency, on the settlement service with a real SQLite database and broker.

The ledger is written directly (as `POST /v1/events` does) before the service starts; its clock is pinned to
`NOW`, in May 2026: March and April have ended, May has not.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from services.auth import create_token, grant_of
from services.cli import app as cli
from services.ledger.rows import event_row
from services.plans import PlansInForce
from services.settings import Settings
from services.settlement.app import create_app
from services.store.audit import AuditLog
from services.store.database import opened_database
from services.store.ledger import LedgerStore
from services.store.settlements import SettlementStore
from shared.events import parse_event
from shared.settlement import settlement_from_data, settlement_to_data
from tests.support.events import raw_event

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 10, 12, tzinfo=UTC)
PLANS = {"reps.yaml": """
plan: reps
applies_to: {kind: workforce}
period: month
currency: USD
quota: 1000
components:
  - {name: commission, type: tiered_rate, base: net_revenue, mode: marginal, tiers: [{rate: 0.1}]}
clawback: {window_days: 90}
""", "loyalty.yaml": """
plan: loyalty
applies_to: {kind: customer}
period: month
currency: PTS
components:
  - name: points
    type: points
    base: net_revenue
    per_unit: 0.1
    tiers: {measure: revenue, window: 365d, levels: [{min: 0, name: bronze, multiplier: 1}]}
"""}


def _sale(order_id: str, time: str, amount: str, party: str, customer: str) -> dict:
    return raw_event("sale.closed", time, id=order_id, order_id=order_id, customer_id=customer, amount=amount,
                     currency="USD", credits=[{"party_id": party, "share": "1"}])


# ae-1 sells 1 000.00 to cust-1 in March (commission 100.00 USD; 100 points for cust-1) and loses it in April
# (a clawback of 100.00 with nothing else paid: a negative April total); ae-2 sells 500.00 to cust-2 in March.
EVENTS = [raw_event("party.registered", "2025-01-01", party_id="ae-1", kind="workforce"),
          raw_event("party.registered", "2025-01-01", party_id="ae-2", kind="workforce"),
          raw_event("party.registered", "2025-01-01", party_id="cust-1", kind="customer"),
          _sale("o-1", "2026-03-10", "1000.00", "ae-1", "cust-1"),
          _sale("o-2", "2026-03-12", "500.00", "ae-2", "cust-2"),
          raw_event("sale.reversed", "2026-04-05", order_id="o-1")]
SCOPES = {"alice": ["periods:close", "settlements:read", "settlements:approve", "audit:read"],
          "bob": ["settlements:read", "settlements:approve"],
          "carol": ["settlements:read", "settlements:approve"],
          "payroll": ["settlements:read"]}


class Service:
    """The running settlement service, and a bearer token per name of `SCOPES`."""

    def __init__(self, http: httpx.AsyncClient, tokens: dict[str, str], settings: Settings) -> None:
        self.http, self.tokens, self.settings = http, tokens, settings

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    async def post(self, path: str, name: str, **kwargs) -> httpx.Response:
        return await self.http.post(path, headers=self.auth(name), **kwargs)

    async def get(self, path: str, name: str = "alice", **kwargs) -> httpx.Response:
        return await self.http.get(path, headers=self.auth(name), **kwargs)

    async def close(self, period: str, name: str = "alice") -> dict:
        response = await self.post(f"/v1/periods/{period}/close", name)
        assert response.status_code == 200, response.text
        return response.json()

    async def settlement(self, period: str) -> dict:
        response = await self.get(f"/v1/settlements/{period}")
        assert response.status_code == 200, response.text
        return response.json()

    async def audit(self, **params: object) -> list[dict]:
        response = await self.get("/v1/audit", params=params)
        assert response.status_code == 200, response.text
        return response.json()["items"]


@asynccontextmanager
async def running(settings: Settings, tmp_path: Path, approvers: int = 1) -> AsyncIterator[Service]:
    settings = settings.model_copy(update={"approvers": approvers, "close_catch_up_timeout_s": 10.0})
    async with opened_database(settings.resolved_database_url) as sessions:
        await LedgerStore(sessions).append([event_row(parse_event(raw), json.dumps(raw), settings) for raw in EVENTS])
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    for name, text in PLANS.items():
        (plans_dir / name).write_text(text)
    tokens = {name: create_token(settings.resolved_tokens_file, scopes, name=name) for name, scopes in SCOPES.items()}
    app = create_app(settings, PlansInForce.load(plans_dir))
    app.state.clock = lambda: NOW
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport,
                                                                   base_url="http://test") as http:
        yield Service(http, tokens, settings)


@pytest.fixture
async def service(broker_settings: Settings, tmp_path: Path) -> AsyncIterator[Service]:
    async with running(broker_settings, tmp_path) as service:
        yield service


@pytest.fixture
async def two_approvers(broker_settings: Settings, tmp_path: Path) -> AsyncIterator[Service]:
    async with running(broker_settings, tmp_path, approvers=2) as service:
        yield service


async def frozen_hash(settings: Settings, period: str) -> str:
    """The sha256 of the frozen settlement's canonical JSON, as an auditor recomputes it."""
    async with opened_database(settings.resolved_database_url) as sessions:
        record = await SettlementStore(sessions).get(period)
    assert record is not None
    data = settlement_to_data(settlement_from_data(json.loads(record.body)))
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return f"sha256:{hashlib.sha256(canonical.encode()).hexdigest()}"


def party_row(party_id: str, kind: str, currency: str, total: str) -> dict[str, str]:
    """A per-party row of a payroll CSV with a total that is not negative."""
    return {"party_id": party_id, "kind": kind, "currency": currency, "total": total, "negative": "false"}


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_a_period_cannot_be_closed_before_it_ends(service: Service) -> None:
    for period in ("2026-05", "2026-Q2", "2027-01"):
        refused = await service.post(f"/v1/periods/{period}/close", "alice")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "period_not_ended"
        assert (await service.get(f"/v1/settlements/{period}")).status_code == 404
    assert await service.audit() == []
    assert (await service.close("2026-04"))["status"] == "closed"  # ended: closes (the first close of its kind)


async def test_with_two_approvers_the_closer_may_not_approve_and_a_name_counts_once(two_approvers: Service) -> None:
    service = two_approvers
    await service.close("2026-03", "alice")

    refused = await service.post("/v1/settlements/2026-03/approve", "alice")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "separation_of_duties"
    once = (await service.post("/v1/settlements/2026-03/approve", "bob")).json()
    twice = (await service.post("/v1/settlements/2026-03/approve", "bob")).json()
    assert (once["status"], twice["status"]) == ("closed", "closed")
    assert once["approvals"] == twice["approvals"] == [{"name": "bob", "at": NOW.isoformat()}]
    assert (once["approvals_required"], once["closed_by"]) == (2, "alice")

    approved = await service.post("/v1/settlements/2026-03/approve", "carol")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert [a["name"] for a in (await service.settlement("2026-03"))["approvals"]] == ["bob", "carol"]
    assert [e["actor"] for e in await service.audit(period="2026-03") if e["action"] == "approve"] == ["bob", "carol"]


async def test_a_rejected_period_stays_frozen_and_goes_through_approvals_again(two_approvers: Service) -> None:
    service = two_approvers
    closed = await service.close("2026-03", "alice")
    await service.post("/v1/settlements/2026-03/approve", "bob")

    rejected = await service.post("/v1/settlements/2026-03/reject", "carol", json={"reason": "ae-2's quota is wrong"})
    assert rejected.status_code == 200, rejected.text
    body = rejected.json()
    assert (body["status"], body["approvals"], body["rejection_reason"], body["rejected_by"]) == (
        "rejected", [], "ae-2's quota is wrong", "carol")
    assert body["statements"] == closed["statements"] and body["totals"] == closed["totals"]

    pulled = await service.get("/v1/settlements/2026-03/payouts.csv", "payroll")
    assert pulled.headers["X-Settlement-Status"] == "rejected" and "X-Export-Id" not in pulled.headers
    again = (await service.post("/v1/settlements/2026-03/approve", "bob")).json()
    assert (again["status"], [a["name"] for a in again["approvals"]]) == ("rejected", ["bob"])
    approved = (await service.post("/v1/settlements/2026-03/approve", "carol")).json()
    assert (approved["status"], approved["rejection_reason"]) == ("approved", None)
    assert approved["statements"] == closed["statements"]

    exported = await service.get("/v1/settlements/2026-03/payouts.csv", "payroll")
    assert exported.headers["X-Settlement-Status"] == "exported"
    too_late = await service.post("/v1/settlements/2026-03/reject", "carol", json={"reason": "too late"})
    assert too_late.status_code == 409, too_late.text
    assert (await service.settlement("2026-03"))["status"] == "exported"


async def test_a_rejection_needs_a_reason(service: Service) -> None:
    await service.close("2026-03")
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        refused = await service.post("/v1/settlements/2026-03/reject", "bob", json=body)
        assert refused.status_code == 422, (body, refused.text)
    assert (await service.settlement("2026-03"))["status"] == "closed"
    unknown = await service.post("/v1/settlements/2026-04/reject", "bob", json={"reason": "not closed"})
    assert unknown.status_code == 404, unknown.text


async def test_every_change_of_state_is_audited_with_the_hash_of_the_frozen_statements(service: Service) -> None:
    await service.close("2026-03", "alice")
    await service.close("2026-03", "alice")  # closing again changes nothing: not a change of state
    await service.post("/v1/settlements/2026-03/reject", "bob", json={"reason": "check the clawbacks"})
    await service.post("/v1/settlements/2026-03/approve", "bob")
    await service.post("/v1/settlements/2026-03/approve", "bob")  # approved already
    pulled = await service.get("/v1/settlements/2026-03/payouts.csv", "payroll")
    json_pull = (await service.get("/v1/settlements/2026-03/payouts.json", "payroll")).json()

    entries = await service.audit(period="2026-03")
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("close", "alice"), ("reject", "bob"), ("approve", "bob"), ("export", "payroll")]
    digest = await frozen_hash(service.settings, "2026-03")
    assert {e["content_hash"] for e in entries} == {digest}
    assert all(datetime.fromisoformat(e["at"]) == NOW and e["period"] == "2026-03" for e in entries)
    assert entries[0]["id"] < entries[1]["id"] < entries[2]["id"] < entries[3]["id"]
    assert entries[1]["detail"] == {"reason": "check the clawbacks"}
    assert entries[3]["detail"] == {"export_id": pulled.headers["X-Export-Id"]}
    assert json_pull["export_id"] == pulled.headers["X-Export-Id"] and json_pull["status"] == "exported"


async def test_the_audit_log_lists_by_period_and_pages_with_after_and_limit(service: Service) -> None:
    for period in ("2026-03", "2026-04"):
        await service.close(period)
        await service.post(f"/v1/settlements/{period}/approve", "bob")
    everything = await service.audit()
    assert [(e["action"], e["period"]) for e in everything] == [
        ("close", "2026-03"), ("approve", "2026-03"), ("close", "2026-04"), ("approve", "2026-04")]
    assert [e["action"] for e in await service.audit(period="2026-04")] == ["close", "approve"]

    first = (await service.get("/v1/audit", params={"limit": 3})).json()
    assert [e["id"] for e in first["items"]] == [e["id"] for e in everything[:3]]
    rest = (await service.get("/v1/audit", params={"after": first["next_after"], "limit": 3})).json()
    assert (rest["items"], rest["next_after"]) == (everything[3:], None)
    assert await service.audit(period="2026-04", after=everything[2]["id"]) == everything[3:]

    assert (await service.get("/v1/audit", params={"limit": 1001})).status_code == 422
    assert (await service.get("/v1/audit", "bob")).status_code == 403  # without audit:read
    for method in ("DELETE", "PUT", "PATCH", "POST"):
        response = await service.http.request(method, "/v1/audit", headers=service.auth("alice"))
        assert response.status_code == 405, (method, response.text)
    assert await service.audit() == everything


async def test_concurrent_approvals_by_distinct_names_all_count_once(database_url: str) -> None:
    names = [f"approver-{n}" for n in range(6)]
    async with opened_database(database_url) as sessions:
        store = SettlementStore(sessions)
        await store.save("2026-03", NOW, {}, '{"statements": []}', 0, closed_by="alice")
        await asyncio.gather(*(store.approve("2026-03", NOW, by=name, required=len(names))
                               for name in names + names))
        record = await store.get("2026-03")
        entries = await AuditLog(sessions).entries(period="2026-03")
    assert record is not None and record.status == "approved"
    assert sorted(approval.name for approval in record.approvals) == names
    assert sorted(e.actor for e in entries if e.action == "approve") == names
    assert [e.detail["approvals"] for e in entries if e.action == "approve"] == list(range(1, len(names) + 1))


def test_creating_a_token_from_the_command_line_is_audited(tmp_path: Path) -> None:
    env = {"CONVERGENCE_DATA_DIR": str(tmp_path), "CONVERGENCE_DATABASE_URL": None, "CONVERGENCE_TOKENS_FILE": None}
    settings = Settings(data_dir=tmp_path, _env_file=None)

    created = CliRunner().invoke(cli, ["token", "create", "--name", "dave", "--scopes", "audit:read,settlements:read"],
                                 env=env)
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert grant_of(settings.resolved_tokens_file, token) == ("dave", {"audit:read", "settlements:read"})

    async def entries() -> list:
        async with opened_database(settings.resolved_database_url) as sessions:
            return await AuditLog(sessions).entries()

    [entry] = asyncio.run(entries())
    assert (entry.action, entry.period, entry.detail) == (
        "token.create", None, {"name": "dave", "scopes": ["audit:read", "settlements:read"]})
    assert entry.actor.startswith("cli")

    unreachable = {**env, "CONVERGENCE_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}
    refused = CliRunner().invoke(cli, ["token", "create", "--name", "erin", "--scopes", "audit:read"],
                                 env=unreachable)
    assert refused.exit_code == 1 and "no token created" in refused.output, refused.output
    names = [t["name"] for t in json.loads(settings.resolved_tokens_file.read_text())["tokens"]]
    assert names == ["dave"]  # a creation that cannot be audited creates nothing


async def test_points_and_money_are_never_in_one_payroll_file(service: Service) -> None:
    await service.close("2026-03")
    money = csv_rows(await service.get("/v1/settlements/2026-03/payouts.csv"))
    points = csv_rows(await service.get("/v1/settlements/2026-03/payouts.csv", params={"currency": "PTS"}))

    assert money == [party_row("ae-1", "workforce", "USD", "100.00"), party_row("ae-2", "workforce", "USD", "50.00")]
    assert points == [party_row("cust-1", "customer", "PTS", "100"), party_row("cust-2", "customer", "PTS", "50")]
    as_json = (await service.get("/v1/settlements/2026-03/payouts.json", params={"currency": "PTS"})).json()
    assert (as_json["period"], as_json["currency"], as_json["status"], as_json["export_id"]) == (
        "2026-03", "PTS", "closed", None)
    assert as_json["rows"] == [{**row, "negative": False} for row in points]
    usd_json = (await service.get("/v1/settlements/2026-03/payouts.json")).json()
    assert {row["currency"] for row in usd_json["rows"]} == {"USD"} and usd_json["currency"] == "USD"
    none = await service.get("/v1/settlements/2026-03/payouts.csv", params={"currency": "EUR"})
    assert none.text == "party_id,kind,currency,total,negative\n"


async def test_detail_lines_has_a_row_per_statement_line_in_the_currency(service: Service) -> None:
    await service.close("2026-03")
    await service.close("2026-04")
    statements = (await service.settlement("2026-04"))["statements"]
    expected = [{"party_id": s["party_id"], "kind": s["kind"], "currency": line["currency"], "plan": line["plan"],
                 "component": line["component"], "line_kind": line["kind"], "corrects": line["corrects"] or "",
                 "amount": line["amount"]}
                for s in statements for line in s["lines"] if line["currency"] == "USD"]

    response = await service.get("/v1/settlements/2026-04/payouts.csv", params={"detail": "lines"})
    assert response.text.splitlines()[0] == "party_id,kind,currency,plan,component,line_kind,corrects,amount"
    assert csv_rows(response) == expected
    assert {"line_kind": "clawback", "amount": "-100.00"}.items() <= expected[1].items()
    as_json = (await service.get("/v1/settlements/2026-04/payouts.json", params={"detail": "lines"})).json()
    assert as_json["rows"] == [{**row, "corrects": row["corrects"] or None} for row in expected]
    points = (await service.get("/v1/settlements/2026-04/payouts.json",
                                params={"detail": "lines", "currency": "PTS"})).json()["rows"]
    assert points and {row["currency"] for row in points} == {"PTS"}


async def test_a_negative_total_is_exported_as_it_is_and_flagged(service: Service) -> None:
    await service.close("2026-03")
    await service.close("2026-04")
    await service.post("/v1/settlements/2026-04/approve", "bob")

    response = await service.get("/v1/settlements/2026-04/payouts.csv", "payroll")
    assert response.headers["X-Settlement-Status"] == "exported" and response.headers["X-Export-Id"]
    assert [(r["party_id"], r["total"], r["negative"]) for r in csv_rows(response)] == [
        ("ae-1", "-100.00", "true"), ("ae-2", "0.00", "false")]
    rows = (await service.get("/v1/settlements/2026-04/payouts.json", "payroll")).json()["rows"]
    assert [(r["party_id"], r["total"], r["negative"]) for r in rows] == [
        ("ae-1", "-100.00", True), ("ae-2", "0.00", False)]

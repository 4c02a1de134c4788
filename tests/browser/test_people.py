"""The pages of the people who are paid, on the small story after its closes: each figure shown is the API's."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import Api, money, number, screenshots, sign_in
from tests.support.live import LIVE_TIMEOUT_S
from tests.support.system import System

pytestmark = pytest.mark.e2e

LIVE_TIMEOUT_MS = LIVE_TIMEOUT_S * 1000


def test_the_people_page_lists_every_party_by_kind(page: Page, system: System, api: Api) -> None:
    sign_in(page, system.token)
    parties = api.get("/v1/parties", limit=1000)["parties"]
    for kind in ("workforce", "partner", "customer"):
        expect(page.locator(f"[data-kind={kind}] a[href^='/parties/']")).to_have_count(
            len([party for party in parties if party["kind"] == kind]))
    page.fill("input[name=filter]", "manager")
    expect(page.locator("[data-kind=workforce] a[href^='/parties/']")).to_have_text(["mgr-0", "mgr-1"])
    page.fill("input[name=filter]", "")
    screenshots(page, "people")


def test_a_reps_page_shows_its_earnings_explained_its_score_and_its_frozen_statements(page: Page, system: System,
                                                                                    api: Api) -> None:
    sign_in(page, system.token, "/parties/ae-1?period=2026-03")
    earned = api.get("/v1/parties/ae-1/earnings", period="2026-03")
    for line in earned["lines"]:
        row = page.locator(f"#earnings tr[data-line='{line['plan']}/{line['component']}']")
        expect(row.locator(".amount")).to_have_text(money(line["amount"], line["currency"]))
    [commission] = [line for line in earned["lines"] if line["component"] == "commission"]
    why = commission["explanation"]
    row = page.locator("#earnings tr[data-line='ae-2026/commission']")
    expect(row).to_contain_text(f"Band {why['band']} of {why['bands']}")
    expect(row.locator("li[data-held]").first).to_have_attribute("data-held", str(why["gate"]["held"]).lower())
    expect(row.locator("li[data-capped]")).to_have_attribute("data-capped", str(why["capped"]).lower())
    expect(page.locator("#earnings [data-testid=earnings-total] [data-currency=USD]")).to_have_text(
        money(earned["totals"]["USD"], "USD"))
    expect(page.locator("[data-testid=score]")).to_have_text(api.get("/v1/scorecards/ae-1", period="2026-03")["score"])

    frozen = api.get("/v1/settlements/2026-01/statements/ae-1")
    january = page.locator("details.statement[data-period='2026-01']")
    expect(january.locator("[data-testid=statement-total] [data-currency=USD]")).to_have_text(
        money(frozen["totals"]["USD"], "USD"))
    january.locator("summary").click()
    [paid] = [line for line in frozen["lines"] if (line["component"], line["kind"]) == ("commission", "payout")]
    line = january.locator("tr[data-line='ae-2026/commission/payout']")
    expect(line.locator(".amount")).to_have_text(money(paid["amount"], paid["currency"]))
    line.locator("button[data-events]").click()
    behind = api.get("/v1/settlements/2026-01/statements/ae-1/events")["lines"]
    [events] = [x["events"] for x in behind if (x["component"], x["kind"]) == ("commission", "payout")]
    expect(january.locator(".events-behind li")).to_have_text([f"{e['source']}/{e['id']}" for e in events])
    expect(page.locator("[data-testid=chart] canvas")).to_be_visible()
    screenshots(page, "party-rep")


def test_a_customers_page_shows_its_loyalty_tier_and_a_partners_its_rebate_and_referral_fee(page: Page, system: System,
                                                                                           api: Api) -> None:
    customers = [party["party_id"] for party in api.get("/v1/parties", kind="customer", limit=1000)["parties"]]
    earnings = (api.get(f"/v1/parties/{customer}/earnings", period="2026-03") for customer in customers)
    customer = next(earned for earned in earnings if any(line["explanation"]["level"] for line in earned["lines"]))
    [points] = [line for line in customer["lines"] if line["explanation"]["type"] == "points"]
    sign_in(page, system.token, f"/parties/{customer['party_id']}?period=2026-03")
    expect(page.locator("[data-testid=loyalty-tier] .value")).to_have_text(points["explanation"]["level"])
    expect(page.locator(f"#earnings tr[data-line='{points['plan']}/points'] .amount")).to_have_text(
        money(points["amount"], "PTS"))
    screenshots(page, "party-customer")

    partner = api.get("/v1/parties/partner-0/earnings", period="2026-03")
    page.goto("/parties/partner-0?period=2026-03")
    for line in partner["lines"]:
        expect(page.locator(f"[data-testid=partner-{line['component']}] .value")).to_have_text(
            money(line["amount"], line["currency"]))
    screenshots(page, "party-partner")


def test_a_managers_page_shows_who_reported_when_the_team_measures_lines_and_leaderboard(page: Page, system: System,
                                                                                       api: Api) -> None:
    sign_in(page, system.token, "/teams/mgr-0?period=2026-03")
    team = api.get("/v1/parties/mgr-0/team")["members"]
    expect(page.locator("#members tr[data-member]")).to_have_count(len(team))
    for member in team:
        row = page.locator(f"#members tr[data-member='{member['party_id']}']")
        expect(row).to_contain_text("reports now" if member["reports_now"] else "now under")
        expect(row.locator(".spans li")).to_have_count(len(member["spans"]))
    measures = api.get("/v1/parties/mgr-0/measures", scope="team", window="period", period="2026-03")["measures"]
    expect(page.locator("[data-testid=team-net_revenue-period]")).to_have_text(number(measures["net_revenue"]))
    earned = api.get("/v1/parties/mgr-0/earnings", period="2026-03")
    for line in earned["lines"]:
        expect(page.locator(f"#team-lines tr[data-line='{line['plan']}/{line['component']}'] .amount")).to_have_text(
            money(line["amount"], line["currency"]))
    board = api.get("/v1/leaderboards/ae-scorecard", period="2026-03", limit=1000)["entries"]
    members = {member["party_id"] for member in team if member["reports_now"]}
    for entry in (entry for entry in board if entry["party_id"] in members):
        expect(page.locator(f"[data-testid=team-score-{entry['party_id']}]")).to_have_text(entry["score"])
    screenshots(page, "team")


def test_a_leaderboard_follows_the_period_chosen(page: Page, system: System, api: Api) -> None:
    sign_in(page, system.token, "/leaderboards/ae-scorecard")
    page.select_option("select[name=period]", "2026-02")
    expect(page).to_have_url(re.compile(r"/leaderboards/ae-scorecard\?period=2026-02$"))
    board = api.get("/v1/leaderboards/ae-scorecard", period="2026-02", limit=100)["entries"]
    expect(page.locator("#board tr[data-party]")).to_have_count(len(board))
    expect(page.locator("#board tr[data-party] td:nth-child(2)")).to_have_text([entry["party_id"] for entry in board])
    for entry in board:
        expect(page.locator(f"[data-testid=score-{entry['party_id']}]")).to_have_text(entry["score"])
    screenshots(page, "leaderboard")


def test_a_page_follows_new_events_without_reloading(page: Page, system: System, api: Api) -> None:
    sign_in(page, system.token, "/parties/ae-3")
    total = page.locator("#earnings [data-testid=earnings-total] [data-currency=USD]")
    before = api.get("/v1/parties/ae-3/earnings")["totals"]["USD"]
    expect(total).to_have_text(money(before, "USD"))
    page.evaluate("window.notReloaded = true")
    sale = {"specversion": "1.0", "id": "browser-live-1", "source": "browser-test", "type": "sale.closed",
            "time": datetime.now(UTC).isoformat(),
            "data": {"order_id": "browser-o-1", "customer_id": "cust-1", "amount": "12500.00", "currency": "USD",
                     "credits": [{"party_id": "ae-3", "share": "1"}]}}
    assert api.post("/v1/events", sale).status_code == 202
    expect(total).not_to_have_text(money(before, "USD"), timeout=LIVE_TIMEOUT_MS)
    expect(total).to_have_text(money(api.get("/v1/parties/ae-3/earnings")["totals"]["USD"], "USD"))
    assert page.evaluate("window.notReloaded") is True

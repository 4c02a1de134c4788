"""Payroll in the browser: the closed periods, a close confirmed first, an approval and a rejection with its reason
(each then in the audit log), and a payroll file pulled from the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import Api, money, screenshots, sign_in
from tests.support.system import System

pytestmark = pytest.mark.e2e


def test_the_payroll_page_lists_every_closed_period_with_its_status_and_totals(page: Page, system: System,
                                                                             api: Api) -> None:
    sign_in(page, system.token, "/settlements")
    items = api.get("/v1/settlements")["items"]
    assert [item["period"] for item in items][:3] == ["2026-01", "2026-02", "2026-03"]
    for item in items:
        assert item["totals"] == api.get(f"/v1/settlements/{item['period']}")["totals"]
        row = page.locator(f"#settlements tr[data-period='{item['period']}']")
        expect(row.locator(".badge")).to_have_text(item["status"])
        for currency, amount in item["totals"].items():
            expect(row.locator(f"[data-currency={currency}]")).to_have_text(money(amount, currency))
    screenshots(page, "payroll")


def test_closing_a_period_asks_for_confirmation_first(page: Page, system: System, api: Api) -> None:
    sign_in(page, system.token, "/settlements")
    expect(page.locator("input[name=period]")).to_have_value("2026-04")  # the month after the last closed one
    dialog = page.locator("#confirm-close")
    page.click("#close button[type=submit]")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert api.client.get("/v1/settlements/2026-04").status_code == 404
    page.click("#close button[type=submit]")
    dialog.get_by_role("button", name="Close 2026-04").click()
    expect(page).to_have_url(f"{system.base_url}/settlements/2026-04")
    expect(page.locator("[data-testid=status] .badge")).to_have_text("closed")
    assert api.get("/v1/settlements/2026-04")["closed_by"] == "admin"


def test_an_approval_made_in_the_page_shows_in_the_audit_log_and_the_first_pull_exports(page: Page, system: System,
                                                                                      api: Api) -> None:
    sign_in(page, system.token, "/settlements/2026-01")
    status = page.locator("[data-testid=status] .badge")
    expect(status).to_have_text("closed")
    settled = api.get("/v1/settlements/2026-01")
    for currency, amount in settled["totals"].items():
        expect(page.locator(f"[data-testid=settlement-totals] [data-currency={currency}]")).to_have_text(
            money(amount, currency))
    page.click("button[name=approve]")
    expect(status).to_have_text("approved")
    expect(page.locator("[data-testid=approvals-table]")).to_contain_text("admin")
    expect(page.locator("#audit tr[data-action=approve]")).to_contain_text("admin")
    entries = api.get("/v1/audit", period="2026-01")["items"]
    assert [(entry["action"], entry["actor"]) for entry in entries][-1] == ("approve", "admin")

    with page.expect_download() as pulled:
        page.click("text=Download payouts.csv")
    expect(status).to_have_text("exported")
    expect(page.locator("#audit tr[data-action=export]")).to_be_visible()
    assert Path(pulled.value.path()).read_text() == api.client.get("/v1/settlements/2026-01/payouts.csv").text
    screenshots(page, "payroll-period")


def test_a_rejection_needs_a_reason_and_shows_with_it(page: Page, system: System, api: Api) -> None:
    sign_in(page, system.token, "/settlements/2026-02")
    reason = page.locator("input[name=reason]")
    page.click("#act button.danger")
    assert reason.evaluate("input => input.validity.valueMissing")  # the form is not sent without a reason
    reason.fill("ae-3's quota is wrong")
    page.click("#act button.danger")
    expect(page.locator("[data-testid=status] .badge")).to_have_text("rejected")
    expect(page.locator("[data-testid=rejection]")).to_contain_text("ae-3's quota is wrong")
    expect(page.locator("#audit tr[data-action=reject]")).to_contain_text("ae-3's quota is wrong")
    assert api.get("/v1/settlements/2026-02")["rejection_reason"] == "ae-3's quota is wrong"

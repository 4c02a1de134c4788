"""Operations in the browser: the health of every part, the plans in force, and a dead letter replayed."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import Api, screenshots, sign_in
from tests.support.system import System

pytestmark = pytest.mark.e2e


def test_the_operations_page_shows_health_and_plans_and_replays_a_dead_letter(page: Page, system: System, api: Api,
                                                                             dead_letter: dict) -> None:
    sign_in(page, system.token, "/ops")
    health = httpx.get(f"{system.base_url}/healthz").json()
    expect(page.locator("[data-testid=health] .badge")).to_have_text(health["status"])
    for part, outcome in health["checks"].items():
        expect(page.locator(f"tr[data-check='{part}'] .badge")).to_have_text(outcome.split(":")[0])
    for plan in api.get("/v1/plans")["plans"]:
        expect(page.locator("#plans code", has_text=plan["hash"][7:19])).to_have_attribute("title", plan["hash"])
    expect(page.locator("[data-testid=plan-errors]")).to_be_visible()
    letter = page.locator(f"tr[data-letter='{dead_letter['id']}']")
    expect(letter).to_contain_text(dead_letter["reason"])
    screenshots(page, "ops")
    letter.locator("button[data-replay]").click()
    expect(letter.locator(".outcome")).to_have_text("accepted")
    again = api.client.post(f"/v1/dead-letters/{dead_letter['id']}/replay")
    assert (again.status_code, again.json()) == (202, {"accepted": 0, "duplicates": 1})

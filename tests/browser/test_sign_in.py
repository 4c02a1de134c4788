"""Signing in with a token: kept in the tab's sessionStorage only, refused when not valid, its scopes respected; and a
page that says so when the API is down."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.pages import Api, Console, money, screenshots, settled, sign_in
from tests.support.system import System

pytestmark = pytest.mark.e2e


def test_the_shell_holds_no_token_and_a_page_without_a_session_shows_the_sign_in(page: Page, system: System) -> None:
    for path in ("/", "/parties/ae-1", "/settlements/2026-01"):
        served = httpx.get(system.base_url + path)
        assert served.status_code == 200 and "cvg_" not in served.text and system.token not in served.text
        assert served.headers["content-security-policy"].startswith("default-src 'self'")
    page.goto("/")
    expect(page.locator("input[name=token]")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    screenshots(page, "sign-in", state="idle")


def test_the_token_stays_in_the_tabs_session_storage_and_never_in_a_url(page: Page, system: System) -> None:
    urls: list[str] = []

    def seen(request: Request) -> None:
        urls.append(request.url)

    page.on("request", seen)
    sign_in(page, system.token, "/parties/ae-1")
    settled(page)
    expect(page).to_have_url(f"{system.base_url}/parties/ae-1")
    assert page.evaluate("sessionStorage.getItem('convergence.token')") == system.token
    assert page.evaluate("localStorage.length") == 0 and page.context.cookies() == []
    assert urls and not [url for url in urls if system.token in url]
    page.click("#sign-out")
    expect(page.locator("input[name=token]")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('convergence.token')") is None


def test_a_token_that_is_not_valid_is_refused(page: Page, console: Console) -> None:
    console.expect_refusals()  # the API's 401
    page.goto("/")
    page.fill("input[name=token]", "cvg_not-a-token")
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#sign-in [role=alert]")).to_have_text("That token is not valid.")
    expect(page.locator("#nav")).to_be_hidden()


def test_a_token_sees_what_its_scopes_allow_and_the_page_says_what_is_missing(page: Page, console: Console,
                                                                            viewer_token: str, api: Api) -> None:
    console.expect_refusals()  # the API's 403s
    sign_in(page, viewer_token, "/parties/ae-1?period=2026-03")
    earned = api.get("/v1/parties/ae-1/earnings", period="2026-03")
    expect(page.locator("#earnings [data-testid=earnings-total] [data-currency=USD]")).to_have_text(
        money(earned["totals"]["USD"], "USD"))
    expect(page.locator("#statements [data-testid=denied]")).to_contain_text("settlements:read")
    page.goto("/settlements")
    expect(page.locator("#settlements [data-testid=denied]")).to_contain_text("settlements:read")
    page.goto("/ops")
    expect(page.locator("#dead-letters [data-testid=denied]")).to_contain_text("events:write")
    expect(page.locator("#health [data-testid=health]")).to_contain_text("ok")


def test_a_page_shows_that_the_api_is_down_keeps_what_it_read_and_recovers(page: Page, console: Console,
                                                                         system: System, api: Api) -> None:
    console.expect_refusals()  # the browser reports each request that found no API
    sign_in(page, system.token, "/parties/ae-1?period=2026-03")
    settled(page)
    total = page.locator("#earnings [data-testid=earnings-total] [data-currency=USD]")
    shown = money(api.get("/v1/parties/ae-1/earnings", period="2026-03")["totals"]["USD"], "USD")
    expect(total).to_have_text(shown)
    page.route("**/v1/**", lambda route: route.abort("connectionrefused"))  # as if nothing listened on the port
    expect(page.locator("#status")).to_have_attribute("data-state", "error")
    expect(page.locator("#status")).to_contain_text("Request failed: the API does not answer")
    expect(page.locator("#earnings")).to_have_class(re.compile(r"\bstale\b"))
    expect(page.locator("#earnings .note")).to_contain_text("Not updated")
    expect(total).to_have_text(shown)
    screenshots(page, "api-down", state="error")
    page.unroute("**/v1/**")
    expect(page.locator("#status")).to_have_attribute("data-state", "ok")
    expect(page.locator("#earnings")).not_to_have_class(re.compile(r"\bstale\b"))

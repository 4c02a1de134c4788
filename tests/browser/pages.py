"""Driving the web app's pages: signing in, waiting for its data, screenshots, and numbers as the app shows them."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.support.scenarios import REPO_ROOT
from tests.support.system import System

__all__ = ["DESKTOP", "PHONE", "Api", "Console", "money", "number", "screenshots", "settled", "sign_in"]

SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
MINUS = "\u2212"
# The one console error a page cannot avoid: the browser's own report of a request the API refused or that failed.
BROWSER_NETWORK_ERROR = re.compile(r"^Failed to load resource: ")


def money(amount: str, currency: str) -> str:
    """An amount as the app shows it: thousands separators, a true minus sign, the currency (points: `pts`)."""
    negative = amount.startswith("-")
    whole, _, fraction = amount.lstrip("-").partition(".")
    grouped = f"{int(whole):,}" + (f".{fraction}" if fraction else "")
    return f"{MINUS if negative else ''}{grouped} {'pts' if currency == 'PTS' else currency}"


def number(text: str) -> str:
    """A measure as the app shows it: grouped, without trailing zeros (`179707.600000` is `179,707.6`)."""
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    return f"{int(whole):,}" + (f".{fraction}" if fraction else "")


class Api:
    """The system's HTTP API with the admin token: what the pages must show."""

    def __init__(self, system: System) -> None:
        self.client = system.client(timeout=60)

    def get(self, path: str, **params: object) -> dict:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: object) -> httpx.Response:
        return self.client.post(path, json=body)


class Console:
    """What a page wrote to its console. None of it may be an error or a warning, except, in a test that expects
    refusals (`expect_refusals`), the browser's own reports of requests the API refused or that failed."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.refusals_expected = False
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(message.text)

    def expect_refusals(self) -> None:
        self.refusals_expected = True

    def unexpected(self) -> list[str]:
        if not self.refusals_expected:
            return self.errors
        return [text for text in self.errors if not BROWSER_NETWORK_ERROR.match(text)]


def sign_in(page: Page, token: str, path: str = "/") -> None:
    """Open `path` and sign in there with `token`."""
    page.goto(path)
    page.fill("input[name=token]", token)
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#nav")).to_be_visible()


def settled(page: Page, state: str = "ok") -> None:
    """Wait until the status bar is in `state` (`ok`: the page's data has been read) and the page drawn (two
    animation frames: a chart resized)."""
    expect(page.locator("#status")).to_have_attribute("data-state", state)
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def screenshots(page: Page, name: str, state: str = "ok") -> None:
    """`build/screenshots/<name>-desktop.png` and `-phone.png`: the whole page at 1280×800 and at 390×844, each
    once the status bar is in `state` (see `settled`)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for size, label in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        settled(page, state)
        page.evaluate("window.scrollTo(0, 0)")  # the sticky bar at the top of the picture, not where a click scrolled
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)

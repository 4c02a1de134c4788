"""Child processes of `convergence up`: started with the resolved settings, restarted if they die."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator

from services.background import running
from services.settings import Settings

__all__ = ["settings_env", "supervised"]

log = logging.getLogger(__name__)
RESTART_DELAYS_S = (1, 2, 5, 10, 30)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that rebuilds `settings` in a child process."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"CONVERGENCE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


async def _keep_running(name: str, args: list[str], env: dict[str, str], procs: list) -> None:
    restarts = 0
    while True:
        process = await asyncio.create_subprocess_exec(sys.executable, *args, env=env)
        procs[:] = [process]
        code = await process.wait()
        delay = RESTART_DELAYS_S[min(restarts, len(RESTART_DELAYS_S) - 1)]
        log.warning("%s exited with %s; restarting in %s s", name, code, delay)
        restarts += 1
        await asyncio.sleep(delay)


@contextlib.asynccontextmanager
async def supervised(name: str, args: list[str], settings: Settings) -> AsyncIterator[None]:
    """Run `python ARGS` with `settings` for as long as the block runs; stop it cleanly on exit."""
    procs: list[asyncio.subprocess.Process] = []
    try:
        async with running(_keep_running(name, args, settings_env(settings), procs), name):
            yield
    finally:
        for process in procs:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()

"""`convergence up`: broker (embedded unless configured), database, every service, supervised on one machine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from contextlib import AsyncExitStack

import uvicorn
from rich.console import Console

from services.api import create_api
from services.auth import create_token, ensure_default_tokens
from services.broker.embedded import embedded_broker
from services.broker.topics import ensure_topics
from services.demo.simulator import Simulator
from services.plan_files import load_plans
from services.settings import Settings
from services.supervisor import supervised

__all__ = ["up"]

console = Console(stderr=True)


async def _serve(settings: Settings, demo: bool) -> None:
    async with AsyncExitStack() as stack:
        if settings.kafka_bootstrap is None:
            bootstrap = await stack.enter_async_context(embedded_broker(settings.embedded_kafka_port))
            settings = settings.model_copy(update={"kafka_bootstrap": bootstrap, "kafka_idempotent_producer": False})
            console.print(f"embedded Kafka-compatible broker (Tansu) listening on [bold]{bootstrap}[/bold]")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        plans = load_plans(settings.plans_dir)
        await ensure_topics(settings)
        token = ensure_default_tokens(settings.resolved_tokens_file)
        if token:  # plain lines, never wrapped: scripts read the token from the line after this one
            print(f"admin token (every scope; stored hashed in {settings.resolved_tokens_file}):", file=sys.stderr)
            print(token, file=sys.stderr, flush=True)
        read_token = create_token(settings.resolved_tokens_file, ["scorecards:read"]) if demo else None
        await stack.enter_async_context(supervised("processor", ["-m", "services.processor"], settings))
        server = uvicorn.Server(uvicorn.Config(create_api(settings, plans, read_token), host=settings.api_host,
                                               port=settings.api_port, log_level="warning"))
        base_url = f"http://{settings.api_host}:{settings.api_port}"
        console.print(f"API on [bold]{base_url}[/bold] (docs: {base_url}/docs); Ctrl-C stops everything")
        tasks = [asyncio.create_task(server.serve(), name="api")]
        if demo:
            console.print(f"live dashboard: [bold]{base_url}/[/bold]")
            tasks.append(asyncio.create_task(_demo(settings, base_url, server), name="demo"))
        try:
            await tasks[0]
        finally:
            for task in tasks[1:]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _demo(settings: Settings, base_url: str, server: uvicorn.Server) -> None:
    while not server.started:
        await asyncio.sleep(0.1)
    token = create_token(settings.resolved_tokens_file, ["events:write"])
    await Simulator(base_url, token).run()


def up(settings: Settings, demo: bool) -> None:
    """Run everything until Ctrl-C, then stop the services, the processor and the broker in order."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, demo))

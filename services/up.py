"""`convergence up`: broker (embedded unless configured), database, every service, supervised on one machine.

The embedded broker and the processor run as child processes, restarted when they die. The embedded
broker keeps its log in memory only: when it dies the processor is stopped first (nothing of its state
may reach the new, empty log), then the broker is started again, its topics and a new identity created,
and the processor started again; the relay then publishes the whole ledger into the new log
(`services.ledger.relay`), and the live state is rebuilt from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from asyncio.subprocess import Process
from contextlib import AsyncExitStack

import uvicorn
from rich.console import Console

from services.api import create_api
from services.auth import create_token, ensure_default_tokens
from services.background import running
from services.broker.embedded import broker_argv, refuse_busy_port, wait_ready
from services.broker.topics import ensure_topics
from services.demo.simulator import Simulator
from services.plan_files import load_plans
from services.settings import Settings
from services.supervisor import Child, settings_env

__all__ = ["up"]

console = Console(stderr=True)
BROKER_START_TIMEOUT_S = 15.0
QUIET_LOGGERS = ("aiokafka",)  # it logs every failed reconnect; the services say once that the broker is away


async def _serve(settings: Settings, demo: bool) -> None:
    async with AsyncExitStack() as stack:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        settings.data_dir.chmod(0o700)
        plans = load_plans(settings.plans_dir)
        embedded = settings.kafka_bootstrap is None
        if embedded:
            refuse_busy_port(settings.embedded_kafka_port)
            settings = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{settings.embedded_kafka_port}",
                                                   "kafka_idempotent_producer": False})
        settings = settings.model_copy(update={
            "processor_health_url": f"http://{settings.api_host}:{settings.processor_web_port}/healthz"})
        processor = Child("processor", [sys.executable, "-m", "services.processor"], settings_env(settings))
        if embedded:
            await processor.hold()  # until the broker is up with its topics
            await stack.enter_async_context(running(_embedded_broker(settings, processor).run(), "broker"))
            console.print("embedded Kafka-compatible broker (Tansu) listening on "
                          f"[bold]{settings.kafka_bootstrap}[/bold]")
        await _topics_ready(settings)
        token = ensure_default_tokens(settings.resolved_tokens_file)
        if token:  # plain lines, never wrapped: scripts read the token from the line after this one
            print(f"admin token (every scope; stored hashed in {settings.resolved_tokens_file}):", file=sys.stderr)
            print(token, file=sys.stderr, flush=True)
        read_token = create_token(settings.resolved_tokens_file, ["scorecards:read"]) if demo else None
        await stack.enter_async_context(running(processor.run(), "processor"))
        server = uvicorn.Server(uvicorn.Config(create_api(settings, plans, read_token), host=settings.api_host,
                                               port=settings.api_port, log_level="warning"))
        base_url = f"http://{settings.api_host}:{settings.api_port}"
        console.print(f"API on [bold]{base_url}[/bold] (docs: {base_url}/docs); Ctrl-C stops everything")
        if demo:
            console.print(f"live dashboard: [bold]{base_url}/[/bold]")
            await stack.enter_async_context(running(_demo(settings, base_url, server), "demo"))
        await server.serve()


def _embedded_broker(settings: Settings, processor: Child) -> Child:
    """The embedded broker as a child: each start creates its topics, then lets the processor run."""
    port = settings.embedded_kafka_port

    async def started(process: Process) -> None:
        await wait_ready(process, port, BROKER_START_TIMEOUT_S)
        await ensure_topics(settings)
        processor.release()

    # Tansu lingers 5 s on SIGTERM while clients are connected; it stops at once on SIGINT
    return Child("broker", broker_argv(port), started=started, exited=processor.hold, stop_signal=signal.SIGINT,
                 output=settings.data_dir / "broker.log")


async def _topics_ready(settings: Settings, timeout_s: float = 60.0) -> None:
    """Wait until the broker has the topics and an identity (the embedded one makes them as it starts)."""
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                await ensure_topics(settings)
                return
            except Exception:  # not up yet
                await asyncio.sleep(0.2)


async def _demo(settings: Settings, base_url: str, server: uvicorn.Server) -> None:
    while not server.started:
        await asyncio.sleep(0.1)
    token = create_token(settings.resolved_tokens_file, ["events:write"])
    await Simulator(base_url, token).run()


def up(settings: Settings, demo: bool) -> None:
    """Run everything until Ctrl-C, then stop the services, the processor and the broker in order."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, demo))

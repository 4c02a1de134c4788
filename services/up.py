"""`convergence up`: broker (embedded unless configured), database, every service, supervised on one machine.

The embedded broker and the processor workers (`CONVERGENCE_PROCESSOR_WORKERS`, one consumer group) run as
child processes, restarted when they die. The embedded broker keeps its log in memory only: when it dies the
processors are stopped first (nothing of their state may reach the new, empty log), then the broker is started
again, its topics and a new identity created, and the processors started again; the relay then publishes the
whole ledger into the new log (`services.ledger.relay`), and the live state is rebuilt from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from asyncio.subprocess import Process
from collections.abc import Iterable
from contextlib import AsyncExitStack

import uvicorn
from rich.console import Console

from services.api import create_api
from services.auth import DEFAULT_TOKEN_NAME, SCOPES, create_audited_token
from services.background import running
from services.broker.embedded import broker_argv, refuse_busy_port, wait_ready
from services.broker.topics import ensure_topics
from services.demo.simulator import Simulator
from services.logs import configure_logging
from services.plans import PlansInForce
from services.settings import Settings
from services.supervisor import Child, settings_env

__all__ = ["up"]

console = Console(stderr=True)
BROKER_START_TIMEOUT_S = 15.0
DEMO_SCOPES = ("scorecards:read", "settlements:read", "audit:read")  # what the demo's people and payroll pages read
QUIET_LOGGERS = ("aiokafka",)  # it logs every failed reconnect; the services say once that the broker is away


async def _serve(settings: Settings, plans: PlansInForce, demo: bool) -> None:
    async with AsyncExitStack() as stack:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        settings.data_dir.chmod(0o700)
        embedded = settings.kafka_bootstrap is None
        if embedded:
            refuse_busy_port(settings.embedded_kafka_port)
            settings = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{settings.embedded_kafka_port}",
                                                   "kafka_idempotent_producer": False})
        ports = [settings.processor_web_port + number for number in range(settings.processor_workers)]
        settings = settings.model_copy(update={
            "processor_health_url": ",".join(f"http://{settings.api_host}:{port}/healthz" for port in ports)})
        processors = Processors([Child(f"processor {number}", [sys.executable, "-m", "services.processor"],
                                       settings_env(settings.model_copy(update={"processor_web_port": port})))
                                 for number, port in enumerate(ports)])
        if embedded:
            await processors.hold()  # until the broker is up with its topics
            await stack.enter_async_context(running(_embedded_broker(settings, processors).run(), "broker"))
            console.print("embedded Kafka-compatible broker (Tansu) listening on "
                          f"[bold]{settings.kafka_bootstrap}[/bold]")
        await _topics_ready(settings)
        token = None if settings.resolved_tokens_file.exists() else await _token(settings, SCOPES, DEFAULT_TOKEN_NAME)
        if token:  # plain lines, never wrapped: scripts read the token from the line after this one
            print(f"admin token (every scope; stored hashed in {settings.resolved_tokens_file}):", file=sys.stderr)
            print(token, file=sys.stderr, flush=True)
        demo_token = await _token(settings, DEMO_SCOPES) if demo else None
        for child in processors.children:
            await stack.enter_async_context(running(child.run(), child.name))
        server = uvicorn.Server(uvicorn.Config(create_api(settings, plans), host=settings.api_host,
                                               port=settings.api_port, log_level="warning",
                                               log_config=None))  # its records: to the root logger's handler
        base_url = f"http://{settings.api_host}:{settings.api_port}"
        console.print(f"API on [bold]{base_url}[/bold] (docs: {base_url}/docs); Ctrl-C stops everything")
        console.print(f"web app: [bold]{base_url}/[/bold] (sign in with a token)")
        if demo:  # plain lines, like the admin token's
            print(f"demo token to sign in with (read-only: {', '.join(DEMO_SCOPES)}):", file=sys.stderr)
            print(demo_token, file=sys.stderr, flush=True)
            await stack.enter_async_context(running(_demo(settings, base_url, server), "demo"))
        await server.serve()


class Processors:
    """The processor workers (`CONVERGENCE_PROCESSOR_WORKERS`), held and released together."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children

    async def hold(self) -> None:
        await asyncio.gather(*(child.hold() for child in self.children))

    def release(self) -> None:
        for child in self.children:
            child.release()


async def _token(settings: Settings, scopes: Iterable[str], name: str | None = None) -> str:
    """A new token, its creation audited as done by `up`."""
    token, _ = await create_audited_token(settings, scopes, name, actor="up")
    return token


def _embedded_broker(settings: Settings, processors: Processors) -> Child:
    """The embedded broker as a child: each start creates its topics, then lets the processors run."""
    port = settings.embedded_kafka_port

    async def started(process: Process) -> None:
        await wait_ready(process, port, BROKER_START_TIMEOUT_S)
        await ensure_topics(settings)
        processors.release()

    # Tansu lingers 5 s on SIGTERM while clients are connected; it stops at once on SIGINT
    return Child("broker", broker_argv(port), started=started, exited=processors.hold, stop_signal=signal.SIGINT,
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
    token = await _token(settings, ["events:write"])
    await Simulator(base_url, token).run()


def up(settings: Settings, plans: PlansInForce, demo: bool) -> None:
    """Run everything on `plans` (their directory watched) until Ctrl-C, then stop the services, the processor
    and the broker in order."""
    configure_logging(settings, "up", logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, plans, demo))

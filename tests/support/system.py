"""The real system under test: `convergence up` in a child process, on free ports, a private data dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.broker.embedded import free_port

__all__ = ["RunningSystem", "running_system"]

READY_TIMEOUT_S = 180
CONVERGENCE = str(Path(sys.executable).with_name("convergence"))


@dataclass
class RunningSystem:
    base_url: str
    token: str
    bootstrap: str
    log: Path
    process: subprocess.Popen

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=120)


def _token_from(log: Path, process: subprocess.Popen, deadline: float) -> str:
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.startswith("admin token") and number + 1 < len(lines):
                return lines[number + 1].strip()
        if process.poll() is not None:
            raise RuntimeError(f"convergence up exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise TimeoutError(f"no admin token printed:\n{log.read_text()[-3000:]}")


def _wait_healthy(base_url: str, process: subprocess.Popen, log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"convergence up exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"not healthy in time:\n{log.read_text()[-3000:]}")


@contextmanager
def running_system(tmp: Path, plans_dir: Path, database_url: str | None = None) -> Iterator[RunningSystem]:
    """Start `convergence up`, wait until `/healthz` answers 200, and stop it with Ctrl-C afterwards."""
    api_port, kafka_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVERGENCE_")}
    env.update({"CONVERGENCE_DATA_DIR": str(tmp / "data"), "CONVERGENCE_PLANS_DIR": str(plans_dir),
                "CONVERGENCE_API_PORT": str(api_port), "CONVERGENCE_EMBEDDED_KAFKA_PORT": str(kafka_port),
                "CONVERGENCE_PROCESSOR_WEB_PORT": str(free_port()),
                "PYTHONUNBUFFERED": "1"})
    if database_url:
        env["CONVERGENCE_DATABASE_URL"] = database_url
    log = tmp / "up.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([CONVERGENCE, "up"], env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    base_url = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        token = _token_from(log, process, deadline)
        _wait_healthy(base_url, process, log, deadline)
        yield RunningSystem(base_url, token, f"127.0.0.1:{kafka_port}", log, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

"""The real system under test: `convergence up` in a child process, on free ports, a private data dir.

`System` can be kill -9'd (its whole process group) and started again on the same ports, data directory and
database, the way an operator restarts a machine after a crash; `running_system` is the plain start-and-stop.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

from services.broker.embedded import free_port

__all__ = ["RunningSystem", "System", "group_members", "running_system"]

READY_TIMEOUT_S = 180
STOP_TIMEOUT_S = 60
GONE_TIMEOUT_S = 15
LOG_TAIL = 3000
CONVERGENCE = str(Path(sys.executable).with_name("convergence"))


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp …
        if fields[0] not in "ZX" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class System:
    """`convergence up` as a process group that can be started, kill -9'd and started again.

    Every start uses the same environment: API, broker and processor ports, data directory (with its tokens
    file), plans and database URL. The admin token is read from the first start's log; later starts find the
    tokens file and print none, and the same token keeps working.
    """

    def __init__(self, tmp: Path, plans_dir: Path, database_url: str | None = None, workers: int = 1) -> None:
        self.tmp = tmp
        api_port, kafka_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{api_port}"
        self.bootstrap = f"127.0.0.1:{kafka_port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONVERGENCE_")}
        self.env.update({"CONVERGENCE_DATA_DIR": str(tmp / "data"), "CONVERGENCE_PLANS_DIR": str(plans_dir),
                         "CONVERGENCE_API_PORT": str(api_port), "CONVERGENCE_EMBEDDED_KAFKA_PORT": str(kafka_port),
                         "CONVERGENCE_PROCESSOR_WEB_PORT": str(_free_ports(workers)),
                         "CONVERGENCE_PROCESSOR_WORKERS": str(workers), "PYTHONUNBUFFERED": "1"})
        if database_url:
            self.env["CONVERGENCE_DATABASE_URL"] = database_url
        self.starts = 0
        self.log = tmp / "up.log"
        self.process: subprocess.Popen | None = None
        self._token: str | None = None

    @property
    def token(self) -> str:
        if self._token is None:
            raise RuntimeError("the system was never started: no admin token yet")
        return self._token

    @property
    def pid(self) -> int:
        """The pid of the running `convergence up` (also its process group id)."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"convergence up is not running:\n{self.log_tail()}")
        return self.process.pid

    def log_tail(self, chars: int = LOG_TAIL) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"},
                            timeout=timeout)

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start `convergence up` (log: up.log, then up.2.log, …) and wait until `/healthz` answers 200."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("convergence up is already running")
        self.starts += 1
        self.log = self.tmp / ("up.log" if self.starts == 1 else f"up.{self.starts}.log")
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen([CONVERGENCE, "up"], env=self.env, stdout=sink,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        if self._token is None:
            self._token = _token_from(self.log, self.process, deadline)
        _wait_healthy(self.base_url, self.process, self.log, deadline)

    def kill(self) -> None:
        """kill -9 the whole process group of `convergence up` (broker, processor, API) and reap it."""
        process = self.process
        if process is None:
            return
        with suppress(ProcessLookupError):  # already gone
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self._wait_group_gone(process.pid)

    def stop(self) -> None:
        """Ctrl-C, as a user stops it; kill -9 what is still running after STOP_TIMEOUT_S."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                process.wait(STOP_TIMEOUT_S)
        if process.poll() is None or group_members(process.pid):  # nothing of the group may outlive the test
            self.kill()

    def _wait_group_gone(self, pgid: int) -> None:
        deadline = time.monotonic() + GONE_TIMEOUT_S
        while members := group_members(pgid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {members} of group {pgid} still run {GONE_TIMEOUT_S} s after SIGKILL")
            time.sleep(0.05)

    def command(self, *args: str, timeout_s: float) -> subprocess.CompletedProcess:
        """Run `convergence ARGS` with this system's environment, on its broker (CONVERGENCE_KAFKA_BOOTSTRAP).

        The broker is the embedded Tansu, which refuses idempotent producers: as `up` does for it (README,
        Settings), the command runs with CONVERGENCE_KAFKA_IDEMPOTENT_PRODUCER=false."""
        env = {**self.env, "CONVERGENCE_KAFKA_BOOTSTRAP": self.bootstrap,
               "CONVERGENCE_KAFKA_IDEMPOTENT_PRODUCER": "false"}
        return subprocess.run([CONVERGENCE, *args], env=env, capture_output=True, text=True, timeout=timeout_s,
                              check=False)


RunningSystem = System  # the name the first tests and the freshness benchmark know it by


def _token_from(log: Path, process: subprocess.Popen, deadline: float) -> str:
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.startswith("admin token") and number + 1 < len(lines):
                return lines[number + 1].strip()
        if process.poll() is not None:
            raise RuntimeError(f"convergence up exited with {process.returncode}:\n{log.read_text()[-LOG_TAIL:]}")
        time.sleep(0.1)
    raise TimeoutError(f"no admin token printed:\n{log.read_text()[-LOG_TAIL:]}")


def _wait_healthy(base_url: str, process: subprocess.Popen, log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"convergence up exited with {process.returncode}:\n{log.read_text()[-LOG_TAIL:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"not healthy in time:\n{log.read_text()[-LOG_TAIL:]}")


def _free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (the processor workers' web ports)."""
    while True:
        first = free_port()
        if all(_is_free(first + number) for number in range(1, count)):
            return first


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextmanager
def running_system(tmp: Path, plans_dir: Path, database_url: str | None = None, workers: int = 1
                   ) -> Iterator[System]:
    """Start `convergence up` (with `workers` processor workers), wait until `/healthz` answers 200, and stop it
    with Ctrl-C afterwards."""
    system = System(tmp, plans_dir, database_url, workers)
    try:
        system.start()
        yield system
    finally:
        system.stop()

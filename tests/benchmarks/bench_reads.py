"""Read throughput: live scorecards under concurrent clients, with the quarter story loaded.

    python -m tests.benchmarks.bench_reads [--seconds 20] [--connections 32] [--period P] [--calibrate]

Starts the real system (`convergence up`: embedded broker, SQLite, processor, API) on the quarter story's
plans, posts the story's valid events, waits until the live measures equal `expected.json`'s, then has
`wrk` (Debian package `wrk`: a C load generator, `apt-get install -y wrk`) keep `--connections`
connections busy for `--seconds` with `GET /v1/scorecards/{party}?period=P`, cycling over every party of
the story (default P: the period of the story's expected measures), and prints requests/s, p50 and p99.

The load generator shares the machine's cores with the system. `--calibrate` measures it alone first: the
same load against a trivial HTTP server in a process of its own, which answers every request with the
same few bytes. (A Python client is no load generator here: httpx with 32 concurrent tasks managed about
250 requests/s against that server.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from multiprocessing import Process
from pathlib import Path

import httpx

from services.broker.embedded import free_port
from shared.events import EventError, parse_event
from tests.support.live import live_measures, replay_of, same
from tests.support.scenarios import Scenario, load_scenario
from tests.support.system import running_system

BATCH = 200
# wrk calls `request` for every request and `done` once at the end; `done` prints one JSON line.
WRK_SCRIPT = """
local paths = {%s}
local next_path = 0
request = function()
  next_path = next_path %% #paths + 1
  return wrk.format("GET", paths[next_path])
end
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format('{"requests": %%d, "seconds": %%f, "p50_us": %%d, "p99_us": %%d, "errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
"""


def load_story(client: httpx.Client, scenario: Scenario) -> None:
    """Post the story's valid events (its close steps are left out) and wait for its expected live measures."""
    valid = []
    for line in scenario.steps_path.read_text().splitlines():
        step = json.loads(line)
        if "action" not in step:
            try:
                parse_event(step)
            except EventError:
                continue
            valid.append(step)
    for start in range(0, len(valid), BATCH):
        response = client.post("/v1/events", json=valid[start:start + BATCH])
        assert response.status_code == 202, response.text
    expected = scenario.expected["measures"]
    live = live_measures(client, expected)["parties"]
    differing = [(party, measure) for party, values in expected["parties"].items() for measure, value in values.items()
               if not same(live[party].get(measure, "absent"), value)]
    if differing:
        raise RuntimeError(f"live measures still differ from expected.json: {differing[:10]}")


def wrk(base_url: str, paths: list[str], headers: dict[str, str], seconds: float, connections: int) -> dict:
    """Run wrk against `paths` of `base_url` (round robin); its summary as a dict."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT % ", ".join(json.dumps(path) for path in paths))
        script.flush()
        argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "-s", script.name, base_url]
        for name, value in headers.items():
            argv[1:1] = ["-H", f"{name}: {value}"]
        output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def report(what: str, summary: dict) -> None:
    print(f"{what}: {summary['requests'] / summary['seconds']:,.0f} requests/s  p50 {summary['p50_us'] / 1000:.1f} ms"
          f"  p99 {summary['p99_us'] / 1000:.1f} ms  ({summary['requests']:,} requests, {summary['errors']} errors)")


def _serve_trivially(port: int) -> None:
    """A keep-alive HTTP server that answers every request with the same 2 bytes, as cheaply as Python can."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"

    class Trivial(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(answer * data.count(b"\r\n\r\n"))  # type: ignore[attr-defined]

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Trivial, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(serve())


def _wait_answering(url: str) -> None:
    for _ in range(100):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} does not answer")


def calibrate(seconds: float, connections: int) -> None:
    """The load generator alone: the same load against `_serve_trivially` in a process of its own."""
    port = free_port()
    server = Process(target=_serve_trivially, args=(port,), daemon=True)
    server.start()
    try:
        _wait_answering(f"http://127.0.0.1:{port}/")
        report("wrk alone (trivial server)", wrk(f"http://127.0.0.1:{port}", ["/"], {}, seconds, connections))
    finally:
        server.terminate()
        server.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--period", help="the scorecards' period (default: that of the story's expected measures; "
                                         "`current`: none asked for, each party's current one)")
    parser.add_argument("--calibrate", action="store_true", help="measure the load generator alone first")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.seconds, args.connections)
    scenario = load_scenario("quarter")
    period = args.period or scenario.expected["measures"]["period"]
    query = "" if period == "current" else f"?period={period}"
    parties = sorted(replay_of(scenario).fold.parties)
    paths = [f"/v1/scorecards/{party}{query}" for party in parties]
    with tempfile.TemporaryDirectory() as tmp, running_system(Path(tmp), scenario.plans_dir) as system:
        with system.client() as client:
            load_story(client, scenario)
            refused = [path for path in paths if client.get(path).status_code != 200]
            assert not refused, refused
        headers = {"Authorization": f"Bearer {system.token}"}
        wrk(system.base_url, paths, headers, 2, args.connections)  # warm up: every party read once
        summary = wrk(system.base_url, paths, headers, args.seconds, args.connections)
    report(f"scorecards of {len(parties)} parties, period {period}, {args.connections} connections", summary)


if __name__ == "__main__":
    main()

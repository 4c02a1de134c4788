"""The benchmark suite: one generated history, and every figure beside a baseline measured in the same run.

    python -m tests.benchmarks.suite [--quick] [--scale 1.0] [--out DIR]

Generates a year of history (`tests.benchmarks.history`) for `--scale` × 10 000 payees, 100 events per payee
(scale 1: 1 000 000 events). The live measurements take its first `LIVE_EVENTS` (all of it below scale 0.2):
on two cores, 1 000 000 events would take them past 20 minutes (one processor worker alone needs about five
to catch up on them). Each figure is measured beside its baseline:

* ingest: events/s through `POST /v1/events` in batches of 500 (4 requests in flight) into the whole system
  (`convergence up`: embedded broker, SQLite, one processor worker) that holds and has folded the live events
  but the last tenth, which are posted; against a bare aiokafka producer sending the same events to the same
  broker just before;
* reads: scorecards of every account executive for `PERIOD` from 32 concurrent clients (`bench_reads.wrk`; with
  `--quick` a Python client when wrk is missing), against the same party and period's figures computed by
  SQL over the system's ledger under the same load (`ledger_sql`, checked to equal the scorecard's first);
* freshness: p50 and p99 from a 202 to the live scorecard (`bench_freshness`) at 2 000 and 5 000 events/s
  offered to that system, against the same probe at a trickle of 20 events/s;
* processing: catch-up events/s of 1 and 2 processor workers on the live events, against a bare aiokafka
  consumer of the same events (`bench_processing`, on a broker of its own, with the system stopped);
* memory: the resident set of the one worker once caught up, per 100 000 relationships, against the growth
  of the resident set of a process that folds the same ledger to close a period;
* close: seconds of the settlement's `Closer` closing `PERIOD` for every payee from a ledger of the whole
  history, in a new interpreter, against a bare scan of every row of that ledger.

Writes `OUT/results.json` and the table `OUT/results.md` (OUT: `bench/`, or `build/bench-quick/` with
`--quick`, which CI runs and whose results are not the ones to commit). Exits 1 when a figure is missing.
A figure of the system notes the restarts its supervisor made while it was measured (the system's log is
kept in `LOGS`). The machine may be shared: compare the ratios more than the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import func, select

import shared.fold
from services.broker.batches import Message
from services.broker.topics import ensure_topics
from services.plan_files import DEFAULT_PLANS_DIR
from services.plans import PlansInForce
from services.settings import Settings
from services.settlement.closer import Closer
from services.store.database import opened_database
from services.store.ledger import LedgerStore
from services.store.settlements import SettlementStore
from services.store.tables import LedgerEvent, ProcessorRecord
from shared.events import Event
from shared.periods import Period
from tests.benchmarks.bench_core import fresh
from tests.benchmarks.bench_freshness import freshness, percentiles
from tests.benchmarks.bench_processing import (
    Progress,
    append_ledger,
    bare_consumer,
    bench_settings,
    caught_up_processor,
    checkpointed,
    history_events,
    history_messages,
    processor_run,
    publish,
    published,
    resident_bytes,
)
from tests.benchmarks.bench_reads import wrk
from tests.benchmarks.history import raw_history
from tests.benchmarks.ledger_sql import closed_loop, ledger_connection, scorecard_sql
from tests.support.live import LIVE_TIMEOUT_S
from tests.support.system import System

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "build" / "bench-suite-logs"  # the system's; the processors' are in bench_processing.LOGS
PERIOD = Period.parse("2026-11")  # a month of the generated year (it starts at history.START) that has ended
CLOSED_AT = datetime(2027, 1, 1, tzinfo=UTC)  # the close's clock: after the whole generated year
PAYEES, EVENTS_PER_PAYEE = 10_000, 100  # at scale 1
LIVE_EVENTS = 200_000
INGEST_BATCH, INGEST_REQUESTS = 500, 4
CLIENTS = 32
WORKERS = [1, 2]
RATES, TRICKLE = (2000, 5000), 20  # events/s offered; the trickle: one event and one probe every 100 ms
RELATIONSHIPS = 100_000  # memory is reported per this many relationships
SCAN_ROWS = 5000  # rows per fetch of the bare scan, as the ledger's own reads fetch them
MIB = 2**20
PARTITIONS = Settings.model_fields["partitions"].default


@dataclass(frozen=True)
class Scale:
    events: int
    payees: int
    live: int  # the first events, those the live measurements take
    seconds: float  # of every timed load: reads, their SQL baseline, each freshness rate

    @classmethod
    def of(cls, scale: float, quick: bool) -> Scale:
        events = round(scale * PAYEES * EVENTS_PER_PAYEE)
        return cls(events, round(scale * PAYEES), min(events, LIVE_EVENTS), 4 if quick else 20)

    @property
    def posted(self) -> int:
        """The live events posted to measure ingest (the last tenth, and enough for 20 batches of 500)."""
        return max(min(self.live // 2, 20 * INGEST_BATCH), self.live // 10)

    @property
    def customers(self) -> int:
        """The customers `raw_history` needs for `payees`: it pays each customer, and per 40 customers an account
        executive, per 100 a service agent and per 400 a partner."""
        return max(1, round(self.payees / (1 + 1 / 40 + 1 / 100 + 1 / 400)))


@dataclass(frozen=True)
class History:
    """The generated history in every form a measurement sends it, encoded before anything is timed. Of its first
    `live` events, the system holds the first `held` before ingest is measured with the rest (the posted ones)."""

    events: list[tuple[Event, str]]  # with their JSON, for a ledger
    live: int
    held: int
    messages: dict[str, list[Message]]  # the live events', by unprefixed inbound topic
    posted: dict[str, list[Message]]  # the posted events', for the bare producer
    batches: list[bytes]  # and their `POST /v1/events` bodies
    executives: list[str]  # the account executives, whose scorecards are read

    @classmethod
    def generated(cls, scale: Scale) -> History:
        raws = list(raw_history(scale.events, scale.customers))
        events, held = history_events(raws), scale.live - scale.posted
        batches = [json.dumps(raws[at:min(at + INGEST_BATCH, scale.live)]).encode()
                   for at in range(held, scale.live, INGEST_BATCH)]
        executives = [raw["data"]["party_id"] for raw in raws
                      if raw["type"] == "party.registered" and raw["data"]["role"] == "account_executive"]
        return cls(events, scale.live, held, history_messages(events[:scale.live]),
                   history_messages(events[held:scale.live]), batches, executives)


@dataclass(frozen=True)
class Figure:
    """One row of the results: a figure of the system's and its baseline's, measured in the same run (None: not
    measured, which fails the run)."""

    key: str
    what: str
    value: float | None
    unit: str
    baseline: str
    baseline_value: float | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.value is None or not self.baseline_value else self.value / self.baseline_value


def _database(system: System) -> Path:
    return Path(system.env["CONVERGENCE_DATA_DIR"]) / "convergence.db"  # `up`'s SQLite file (Settings)


async def _post(system: System, batches: list[bytes]) -> None:
    """Every batch through `POST /v1/events`, `INGEST_REQUESTS` at a time."""
    headers = {"Authorization": f"Bearer {system.token}", "Content-Type": "application/json"}
    pending = iter(batches)
    async with httpx.AsyncClient(base_url=system.base_url, headers=headers, timeout=120) as client:

        async def poster() -> None:
            for body in pending:
                response = await client.post("/v1/events", content=body)
                if response.status_code != 202:
                    raise RuntimeError(f"POST /v1/events answered {response.status_code}: {response.text[:500]}")

        await asyncio.gather(*(poster() for _ in range(INGEST_REQUESTS)))


def _url(database: Path) -> str:
    return f"sqlite+aiosqlite:///{database}"


async def _ledger(database: Path, events: list[tuple[Event, str]]) -> None:
    """A new SQLite database at `database` whose ledger holds `events` (their rows for the default topics)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    settings = Settings(database_url=_url(database), _env_file=None)
    async with opened_database(settings.database_url) as sessions:
        await append_ledger(LedgerStore(sessions), settings, events)


async def _folded(system: System, last_seq: int, args: argparse.Namespace) -> None:
    """Wait until the system's ledger ends at `last_seq` and its processor has checkpointed it all."""
    async with opened_database(_url(_database(system))) as sessions:
        if (held := await LedgerStore(sessions).last_seq()) != last_seq:
            raise RuntimeError(f"the ledger holds {held} events, not {last_seq}")
        if not await checkpointed(sessions, last_seq, PARTITIONS, Progress(time.monotonic()), args.timeout,
                                  args.stall):
            raise RuntimeError(f"the system's processor did not fold the ledger up to {last_seq}:\n"
                               f"{system.log_tail()}")


async def _ingest(system: System, history: History, args: argparse.Namespace) -> Figure:
    """The bare producer, then the same events over HTTP, into a system that has folded what it held; returns
    once it has folded them too."""
    total = history.live - history.held
    bare = bench_settings(system.bootstrap, "bench-ingest.", PARTITIONS)  # topics no part of the system reads
    await ensure_topics(bare)
    started = time.monotonic()
    await publish(bare, history.posted)
    produced = total / (time.monotonic() - started)
    started = time.monotonic()
    await _post(system, history.batches)
    posted = total / (time.monotonic() - started)
    await _folded(system, history.live, args)
    return Figure("ingest", f"ingest: `POST /v1/events`, batches of {INGEST_BATCH}", posted, "events/s",
                  "bare aiokafka producer: the same events, the same broker", produced,
                  f"{total:,} events into a system holding {history.held:,}, {INGEST_REQUESTS} requests in flight")


def _same(live: str | None, computed: float | None, tolerance: float) -> bool:
    """An API figure (a decimal as text, or null) equals one the SQL computed (a float, or null)."""
    if live is None or computed is None:
        return live is None and computed is None
    return abs(Decimal(live) - Decimal(computed)) <= Decimal(tolerance)


def _await_sql_figures(system: System, party: str) -> None:
    """Wait until the party's live scorecard shows the net revenue and NPS the SQL computes from the ledger: the
    query's replica has the processor's last measures then, and the baseline is known to compute the same."""
    with closing(ledger_connection(_database(system))) as connection:
        net_revenue, nps = scorecard_sql(connection, party, PERIOD)
    deadline = time.monotonic() + LIVE_TIMEOUT_S
    with system.client() as client:
        while True:
            response = client.get(f"/v1/scorecards/{party}", params={"period": str(PERIOD)})
            metrics = {m["measure"]: m["value"] for m in response.json()["metrics"]} if response.is_success else {}
            live = metrics.get("net_revenue"), metrics.get("nps")
            if _same(live[0], net_revenue, 0.01) and _same(live[1], nps, 1e-4):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{party}'s scorecard for {PERIOD} shows net revenue {live[0]} and NPS {live[1]}; "
                                   f"the SQL over the ledger computes {net_revenue} and {nps}")
            time.sleep(0.5)


def _reads(system: System, executives: list[str], scale: Scale) -> list[Figure]:
    """Scorecards from the API and their figures by SQL, under the same load."""
    paths = [f"/v1/scorecards/{party}?period={PERIOD}" for party in executives]
    _await_sql_figures(system, executives[0])
    if shutil.which("wrk"):
        headers = {"Authorization": f"Bearer {system.token}"}
        # every party read once first: its first read computes its scorecard, later ones reuse it until the party
        # changes, and the figures are of reads in that steady state
        wrk(system.base_url, paths, headers, 2, CLIENTS)
        api, client = wrk(system.base_url, paths, headers, scale.seconds, CLIENTS), "wrk"
    else:  # --quick only (main): a Python client measures itself as much as the API
        api = closed_loop(CLIENTS, scale.seconds, system.client,
                          lambda http, n: http.get(paths[n % len(paths)]).is_success)
        client = "Python client (no wrk)"

    def by_sql(connection, n: int) -> bool:
        scorecard_sql(connection, executives[n % len(executives)], PERIOD)
        return True

    sql = closed_loop(CLIENTS, scale.seconds, lambda: ledger_connection(_database(system)), by_sql)
    baseline = "SQL over the ledger (net revenue, NPS): same party, period and load"
    note = (f"{len(executives):,} account executives, a ledger of {scale.live:,} events, {CLIENTS} clients, "
            f"{scale.seconds:g} s, {client}")
    return [Figure("scorecard_p50_ms", "scorecard p50", api["p50_us"] / 1000, "ms", baseline, sql["p50_us"] / 1000,
                   note),
            Figure("scorecard_p99_ms", "scorecard p99", api["p99_us"] / 1000, "ms", baseline, sql["p99_us"] / 1000,
                   note),
            Figure("scorecard_rps", "scorecard requests/s", api["requests"] / api["seconds"], "requests/s", baseline,
                   sql["requests"] / sql["seconds"], f"errors: {api['errors']} (API), {sql['errors']} (SQL)")]


def _restarts(system: System) -> int:
    """How many times `up` has restarted a child so far (its supervisor logs each one: `… exited with …`)."""
    return system.log.read_text(errors="replace").count(" exited with ")


def _restarted(count: int, when: str) -> str:
    return f"; {count} restart(s) of a part of `up` {when}" if count else ""


def _watched(system: System, measure: Callable[[], list[Figure]]) -> list[Figure]:
    """`measure()`, its figures noting the restarts `up` made meanwhile (a restart stalls what is measured)."""
    before = _restarts(system)
    figures = measure()
    restarts = _restarts(system) - before
    return [replace(figure, note=figure.note + _restarted(restarts, "meanwhile")) for figure in figures]


def _freshness(system: System, scale: Scale) -> list[Figure]:
    runs = {}
    for rate in (TRICKLE, *RATES):  # a probe party per run: each counts only its own sales
        before = _restarts(system)
        latencies, sent = asyncio.run(freshness(system.base_url, system.token, rate, scale.seconds, f"probe-{rate}"))
        runs[rate] = {**percentiles(latencies), "sent": sent, "restarts": _restarts(system) - before}
    baseline = f"the same probe at {TRICKLE} events/s offered"
    return [Figure(f"freshness_{rate}_{p}_ms", f"freshness {p}, {rate:,} events/s offered", runs[rate][f"{p}_ms"],
                   "ms", baseline, runs[TRICKLE][f"{p}_ms"],
                   f"{runs[rate]['sent']:,.0f} events/s accepted" + _restarted(runs[rate]["restarts"], "during it")
                   + _restarted(runs[TRICKLE]["restarts"], "during the baseline's run"))
            for rate in RATES for p in ("p50", "p99")]


def system_figures(history: History, scale: Scale, args: argparse.Namespace, tmp: Path) -> list[Figure]:
    """Ingest, reads and freshness on one `convergence up` holding the history: it starts on a ledger of all but
    the posted events and folds them (it publishes a ledger its broker lacks, as after a broker's loss), and is
    measured once it has."""
    system = System(tmp, DEFAULT_PLANS_DIR)
    asyncio.run(_ledger(_database(system), history.events[:history.held]))
    try:
        system.start()
        _say(f"system started on a ledger of {history.held:,} events; folding them…")
        asyncio.run(_folded(system, history.held, args))
        _say("ingest…")
        ingest = _watched(system, lambda: [asyncio.run(_ingest(system, history, args))])
        _say("reads…")
        reads = _watched(system, lambda: _reads(system, history.executives, scale))
        _say("freshness…")
        return [*ingest, *reads, *_freshness(system, scale)]
    finally:
        system.stop()
        LOGS.mkdir(parents=True, exist_ok=True)
        for log in tmp.glob("up*.log"):
            shutil.copy(log, LOGS)


async def _relationships(database_url: str) -> int:
    """The relationships in the processor's checkpointed state (record keys: `services.records.encode_key`)."""
    records = ProcessorRecord.__table__
    async with opened_database(database_url) as sessions, sessions() as session:
        return await session.scalar(select(func.count()).select_from(records)
                                    .where(records.c.key.like('["relationship",%'))) or 0


async def processing_figures(history: History, args: argparse.Namespace, tmp: Path
                             ) -> tuple[list[Figure], str, dict[str, int | None]]:
    """Catch-up of 1 and 2 workers on the live events against a bare consumer; the 1 worker's ledger, its resident
    set once caught up and the relationships it holds."""
    async with published(history.messages, history.events[:history.live], WORKERS, args.partitions, tmp) as copies:
        bare = (await bare_consumer(copies.settings[0], copies.ends, args.timeout))["events_per_s"]
        runs = {}
        for count in WORKERS:
            _say(f"{processor_run(count)}…")
            runs[count] = await caught_up_processor(copies, count, tmp, args)
    database_url = copies.settings[1].resolved_database_url
    rss = runs[1]["rss_bytes"] if runs[1]["caught_up"] else []  # a worker that restarted may have none
    memory = {"rss_bytes": rss[0] if rss else None, "relationships": await _relationships(database_url)}
    figures = [Figure(f"processing_{count}", f"catch-up: {processor_run(count)}",
                      run["events_per_s"] if run["caught_up"] else None, "events/s",
                      "bare aiokafka consumer of the same events", bare, _catch_up_note(history.live, count, run))
               for count, run in runs.items()]
    return figures, database_url, memory


def _catch_up_note(events: int, count: int, run: dict) -> str:
    notes = [f"{events:,} events"]
    if count > 1 and run["events_per_s"]:
        notes.append(f"{run['events_per_s'] / count:,.0f} events/s per worker")
    if run["restarts"]:
        notes.append(f"{run['restarts']} restarts")
    return ", ".join(notes)


async def _nothing(*_: object) -> None:
    """The close's catch-up (the ledger holds everything) and its announcement (no broker): nothing to do."""


async def _close(database_url: str) -> dict:
    settings = Settings(database_url=database_url, _env_file=None)
    async with opened_database(database_url) as sessions:
        closer = Closer(settings, PlansInForce.load(DEFAULT_PLANS_DIR), LedgerStore(sessions),
                        SettlementStore(sessions), _nothing, _nothing, lambda: CLOSED_AT)
        before, started = resident_bytes(os.getpid()), time.perf_counter()
        settlement = await closer.close(PERIOD, actor="bench")
        close_s, grown = time.perf_counter() - started, resident_bytes(os.getpid()) - before
        events, rows, started = LedgerEvent.__table__, 0, time.perf_counter()
        async with sessions() as session:
            async for chunk in (await session.stream(select(events.c.seq, events.c.body))).partitions(SCAN_ROWS):
                rows += len(chunk)
        scan_s = time.perf_counter() - started
    return {"close_s": close_s, "scan_s": scan_s, "rows": rows, "payees": len(settlement.statements),
            "fold_rss_bytes": grown}


def close_figures(database_url: str) -> dict:
    """The close of `PERIOD` over the ledger at `database_url`, with the growth of the process's resident set it
    took, then the bare scan; run in a new interpreter (`fresh`), whose heap holds nothing else."""
    return asyncio.run(_close(database_url))


def offline_figures(closed: dict, live_close: dict, memory: dict) -> list[Figure]:
    """The close of the whole history; the processor's memory against a close's of its ledger (`live_close`)."""
    per = memory["relationships"] / RELATIONSHIPS
    rss = memory["rss_bytes"]
    return [Figure("close_s", f"close {PERIOD}: {closed['payees']:,} payees, {closed['rows']:,} events",
                   closed["close_s"], "s", "bare scan: SELECT of every ledger row", closed["scan_s"],
                   "`Closer.close` on SQLite, in a new interpreter"),
            Figure("rss_mib_per_100k_relationships", "processor RSS per 100 000 relationships",
                   None if rss is None else rss / MIB / per, "MiB",
                   "resident-set growth of a close folding the same ledger", live_close["fold_rss_bytes"] / MIB / per,
                   f"1 worker caught up on {live_close['rows']:,} events: {memory['relationships']:,} relationships")]


STARTED = time.monotonic()


def _say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.0f} s] {text}", flush=True)


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "missing"
    return f"{value:,.1f}" if unit in ("ms", "s") and value < 100 else f"{value:,.0f}"


def _ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    return f"{ratio:.2g}×" if ratio < 1 else f"{ratio:,.2f}×" if ratio < 100 else f"{ratio:,.0f}×"


def _markdown(results: dict, figures: list[Figure]) -> str:
    run, scale = results["run"], results["scale"]
    lines = [
        "# Benchmark results",
        "",
        f"`{run['command']}` on {run['date']} ({run['commit']}), {run['seconds'] / 60:.1f} min on {run['cores']} "
        f"cores (shared), fold {run['fold']}: a generated year of {scale['events']:,} events for "
        f"{scale['payees']:,} payees, the live measurements on its first {scale['live']:,}. Each figure beside its "
        "baseline from the same run; ratio = figure / baseline.",
        "",
        "| measurement | figure | baseline | baseline figure | ratio | note |",
        "|---|---:|---|---:|---:|---|",
    ]
    for figure in figures:
        cells = (figure.what, f"{_number(figure.value, figure.unit)} {figure.unit}", figure.baseline,
                 f"{_number(figure.baseline_value, figure.unit)} {figure.unit}", _ratio(figure.ratio), figure.note)
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def _commit() -> str:
    described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return described.stdout.strip() or "no git"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scale 0.02 and 4 s loads: under 2 minutes, for CI")
    parser.add_argument("--scale", type=float, help="× 10 000 payees and 1 000 000 events (default 1; 0.02 quick)")
    parser.add_argument("--out", type=Path, help="where results go (default bench/; build/bench-quick/ quick)")
    parser.add_argument("--partitions", type=int, default=PARTITIONS)
    parser.add_argument("--timeout", type=float, default=600, help="seconds a processor may take to catch up")
    parser.add_argument("--stall", type=float, default=180,
                        help="seconds without a new checkpoint after which a processor counts as stuck")
    args = parser.parse_args()
    if not args.quick and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (only --quick makes do without)")
    scale = Scale.of(args.scale or (0.02 if args.quick else 1.0), args.quick)
    out = args.out or ROOT / ("build/bench-quick" if args.quick else "bench")
    history = History.generated(scale)
    gc.freeze()  # millions of long-lived objects: the collector need not walk them again
    _say(f"generated {len(history.events):,} events for {scale.payees:,} payees")
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        figures = system_figures(history, scale, args, Path(tmp))
        processing, live_url, memory = asyncio.run(processing_figures(history, args, Path(tmp)))
        _say("close…")
        asyncio.run(_ledger(whole := Path(tmp) / "ledger.db", history.events))
        closed, live_close = fresh(close_figures, _url(whole)), fresh(close_figures, live_url)
        figures += [*processing, *offline_figures(closed, live_close, memory)]
    command = " ".join(["python -m tests.benchmarks.suite", *sys.argv[1:]])
    results = {"run": {"command": command, "date": f"{datetime.now(UTC):%Y-%m-%d}",
                       "commit": _commit(), "seconds": time.monotonic() - STARTED, "cores": os.cpu_count(),
                       "fold": "compiled by mypyc" if shared.fold.__file__.endswith(".so") else "plain Python"},
               "scale": {**asdict(scale), "customers": scale.customers, "payees_closed": closed["payees"], **memory},
               "figures": {figure.key: {**asdict(figure), "ratio": figure.ratio} for figure in figures}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(table := _markdown(results, figures))
    print(table)
    _say(f"written to {out}")
    missing = [figure.key for figure in figures if figure.value is None or figure.baseline_value is None]
    if missing:
        raise SystemExit(f"missing figures: {', '.join(missing)}")


if __name__ == "__main__":
    main()

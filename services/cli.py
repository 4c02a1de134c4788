"""The `convergence` command line (SPEC §7)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.auth import SCOPES, create_audited_token
from services.heap import HeapKeeper
from services.logs import configure_logging
from services.plan_files import load_plans
from services.settings import Settings
from shared.periods import ts_of
from shared.plans import PlanError
from shared.replay import Replay

if TYPE_CHECKING:  # imported where used: the web stack is not loaded for commands that do not serve
    from services.plans import PlansInForce

app = typer.Typer(help="Convergence: live scorecards and incentive settlement from one event stream.",
                  no_args_is_help=True, add_completion=False)
plans_app = typer.Typer(help="Plans and scorecards.", no_args_is_help=True)
app.add_typer(plans_app, name="plans")
err = Console(stderr=True)

PlansDir = Annotated[Path, typer.Option("--plans", help="Directory of plan and scorecard YAML files.",
                                        exists=True, file_okay=False)]
T = TypeVar("T")


def _plans_or_exit(load: Callable[[Path], T], directory: Path) -> T:
    """`load(directory)`, or exit 1 with every problem of the plans there."""
    try:
        return load(directory)
    except PlanError as error:
        for problem in error.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _plans_in_force(settings: Settings) -> PlansInForce:
    """The plans of CONVERGENCE_PLANS_DIR, to be watched by the services that evaluate them (or exit 1)."""
    from services.plans import PlansInForce

    return _plans_or_exit(PlansInForce.load, settings.plans_dir)


@plans_app.command("check")
def plans_check(directory: Annotated[Path | None, typer.Argument(
        exists=True, file_okay=False, help="Default: CONVERGENCE_PLANS_DIR (unset: the example plans).")] = None,
) -> None:
    """Validate plans and scorecards; exit non-zero with every problem found."""
    plans = _plans_or_exit(load_plans, directory or Settings().plans_dir)
    for plan in plans.plans:
        typer.echo(f"ok  plan {plan.plan} ({plan.period}, {plan.currency}, "
                   f"{len(plan.components)} components) {plan.hash}")
    for card in plans.scorecards:
        typer.echo(f"ok  scorecard {card.scorecard} ({len(card.metrics)} metrics)")


@app.command()
def replay(
    steps: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Steps file (JSON lines).")],
    plans: PlansDir,
    out: Annotated[Path | None, typer.Option(help="Write the result here instead of stdout.")] = None,
    currency: str = "USD",
    provider_id: str = "provider",
) -> None:
    """Replay events and closes through the fold and settlement: what these plans would have paid."""
    plan_set = _plans_or_exit(load_plans, plans)
    lines = steps.read_text().splitlines()
    parsed = (json.loads(line, parse_float=Decimal) if line.strip() else None for line in lines)
    run = Replay(plan_set, currency, provider_id)
    now = datetime.now(UTC)
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    keeper = HeapKeeper()
    with Progress(*columns, console=err, transient=True, disable=len(lines) < 5000) as progress:
        task = progress.add_task("replay", total=len(lines))

        def advance() -> None:
            progress.advance(task)
            keeper.folded(1)

        run.run((step for step in parsed if step is not None), clock=lambda: now, progress=advance)
    text = json.dumps(run.result(ts_of(now)), indent=2, sort_keys=True) + "\n"
    if out:
        out.write_text(text)
    else:
        sys.stdout.write(text)
    for item in run.rejected:
        err.print(f"rejected step {item['step']} ({item['id']}): {item['error']}", highlight=False)


token_app = typer.Typer(help="Bearer tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.command()
def up(demo: Annotated[bool, typer.Option(
        help="Also run simulated source systems and print a read-only sign-in token for the web app.")] = False
       ) -> None:
    """Everything on one machine: broker, database, ingest, processor, ledger, query and settlement."""
    from services.up import up as run_up

    settings = Settings()
    run_up(settings, _plans_in_force(settings), demo)


@token_app.command("create")
def token_create(scopes: Annotated[str, typer.Option(help=f"Comma-separated, from: {', '.join(SCOPES)}")],
                 name: Annotated[str | None, typer.Option(help="Who acts with it (default: token-<hash>).")] = None
                 ) -> None:
    """Print a new token once (last line); only its hash and name are stored in CONVERGENCE_TOKENS_FILE.

    The creation is first recorded in the audit log, in the database of CONVERGENCE_DATABASE_URL, where
    `GET /v1/audit` reads every other entry (one log, not a second one beside the tokens file to merge): a
    token whose creation cannot be recorded there is not stored (exit 1).
    """
    import asyncio
    import getpass

    from sqlalchemy.exc import SQLAlchemyError

    settings = Settings()
    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    try:
        user = f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        user = "cli"
    try:
        token, entry = asyncio.run(create_audited_token(settings, wanted, name, actor=user))
    except ValueError as error:
        err.print(f"[red]error[/red] {error}", highlight=False)
        raise typer.Exit(2) from None
    except (OSError, SQLAlchemyError) as error:
        err.print(f"[red]error[/red] no token created: its creation could not be recorded in the audit log "
                  f"({type(error).__name__}: {error})", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    typer.echo(f"stored the hash of a new token named {entry['name']} with scopes {','.join(entry['scopes'])} "
               f"in {settings.resolved_tokens_file}")
    typer.echo(token)


@app.command()
def publish(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CloudEvents, one per line.")],
    token: Annotated[str, typer.Option(envvar="CONVERGENCE_TOKEN", help="A token with events:write.")],
    url: Annotated[str | None, typer.Option(help="API base URL (default: this machine's API port).")] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
    all_or_nothing: Annotated[bool, typer.Option(
        "--all-or-nothing", help="Validate every line first; publish nothing if any is invalid.")] = False,
    currency: Annotated[str | None, typer.Option(
        help="Settlement currency for --all-or-nothing (default: CONVERGENCE_CURRENCY).")] = None,
) -> None:
    """Publish CloudEvents from a JSON-lines file through the ingest path, in batches; report refused lines."""
    from services.publisher import publish_file

    settings = Settings()
    base_url = url or f"http://{settings.api_host}:{settings.api_port}"
    outcome = publish_file(file, base_url, token, batch, err, currency=currency or settings.currency,
                           all_or_nothing=all_or_nothing)
    typer.echo(json.dumps(outcome))
    if outcome["rejected"]:
        raise typer.Exit(1)


def _serve_app(service: str, build) -> None:
    import uvicorn

    settings = Settings()
    configure_logging(settings, service)
    # uvicorn's own logging setup would give its loggers handlers of their own, in neither of our formats
    uvicorn.run(build(settings), host=settings.api_host, port=settings.api_port, log_config=None)


@app.command()
def ingest() -> None:
    """Run the ingest service alone (POST /v1/events)."""
    from services.ingest.app import create_app

    _serve_app("ingest", create_app)


@app.command()
def query() -> None:
    """Run the query service alone (parties, scorecards, relationships, leaderboards)."""
    from services.query.app import create_app

    _serve_app("query", lambda settings: create_app(settings, _plans_in_force(settings)))


@app.command()
def settlement() -> None:
    """Run the settlement service alone (close, statements, approval, payroll export)."""
    from services.settlement.app import create_app

    _serve_app("settlement", lambda settings: create_app(settings, _plans_in_force(settings)))


@app.command()
def processor() -> None:
    """Run the stream processor alone (Faust worker)."""
    from services.processor.app import run_worker

    run_worker(Settings())


@app.command()
def ledger() -> None:
    """Run the ledger alone: inbound topics into the database."""
    from services.ledger.app import create_app

    _serve_app("ledger", create_app)


@app.command()
def rebuild(timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker.")] = 600.0) -> None:
    """Rebuild the broker's topics and the live state from the ledger (for a broker that lost its data)."""
    import asyncio

    from services.rebuild import rebuild as run_rebuild

    settings = Settings()
    outcome = asyncio.run(run_rebuild(settings, timeout))
    typer.echo(json.dumps(outcome))

"""The `convergence` command line (SPEC §7)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.plan_files import load_plans
from shared.periods import ts_of
from shared.plans import PlanError
from shared.replay import Replay

app = typer.Typer(help="Convergence: live scorecards and incentive settlement from one event stream.",
                  no_args_is_help=True, add_completion=False)
plans_app = typer.Typer(help="Plans and scorecards.", no_args_is_help=True)
app.add_typer(plans_app, name="plans")
err = Console(stderr=True)

PlansDir = Annotated[Path, typer.Option("--plans", help="Directory of plan and scorecard YAML files.",
                                        exists=True, file_okay=False)]


def _plans_or_exit(directory: Path):
    try:
        return load_plans(directory)
    except PlanError as error:
        for problem in error.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@plans_app.command("check")
def plans_check(directory: Annotated[Path, typer.Argument(exists=True, file_okay=False)]) -> None:
    """Validate plans and scorecards; exit non-zero with every problem found."""
    plans = _plans_or_exit(directory)
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
    plan_set = _plans_or_exit(plans)
    lines = steps.read_text().splitlines()
    parsed = (json.loads(line, parse_float=Decimal) if line.strip() else None for line in lines)
    run = Replay(plan_set, currency, provider_id)
    now = datetime.now(UTC)
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=len(lines) < 5000) as progress:
        task = progress.add_task("replay", total=len(lines))
        run.run((step for step in parsed if step is not None), clock=lambda: now,
                progress=lambda: progress.advance(task))
    text = json.dumps(run.result(ts_of(now)), indent=2, sort_keys=True) + "\n"
    if out:
        out.write_text(text)
    else:
        sys.stdout.write(text)
    for item in run.rejected:
        err.print(f"rejected step {item['step']} ({item['id']}): {item['error']}", highlight=False)

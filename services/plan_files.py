"""Reading a plans directory from disk into the core's `PlanSet`."""

from __future__ import annotations

from pathlib import Path

from shared.plans import PlanError, PlanSet, parse_plans

__all__ = ["load_plans"]


def load_plans(directory: Path) -> PlanSet:
    """Parse every `*.yaml`/`*.yml` file of `directory`; `PlanError` lists every problem found."""
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise PlanError([f"{directory}: no *.yaml plan files"])
    return parse_plans({str(path): path.read_text() for path in files})

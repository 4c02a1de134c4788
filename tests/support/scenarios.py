"""The reference scenarios (`shared/scenarios/<name>`): finding them, comparing a run with `expected.json`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

__all__ = ["SCENARIOS", "Scenario", "assert_matches_expected", "load_scenario", "scenarios_dir"]

SCENARIOS = ("small", "quarter", "reorg")
REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_REPORTED = 25


def scenarios_dir() -> Path:
    """`$CONVERGENCE_SCENARIOS_DIR`, else `<repo>/../shared/scenarios`; a missing directory fails the test."""
    root = Path(os.environ.get("CONVERGENCE_SCENARIOS_DIR") or REPO_ROOT.parent / "shared" / "scenarios")
    if not root.is_dir():
        pytest.fail(f"reference scenarios not found at {root}: set CONVERGENCE_SCENARIOS_DIR to the "
                    f"directory holding small/ and quarter/", pytrace=False)
    return root


@dataclass(frozen=True)
class Scenario:
    name: str
    root: Path

    @property
    def steps_path(self) -> Path:
        return self.root / "steps.jsonl"

    @property
    def plans_dir(self) -> Path:
        return self.root / "plans"

    @cached_property
    def expected(self) -> dict[str, Any]:
        return json.loads((self.root / "expected.json").read_text())


def load_scenario(name: str) -> Scenario:
    root = scenarios_dir() / name
    if not (root / "steps.jsonl").is_file() or not (root / "expected.json").is_file():
        pytest.fail(f"scenario {name!r} is incomplete at {root}: needs steps.jsonl, expected.json, plans/",
                    pytrace=False)
    return Scenario(name, root)


def _amount(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _lines(statement: dict) -> list[tuple]:
    return sorted(((line["plan"], line["component"], line["kind"], line.get("corrects") or "",
                    line["currency"], Decimal(line["amount"])) for line in statement["lines"]), key=str)


def _totals(statement: dict) -> dict[str, Decimal]:
    return {currency: Decimal(amount) for currency, amount in statement["total"].items()}


def _compare_closes(actual: dict, expected: dict, problems: list[str]) -> None:
    if sorted(actual) != sorted(expected):
        problems.append(f"closed periods: expected {sorted(expected)}, got {sorted(actual)}")
    for period in sorted(set(actual) & set(expected)):
        mine, theirs = actual[period], expected[period]
        for party in sorted(set(mine) ^ set(theirs)):
            where = "missing" if party in theirs else "unexpected"
            problems.append(f"closes[{period}]: {where} statement of {party}")
        for party in sorted(set(mine) & set(theirs)):
            if _lines(mine[party]) != _lines(theirs[party]):
                problems.append(f"closes[{period}][{party}].lines: expected {_lines(theirs[party])}, "
                                f"got {_lines(mine[party])}")
            if _totals(mine[party]) != _totals(theirs[party]):
                problems.append(f"closes[{period}][{party}].total: expected {_totals(theirs[party])}, "
                                f"got {_totals(mine[party])}")


def _compare_measures(actual: dict, expected: dict, problems: list[str]) -> None:
    if actual.get("period") != expected.get("period") or actual.get("window") != expected.get("window"):
        problems.append(f"measures: expected period {expected.get('period')} window "
                        f"{expected.get('window')}, got {actual.get('period')} {actual.get('window')}")
    parties = actual.get("parties", {})
    for party, values in sorted(expected.get("parties", {}).items()):
        if party not in parties:
            problems.append(f"measures: party {party} missing")
            continue
        for measure, value in sorted(values.items()):
            got = parties[party].get(measure, "<absent>")
            if got == "<absent>" or _amount(got) != _amount(value):
                problems.append(f"measures[{party}][{measure}]: expected {value}, got {got}")


def assert_matches_expected(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every frozen statement, rejection, duplicate count and expected measure, exactly (as decimals)."""
    problems: list[str] = []
    _compare_closes(actual.get("closes", {}), expected["closes"], problems)
    if actual.get("rejected_steps") != expected["rejected_steps"]:
        problems.append(f"rejected_steps: expected {expected['rejected_steps']}, "
                        f"got {actual.get('rejected_steps')}")
    if actual.get("duplicates") != expected["duplicates"]:
        problems.append(f"duplicates: expected {expected['duplicates']}, got {actual.get('duplicates')}")
    _compare_measures(actual.get("measures", {}), expected["measures"], problems)
    if problems:
        shown = "\n".join(problems[:MAX_REPORTED])
        more = f"\n… and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        pytest.fail(f"{len(problems)} differences from expected.json:\n{shown}{more}", pytrace=False)

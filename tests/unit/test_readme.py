"""The README's examples are checked, so the docs cannot drift from the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.events import parse_event
from shared.plans import parse_plans

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_the_plan_language_example_parses_and_validates() -> None:
    [example] = _blocks("yaml")
    plans = parse_plans({"README.md": example})
    assert [p.plan for p in plans.plans] == ["ae-2026"] and [s.scorecard for s in plans.scorecards] == ["ae-scorecard"]


def test_the_event_example_is_a_valid_event() -> None:
    [example] = _blocks("json")
    assert parse_event(json.loads(example)).type == "sale.closed"

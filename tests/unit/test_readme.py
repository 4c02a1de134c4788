"""The README's examples are checked, so the docs cannot drift from the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.events import parse_event
from shared.periods import Period
from shared.plans import parse_plans

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_the_plan_language_example_parses_and_validates() -> None:
    example = _blocks("yaml")[0]
    plans = parse_plans({"README.md": example})
    assert [p.plan for p in plans.plans] == ["ae-2026"] and [s.scorecard for s in plans.scorecards] == ["ae-scorecard"]


def test_the_plan_versions_example_pays_each_month_by_one_version() -> None:
    [_, example] = _blocks("yaml")
    plans = parse_plans({"README.md": example})
    march, april = (plans.version_for("ae-2026", Period.parse(month)) for month in ("2026-03", "2026-04"))
    assert march is not None and april is not None and march.hash != april.hash
    assert (str(march.effective), str(april.effective)) == ("… to 2026-03", "2026-04 to …")


def test_the_event_example_is_a_valid_event() -> None:
    [example] = _blocks("json")
    assert parse_event(json.loads(example)).type == "sale.closed"

"""The real `convergence replay` console script reproduces every reference scenario to the cent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.scenarios import SCENARIOS, assert_matches_expected, load_scenario

pytestmark = pytest.mark.e2e

CONVERGENCE = Path(sys.executable).parent / "convergence"


@pytest.mark.parametrize("name", SCENARIOS)
def test_replay_of_a_scenario_matches_its_expected_results(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(name)
    assert CONVERGENCE.is_file(), f"console script not installed at {CONVERGENCE} (pip install -e .)"
    out = tmp_path / "result.json"
    run = subprocess.run([str(CONVERGENCE), "replay", str(scenario.steps_path), "--plans",
                          str(scenario.plans_dir), "--out", str(out)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, f"convergence replay failed ({run.returncode}):\n{run.stderr}"
    assert_matches_expected(json.loads(out.read_text()), scenario.expected)


def test_replay_prints_the_result_on_stdout_without_out(tmp_path: Path) -> None:
    scenario = load_scenario("small")
    run = subprocess.run([str(CONVERGENCE), "replay", str(scenario.steps_path), "--plans",
                          str(scenario.plans_dir)], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert_matches_expected(json.loads(run.stdout), scenario.expected)

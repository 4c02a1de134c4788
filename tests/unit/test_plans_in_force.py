"""The plans in force and their reloads (SPEC §4), the directory hash, and the default plans found from anywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import services
from services.cli import app
from services.plan_files import DEFAULT_PLANS_DIR, directory_hash, load_plans, read_plan_files
from services.plans import FILE_WATCH, PlansInForce
from services.settings import Settings
from shared.plans import PlanError, PlanSet

PLAN = """
plan: ae-flat
applies_to: {kind: workforce}
components:
  - {name: commission, type: rate, base: net_revenue, rate: RATE}
"""
OTHER = PLAN.replace("ae-flat", "partner-flat").replace("workforce", "partner")


class Clock:
    """A clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = datetime(2026, 4, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class Audit:
    """Records what `AuditLog.append` is given; while `away`, fails as a database that is away does."""

    def __init__(self) -> None:
        self.entries: list[dict] = []
        self.away = False

    async def append(self, **entry: object) -> None:
        if self.away:
            raise ConnectionError("the database is away")
        self.entries.append(entry)


def write(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    return directory


@pytest.fixture
def plans(tmp_path: Path) -> PlansInForce:
    directory = write(tmp_path / "plans", ae=PLAN.replace("RATE", "0.1"), partner=OTHER.replace("RATE", "0.05"))
    in_force = PlansInForce.load(directory, Clock())
    in_force.audit = Audit()  # what the audit log is given is all that counts here
    return in_force


def rates(plans: PlanSet) -> dict[str, str]:
    return {plan.plan: str(plan.components[0].rate) for plan in plans.plans}


def test_the_default_plans_are_installed_with_the_package_and_found_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVERGENCE_PLANS_DIR", raising=False)
    settings = Settings(_env_file=None)
    assert settings.plans_dir == DEFAULT_PLANS_DIR == Path(services.__file__).parent / "default_plans"
    assert "ae-2026" in {plan.plan for plan in load_plans(settings.plans_dir).plans}
    checked = CliRunner().invoke(app, ["plans", "check"])
    assert checked.exit_code == 0, checked.output
    assert "ok  plan ae-2026" in checked.output and "ok  scorecard ae-scorecard" in checked.output


def test_a_configured_plans_directory_that_does_not_exist_names_the_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVERGENCE_PLANS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(PlanError, match="CONVERGENCE_PLANS_DIR"):
        PlansInForce.load(Settings(_env_file=None).plans_dir)
    checked = CliRunner().invoke(app, ["plans", "check"])
    assert checked.exit_code == 1 and "CONVERGENCE_PLANS_DIR" in checked.output


def test_the_directory_hash_is_of_file_names_and_contents_wherever_the_directory_is(tmp_path: Path) -> None:
    def hashed(directory: str, **files: str) -> str:
        return directory_hash(read_plan_files(write(tmp_path / directory, **files)))

    same = hashed("a", ae=PLAN, partner=OTHER)
    assert same == hashed("b", partner=OTHER, ae=PLAN)
    assert same != hashed("c", ae=PLAN, other=OTHER)  # a renamed file
    assert same != hashed("d", ae=PLAN, partner=OTHER + " ")
    assert hashed("e", a=PLAN + OTHER[:3], b=OTHER[3:]) != hashed("f", a=PLAN, b=OTHER)  # boundaries count


async def test_a_reload_puts_new_plans_in_force_keeping_when_unchanged_versions_took_effect(
        plans: PlansInForce) -> None:
    followed: list[PlanSet] = []
    stop = plans.follow(followed.append)
    before, started, old = plans.current, plans.loaded_at, dict(plans.took_effect)
    write(plans.directory, ae=PLAN.replace("RATE", "0.2"))
    new = await plans.reload("alice")
    assert plans.current is new and followed == [before, new]
    assert rates(new) == {"ae-flat": "0.2", "partner-flat": "0.05"}
    [partner] = [plan for plan in new.plans if plan.plan == "partner-flat"]
    [ae] = [plan for plan in new.plans if plan.plan == "ae-flat"]
    assert plans.took_effect == {partner.hash: old[partner.hash], ae.hash: plans.loaded_at}
    assert plans.loaded_at > started
    assert plans.directory_hash == directory_hash(read_plan_files(plans.directory))
    [entry] = plans.audit.entries
    assert (entry["actor"], entry["action"], entry["content_hash"]) == ("alice", "plans.reload", plans.directory_hash)
    stop()
    await plans.reload("alice")
    assert len(followed) == 2


async def test_a_refused_reload_keeps_the_plans_in_force_and_is_audited_once(plans: PlansInForce) -> None:
    before, in_force_hash = plans.current, plans.directory_hash
    write(plans.directory, ae=PLAN.replace("RATE", "-0.1"), broken="plan: [")
    with pytest.raises(PlanError) as refused:
        await plans.reload("alice")
    assert len(refused.value.problems) == 2
    assert plans.current is before and plans.directory_hash == in_force_hash
    assert plans.refusal is not None and plans.refusal.errors == tuple(refused.value.problems)
    assert any("broken.yaml" in error for error in plans.refusal.errors)

    await plans.refresh()  # nothing changed since the refusal: not refused (nor audited) again
    assert [entry["action"] for entry in plans.audit.entries] == ["plans.reload_refused"]
    (plans.directory / "broken.yaml").unlink()
    await plans.refresh()  # changed, still invalid
    assert [(e["actor"], e["action"]) for e in plans.audit.entries[1:]] == [
        (FILE_WATCH, "plans.reload_refused")]
    assert len(plans.refusal.errors) == 1

    write(plans.directory, ae=PLAN.replace("RATE", "0.1"))  # back to what is in force
    await plans.refresh()
    assert plans.refusal is None and plans.directory_hash == in_force_hash
    assert plans.audit.entries[-1]["action"] == "plans.reload"


async def test_an_unreadable_directory_is_refused_and_the_plans_stay(plans: PlansInForce) -> None:
    before = plans.current
    for path in plans.directory.iterdir():
        path.unlink()
    await plans.refresh()
    await plans.refresh()
    assert plans.current is before
    assert plans.refusal is not None and "no *.yaml plan files" in plans.refusal.errors[0]
    assert [(e["action"], e["content_hash"]) for e in plans.audit.entries] == [
        ("plans.reload_refused", None)]


async def test_a_refresh_without_changes_reloads_nothing(plans: PlansInForce) -> None:
    before, loaded_at = plans.current, plans.loaded_at
    await plans.refresh()
    assert plans.current is before and plans.loaded_at == loaded_at and plans.audit.entries == []


async def test_no_reload_takes_effect_before_it_is_audited(plans: PlansInForce) -> None:
    before = plans.current
    plans.audit.away = True
    write(plans.directory, ae=PLAN.replace("RATE", "0.2"))
    with pytest.raises(ConnectionError):
        await plans.refresh()
    assert plans.current is before
    write(plans.directory, broken="plan: [")
    with pytest.raises(ConnectionError):
        await plans.refresh()
    assert plans.current is before and plans.refusal is not None  # the errors show while the audit is away

    plans.audit.away = False
    await plans.refresh()  # the same directory again: audited now
    assert [entry["action"] for entry in plans.audit.entries] == ["plans.reload_refused"]

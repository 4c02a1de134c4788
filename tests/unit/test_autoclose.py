"""Which periods close automatically, `grace` after they end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.settlement.autoclose import due_periods
from tests.support.plans import COMMISSION, plan_set

MONTHLY = plan_set(COMMISSION)
BOTH = plan_set(COMMISSION, COMMISSION.replace("plan: ae", "plan: ae-q") + "period: quarter\n")
DAY = timedelta(hours=24)


@pytest.mark.parametrize(("now", "closed", "due"), [
    (datetime(2026, 4, 2, 10, tzinfo=UTC), set(), ["2026-03"]),  # first close: only the latest ended period
    (datetime(2026, 4, 1, 12, tzinfo=UTC), set(), ["2026-02"]),  # March ended 12 h ago: still in its grace
    (datetime(2026, 4, 2, 10, tzinfo=UTC), {"2026-01"}, ["2026-02", "2026-03"]),  # in order, none skipped
    (datetime(2026, 4, 2, 10, tzinfo=UTC), {"2026-03"}, []),
])
def test_due_periods_follow_the_last_close_once_grace_has_passed(now, closed, due) -> None:
    assert [str(p) for p in due_periods(MONTHLY, closed, now, DAY)] == due


def test_each_period_kind_the_plans_use_closes_on_its_own() -> None:
    now = datetime(2026, 4, 2, 10, tzinfo=UTC)
    assert [str(p) for p in due_periods(BOTH, {"2026-02"}, now, DAY)] == ["2026-03", "2026-Q1"]

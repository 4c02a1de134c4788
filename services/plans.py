"""The plans in force in a process: the one `PlanSet` every evaluator reads, re-read while it runs (SPEC §4).

One `PlansInForce` per process: in `convergence up` the query's read model and the settlement's closer share
it, so a reload changes what both evaluate in the same step of the event loop. A service run alone has its
own, on the same directory.

The directory is polled, not watched with inotify: no dependency, and it works where change notifications do
not arrive (bind mounts, network file systems); reading a handful of small files once a second costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.background import running
from services.plan_files import directory_hash, read_plan_files
from services.store.audit import AuditLog
from services.store.database import Clock, utc_now
from shared.plans import Plan, PlanError, PlanSet, parse_plans

__all__ = ["FILE_WATCH", "PlansInForce", "Refusal", "effective_range", "serving_plans"]

log = logging.getLogger(__name__)

FILE_WATCH = "file-watch"
"""The actor of a reload that follows a change on disk (noticed by the watcher, or before a close)."""
POLL_S = 1.0


def effective_range(plan: Plan) -> dict[str, str | None]:
    """`{"from", "to"}` of a plan version: the periods it pays for, both inclusive; None where open."""
    effective = plan.effective
    return {"from": None if effective is None else effective.first, "to": None if effective is None else effective.last}


@dataclass(frozen=True)
class Refusal:
    """A reload that was refused: when, and every problem found."""

    refused_at: datetime
    errors: tuple[str, ...]


class PlansInForce:
    """The plans in force (`current`), the directory they come from and what its reloads did.

    `took_effect` gives, per version (content hash), when it came into force: a version that stays the same
    through reloads keeps its time. `refusal` is the last refused reload, until one is accepted. A reload is
    audited before it takes effect, so no change of the plans in force lacks its audit entry: while the
    audit log cannot be written, the plans stay and the watcher tries again (a refusal's errors show at once).
    """

    def __init__(self, directory: Path, files: dict[str, str], clock: Clock = utc_now) -> None:
        self.directory = directory
        self.current = parse_plans(files)
        self.directory_hash = directory_hash(files)
        self.loaded_at = clock()
        self.took_effect = dict.fromkeys((plan.hash for plan in self.current.plans), self.loaded_at)
        self.refusal: Refusal | None = None
        self.audit: AuditLog | None = None  # set where there is a database (`serving_plans`)
        self._clock = clock
        self._seen: str | None = self.directory_hash  # of the last reload, accepted or refused (None: unreadable)
        self._followers: list[Callable[[PlanSet], None]] = []
        self._lock = asyncio.Lock()

    @classmethod
    def load(cls, directory: Path, clock: Clock = utc_now) -> PlansInForce:
        """The plans of `directory`; `PlanError` with every problem when it does not parse or validate."""
        return cls(directory, read_plan_files(directory), clock)

    def follow(self, follower: Callable[[PlanSet], None]) -> Callable[[], None]:
        """Call `follower(plans)` with the plans in force now, then with the new plans at each accepted reload;
        returns what stops it."""
        follower(self.current)
        self._followers.append(follower)
        return lambda: self._followers.remove(follower)

    async def reload(self, actor: str) -> PlanSet:
        """Re-read the directory and put its plans in force; `PlanError` with every problem when it does not
        parse or validate, the plans in force unchanged. Either way the attempt is audited as done by `actor`."""
        async with self._lock:
            return await self._reload(actor, changed_only=False)

    async def refresh(self, actor: str = FILE_WATCH) -> None:
        """Reload when the directory changed since the last reload, accepted or refused; a refusal is recorded
        and audited, not raised: the plans in force stay."""
        async with self._lock:
            with contextlib.suppress(PlanError):
                await self._reload(actor, changed_only=True)

    async def _reload(self, actor: str, changed_only: bool) -> PlanSet:
        try:
            files = read_plan_files(self.directory)
        except PlanError as error:
            if changed_only and self._seen is None:  # as unreadable as at the last refusal
                return self.current
            await self._refuse(actor, None, error)
            raise
        content_hash = directory_hash(files)
        if changed_only and content_hash == self._seen:
            return self.current
        try:
            plans = parse_plans(files)
        except PlanError as error:
            await self._refuse(actor, content_hash, error)
            raise
        await self._accept(actor, content_hash, plans)
        return plans

    @contextlib.asynccontextmanager
    async def watching(self, every_s: float = POLL_S) -> AsyncIterator[None]:
        """While the block runs, reload the plans whenever a file of the directory changes."""

        async def poll() -> None:
            while True:
                await asyncio.sleep(every_s)
                try:
                    await self.refresh()
                except Exception as error:  # the audit log is away, say: the next poll tries again
                    log.warning("reloading the plans of %s failed, trying again: %r", self.directory, error)

        async with running(poll(), "plans-watch"):
            yield

    async def _accept(self, actor: str, content_hash: str, plans: PlanSet) -> None:
        versions = [{"plan": plan.plan, "effective": effective_range(plan), "hash": plan.hash} for plan in plans.plans]
        now = self._clock()
        await self._audited(actor, "plans.reload", content_hash, {"versions": versions}, now)
        self.took_effect = {plan.hash: self.took_effect.get(plan.hash, now) for plan in plans.plans}
        self.current, self.directory_hash, self.loaded_at = plans, content_hash, now
        self.refusal, self._seen = None, content_hash
        for follower in self._followers:
            follower(plans)
        log.info("plans of %s reloaded by %s: %d versions (%s)", self.directory, actor, len(versions), content_hash)

    async def _refuse(self, actor: str, content_hash: str | None, error: PlanError) -> None:
        """The errors show at once; the directory counts as seen only once the refusal is audited, so the
        watcher tries until it is."""
        now = self._clock()
        self.refusal = Refusal(now, tuple(error.problems))
        await self._audited(actor, "plans.reload_refused", content_hash, {"errors": error.problems}, now)
        self._seen = content_hash
        log.warning("plans of %s refused (%s): the plans in force stay:\n%s", self.directory, actor, error)

    async def _audited(self, actor: str, action: str, content_hash: str | None, detail: dict,
                       at: datetime) -> None:
        if self.audit is not None:
            await self.audit.append(actor=actor, action=action, content_hash=content_hash, detail=detail, at=at)


@contextlib.asynccontextmanager
async def serving_plans(app: FastAPI, plans: PlansInForce,
                        sessions: async_sessionmaker[AsyncSession] | None) -> AsyncIterator[PlansInForce]:
    """Give the plans routes `plans` (`app.state.plans`), audit its reloads in the database of `sessions` (a
    service without a database only logs them) and watch its directory while the block runs."""
    app.state.plans = plans
    plans.audit = None if sessions is None else AuditLog(sessions)
    async with plans.watching():
        yield plans

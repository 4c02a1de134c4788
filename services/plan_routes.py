"""The plans routes (SPEC §4, §6): the plans in force with their versions, the last refused reload, reload now.

Included by every app that evaluates plans (`convergence up`, the query and the settlement run alone); each
reads the process's `PlansInForce` from `app.state.plans` (`services.plans.serving_plans`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from services.auth import ActorDep, require, require_token
from services.plans import PlansInForce, effective_range
from services.web import ApiError, ErrorBody, errors
from shared.plans import AppliesTo, Plan, PlanError

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["plans"], responses=errors(401, 403))


async def get_plans(request: Request) -> PlansInForce:
    return request.app.state.plans


PlansDep = Annotated[PlansInForce, Depends(get_plans)]


class EffectiveRange(BaseModel):
    """The periods a version pays for, both inclusive, of the plan's `period` kind; null where open."""

    model_config = ConfigDict(populate_by_name=True)
    first: str | None = Field(alias="from", examples=["2026-04"])
    to: str | None


class PlanAppliesTo(BaseModel):
    """Whom the version pays: parties of a `kind` (and `role`, `tier` when given), and any listed `parties`."""

    kind: str | None
    role: str | None
    tier: str | None
    parties: list[str] | None

    @classmethod
    def of(cls, applies_to: AppliesTo) -> PlanAppliesTo:
        return cls(kind=None if applies_to.kind is None else applies_to.kind.value, role=applies_to.role,
                   tier=applies_to.tier, parties=applies_to.parties)


class PlanVersion(BaseModel):
    plan: str
    period: str
    currency: str
    effective: EffectiveRange
    hash: str = Field(description="the version's content hash, as frozen statements record it")
    took_effect_at: datetime = Field(description="when this version (this hash) came into force here")
    applies_to: PlanAppliesTo


class PlansOut(BaseModel):
    """The plans in force: every version of every plan, and the scorecards."""

    directory_hash: str = Field(description="sha256 over the plans directory's file names and contents")
    loaded_at: datetime = Field(description="when these plans were loaded (the last accepted reload)")
    plans: list[PlanVersion] = Field(description="by plan, then by the first period each version pays for")
    scorecards: list[str]

    @classmethod
    def of(cls, in_force: PlansInForce) -> PlansOut:
        versions = [PlanVersion(plan=plan.plan, period=plan.period, currency=plan.currency,
                                effective=EffectiveRange.model_validate(effective_range(plan)), hash=plan.hash,
                                took_effect_at=in_force.took_effect[plan.hash],
                                applies_to=PlanAppliesTo.of(plan.applies_to))
                    for plan in sorted(in_force.current.plans, key=_first_period)]
        return cls(directory_hash=in_force.directory_hash, loaded_at=in_force.loaded_at, plans=versions,
                   scorecards=sorted(card.scorecard for card in in_force.current.scorecards))


def _first_period(plan: Plan) -> tuple[str, bool, int]:
    """By plan, then by the start of its first period (open-ended first)."""
    start = None if plan.effective is None else plan.effective.span()[0]
    return plan.plan, start is not None, start or 0


class PlanErrors(BaseModel):
    """The last refused reload, while no reload was accepted after it; else `refused_at` null and no errors."""

    refused_at: datetime | None
    errors: list[str] = Field(description="every problem, as `file: where: why`")


class PlansInvalid(ErrorBody):
    """A 422 `plans_invalid`: the reload was refused and the plans in force stay; every problem found."""

    errors: list[str] = Field(description="every problem, as `file: where: why`")


@router.get("/plans", response_model=PlansOut, dependencies=[Depends(require_token)])
async def list_plans(plans: PlansDep) -> PlansOut:
    """The plans in force: each version's range, content hash and the time it took effect."""
    return PlansOut.of(plans)


@router.get("/plans/errors", response_model=PlanErrors, dependencies=[Depends(require_token)])
async def plan_errors(plans: PlansDep) -> PlanErrors:
    """The errors of the last refused reload (none once a later reload was accepted)."""
    refusal = plans.refusal
    return PlanErrors(refused_at=None, errors=[]) if refusal is None else PlanErrors(
        refused_at=refusal.refused_at, errors=list(refusal.errors))


_REFUSED: dict[int | str, dict[str, Any]] = {422: {**errors(422, model=PlansInvalid)[422],
                  "description": "The plans directory does not parse or validate: refused, the plans in force stay."}}


@router.post("/plans/reload", response_model=PlansOut, dependencies=[Depends(require("plans:write"))],
             responses=_REFUSED | errors(503))
async def reload_plans(plans: PlansDep, actor: ActorDep) -> PlansOut:
    """Re-read the plans directory now; a directory that does not parse or validate is refused (422) with every
    error, and the plans in force stay. Accepted or refused, the reload is audited."""
    try:
        await plans.reload(actor)
    except PlanError as error:
        raise ApiError(422, f"the plans directory was refused ({len(error.problems)} problems); the plans in force "
                       "stay", code="plans_invalid", extra={"errors": error.problems}) from None
    return PlansOut.of(plans)

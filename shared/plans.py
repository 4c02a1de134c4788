"""Plans and scorecards as code (SPEC §4, §6): YAML documents parsed exactly and validated precisely."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from shared.events import PartyKind
from shared.fold import Party
from shared.measures import CountName, RatioName, SumName
from shared.money import parse_decimal
from shared.periods import WindowName

__all__ = ["Plan", "PlanError", "PlanSet", "Scorecard", "parse_plans"]

Number = Annotated[Decimal, BeforeValidator(parse_decimal)]
MeasureName = Literal[SumName, CountName, RatioName]
AmountMeasure = Literal[SumName, CountName]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Condition(_Spec):
    measure: MeasureName
    window: WindowName = "period"
    min: Number | None = None
    max: Number | None = None
    scope: Literal["self", "team"] = "self"


class Tier(_Spec):
    upto: Number | None = None
    rate: Number


class Multiplier(_Spec):
    factor: Number
    when: list[Condition] = Field(min_length=1)


class _Component(_Spec):
    name: Annotated[str, Field(min_length=1)]


class TieredRate(_Component):
    type: Literal["tiered_rate"]
    base: AmountMeasure
    mode: Literal["marginal", "retroactive"] = "marginal"
    tiers: list[Tier] = Field(min_length=1)
    gate: Condition | None = None
    cap: Number | None = None

    @model_validator(mode="after")
    def _bands_ascend(self) -> TieredRate:
        edges = [tier.upto for tier in self.tiers[:-1] if tier.upto is not None]
        if len(edges) < len(self.tiers) - 1:
            raise ValueError("every tier but the last needs `upto`")
        if self.tiers[-1].upto is not None:
            raise ValueError("the last tier is open-ended: leave out its `upto`")
        if any(b <= a for a, b in pairwise(edges)):
            raise ValueError("tier `upto` values must increase")
        return self


class Bonus(_Component):
    type: Literal["bonus"]
    amount: Number
    when: list[Condition] = Field(min_length=1)


class PerUnit(_Component):
    type: Literal["per_unit"]
    base: AmountMeasure
    rate: Number
    multiplier: Multiplier | None = None


class Override(_Component):
    type: Literal["override"]
    base: AmountMeasure
    rate: Number


class Rate(_Component):
    type: Literal["rate"]
    base: AmountMeasure
    rate: Number


class Level(_Spec):
    min: Number
    name: str
    multiplier: Number


class PointTiers(_Spec):
    measure: MeasureName
    window: WindowName = "365d"
    levels: list[Level] = Field(min_length=1)


class Points(_Component):
    type: Literal["points"]
    base: AmountMeasure
    per_unit: Number
    tiers: PointTiers | None = None


Component = Annotated[TieredRate | Bonus | PerUnit | Override | Rate | Points, Field(discriminator="type")]


class AppliesTo(_Spec):
    kind: PartyKind | None = None
    role: str | None = None
    tier: str | None = None
    parties: list[str] | None = None

    @model_validator(mode="after")
    def _selects_someone(self) -> AppliesTo:
        if self.kind is None and not self.parties:
            raise ValueError("give a `kind` or a list of `parties`")
        return self

    def matches(self, party_id: str, party: Party) -> bool:
        if self.parties is not None and party_id in self.parties:
            return True
        if self.kind is None or party.kind != self.kind.value:
            return False
        return (self.role is None or party.role == self.role) and (self.tier is None or party.tier == self.tier)


class Quota(_Spec):
    model_config = ConfigDict(frozen=True, extra="allow")
    default: Number | None = None

    @model_validator(mode="after")
    def _per_party_numbers(self) -> Quota:
        for party, value in (self.model_extra or {}).items():
            try:
                parse_decimal(value)
            except ValueError as error:
                raise ValueError(f"quota of {party}: {error}") from None
        return self


def _as_quota(value: object) -> object:
    """`quota: 100000` is the default quota of every party."""
    return value if value is None or isinstance(value, dict) else {"default": value}


class Clawback(_Spec):
    window_days: Annotated[int, Field(ge=0)]


class Plan(_Spec):
    plan: Annotated[str, Field(min_length=1)]
    applies_to: AppliesTo
    period: Literal["month", "quarter"] = "month"
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    quota: Annotated[Quota | None, BeforeValidator(_as_quota)] = None
    components: list[Component] = Field(min_length=1)
    clawback: Clawback | None = None
    hash: str = ""

    @model_validator(mode="after")
    def _names_unique(self) -> Plan:
        names = [component.name for component in self.components]
        if len(names) != len(set(names)):
            raise ValueError(f"component names must be unique, got {names}")
        return self

    def quota_for(self, party_id: str) -> Decimal | None:
        if self.quota is None:
            return None
        extra = self.quota.model_extra or {}
        return parse_decimal(extra[party_id]) if party_id in extra else self.quota.default


class Metric(_Spec):
    measure: MeasureName
    window: WindowName = "period"
    target: Number
    weight: Number = Decimal(1)


class Scorecard(_Spec):
    scorecard: Annotated[str, Field(min_length=1)]
    applies_to: AppliesTo
    metrics: list[Metric] = Field(min_length=1)
    cap: Number | None = None


class PlanSet(BaseModel):
    """The plans and scorecards in force."""

    model_config = ConfigDict(frozen=True)
    plans: tuple[Plan, ...] = ()
    scorecards: tuple[Scorecard, ...] = ()

    def plans_for(self, party_id: str, party: Party, period_kind: str | None = None) -> list[Plan]:
        return [plan for plan in self.plans if plan.applies_to.matches(party_id, party)
                and (period_kind is None or plan.period == period_kind)]

    def scorecards_for(self, party_id: str, party: Party) -> list[Scorecard]:
        return [card for card in self.scorecards if card.applies_to.matches(party_id, party)]

    def scorecard(self, name: str) -> Scorecard | None:
        return next((card for card in self.scorecards if card.scorecard == name), None)


class PlanError(ValueError):
    """Plans that do not parse or validate: every problem as `file: where: why`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _ExactLoader(yaml.SafeLoader):
    """YAML whose numbers with a fraction become `Decimal`, never float."""


def _decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = loader.construct_scalar(node).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not a finite number",
                                                node.start_mark) from None


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


def _canonical(document: object) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)


def parse_plans(files: dict[str, str]) -> PlanSet:
    """Parse `{file name: YAML text}` (each may hold several `---` documents) into a `PlanSet`."""
    problems: list[str] = []
    plans: list[Plan] = []
    scorecards: list[Scorecard] = []
    for name, text in sorted(files.items()):
        try:
            documents = [doc for doc in yaml.load_all(text, Loader=_ExactLoader) if doc is not None]
        except yaml.YAMLError as error:
            problems.append(f"{name}: not valid YAML: {error}")
            continue
        for number, document in enumerate(documents, start=1):
            where = f"{name}: document {number}"
            if not isinstance(document, dict) or not ({"plan", "scorecard"} & document.keys()):
                problems.append(f"{where}: expected a mapping with a `plan` or a `scorecard` key")
                continue
            model = Plan if "plan" in document else Scorecard
            try:
                if model is Plan:
                    digest = hashlib.sha256(_canonical(document).encode()).hexdigest()
                    plans.append(Plan.model_validate({**document, "hash": f"sha256:{digest}"}))
                else:
                    scorecards.append(Scorecard.model_validate(document))
            except ValidationError as error:
                label = document.get("plan") or document.get("scorecard")
                for item in error.errors(include_url=False):
                    path = ".".join(str(part) for part in item["loc"]) or "document"
                    problems.append(f"{where} ({label}): {path}: {item['msg'].removeprefix('Value error, ')}")
    for label, names in (("plan", [p.plan for p in plans]), ("scorecard", [s.scorecard for s in scorecards])):
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(f"{label} names must be unique across files: {', '.join(repeated)} repeated")
    if problems:
        raise PlanError(problems)
    return PlanSet(plans=tuple(plans), scorecards=tuple(scorecards))

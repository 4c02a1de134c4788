"""Plans and scorecards as code (SPEC §4, §6): YAML documents parsed exactly and validated precisely."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from shared.events import PartyKind
from shared.fold import Party
from shared.measures import CountName, RatioName, SumName
from shared.money import parse_decimal
from shared.periods import Kind, Period, WindowName

__all__ = ["Effective", "Plan", "PlanError", "PlanSet", "Scorecard", "parse_plans"]


def _not_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


Number = Annotated[Decimal, BeforeValidator(parse_decimal)]
Amount = Annotated[Decimal, BeforeValidator(parse_decimal), AfterValidator(_not_negative)]
"""What a plan pays or counts with: an amount, rate, quota, cap, factor or multiplier (never negative)."""
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
    upto: Amount | None = None
    rate: Amount


class Multiplier(_Spec):
    factor: Amount
    when: list[Condition] = Field(min_length=1)


class _Component(_Spec):
    name: Annotated[str, Field(min_length=1)]


class TieredRate(_Component):
    type: Literal["tiered_rate"]
    base: AmountMeasure
    mode: Literal["marginal", "retroactive"] = "marginal"
    tiers: list[Tier] = Field(min_length=1)
    gate: Condition | None = None
    cap: Amount | None = None

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
    amount: Amount
    when: list[Condition] = Field(min_length=1)


class PerUnit(_Component):
    type: Literal["per_unit"]
    base: AmountMeasure
    rate: Amount
    multiplier: Multiplier | None = None


class Override(_Component):
    type: Literal["override"]
    base: AmountMeasure
    rate: Amount


class Rate(_Component):
    type: Literal["rate"]
    base: AmountMeasure
    rate: Amount


class Level(_Spec):
    min: Number
    name: str
    multiplier: Amount


class PointTiers(_Spec):
    measure: MeasureName
    window: WindowName = "365d"
    levels: list[Level] = Field(min_length=1)


class Points(_Component):
    type: Literal["points"]
    base: AmountMeasure
    per_unit: Amount
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
    default: Amount | None = None

    @model_validator(mode="after")
    def _per_party_numbers(self) -> Quota:
        for party, value in (self.model_extra or {}).items():
            try:
                _not_negative(parse_decimal(value))
            except ValueError as error:
                raise ValueError(f"quota of {party}: {error}") from None
        return self


def _as_quota(value: object) -> object:
    """`quota: 100000` is the default quota of every party."""
    return value if value is None or isinstance(value, dict) else {"default": value}


class Clawback(_Spec):
    window_days: Annotated[int, Field(ge=0)]


class Effective(_Spec):
    """The periods a plan version pays for, both ends inclusive; an end left out is open."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    first: Annotated[str | None, Field(alias="from")] = None
    last: Annotated[str | None, Field(alias="to")] = None

    def span(self) -> tuple[int | None, int | None]:
        """[start of `from`, end of `to`) in epoch microseconds; None where open."""
        return (None if self.first is None else Period.parse(self.first).start_ts,
                None if self.last is None else Period.parse(self.last).end_ts)

    def __str__(self) -> str:
        return f"{self.first or '…'} to {self.last or '…'}"


class Plan(_Spec):
    plan: Annotated[str, Field(min_length=1)]
    effective: Effective | None = None
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

    @model_validator(mode="after")
    def _range_of_own_periods(self) -> Plan:
        ends = [] if self.effective is None else [
            (side, text) for side, text in (("from", self.effective.first), ("to", self.effective.last)) if text]
        for side, text in ends:
            kind = Period.parse(text).kind  # raises ValueError on a text that is no period
            if kind != self.period:
                raise ValueError(f"effective.{side}: {text} is a {kind}, but the plan is paid by {self.period}")
        if len(ends) == 2 and Period.parse(ends[0][1]) > Period.parse(ends[1][1]):
            raise ValueError(f"effective: from {ends[0][1]} is after to {ends[1][1]}")
        return self

    def covers(self, period: Period) -> bool:
        """Whether this version pays for `period` (of the plan's kind, inside its effective range)."""
        if period.kind != self.period:
            return False
        start, end = (None, None) if self.effective is None else self.effective.span()
        return (start is None or start <= period.start_ts) and (end is None or period.end_ts <= end)

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

    def plans_for(self, party_id: str, party: Party, period: Period | None = None) -> list[Plan]:
        """The plan versions that pay `party` (its attributes as they apply) for `period`; without a period,
        every version that would apply to such a party in some period."""
        return [plan for plan in self.plans if plan.applies_to.matches(party_id, party)
                and (period is None or plan.covers(period))]

    def version_for(self, name: str, period: Period) -> Plan | None:
        """The version of plan `name` that pays for `period`, if any."""
        return next((plan for plan in self.plans if plan.plan == name and plan.covers(period)), None)

    @property
    def period_kinds(self) -> list[Kind]:
        """The kinds of period (month, quarter) some plan pays by."""
        return sorted({plan.period for plan in self.plans})

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


def _overlaps(plans: list[Plan], places: list[str]) -> list[str]:
    """One problem per pair of versions of a plan whose effective ranges share a period (SPEC §4)."""
    problems = []
    versions: dict[str, list[tuple[Plan, str]]] = {}
    for plan, where in zip(plans, places, strict=True):
        versions.setdefault(plan.plan, []).append((plan, where))
    for name, found in versions.items():
        for index, (one, here) in enumerate(found):
            for other, there in found[index + 1:]:
                if _overlap(one, other):
                    problems.append(f"{here} ({name}): effective: versions of plan {name} overlap: "
                                    f"{one.effective or 'always'} here and {other.effective or 'always'} in {there}; "
                                    f"give each version its own periods (effective: {{from, to}})")
    return problems


def _overlap(one: Plan, other: Plan) -> bool:
    (a, b), (c, d) = (plan.effective.span() if plan.effective else (None, None) for plan in (one, other))
    return (a is None or d is None or a < d) and (c is None or b is None or c < b)


def parse_plans(files: dict[str, str]) -> PlanSet:
    """Parse `{file name: YAML text}` (each may hold several `---` documents) into a `PlanSet`."""
    problems: list[str] = []
    plans: list[Plan] = []
    places: list[str] = []  # where each plan is, for the errors that name two of them
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
                    places.append(where)
                else:
                    scorecards.append(Scorecard.model_validate(document))
            except ValidationError as error:
                label = document.get("plan") or document.get("scorecard")
                for item in error.errors(include_url=False):
                    path = ".".join(str(part) for part in item["loc"]) or "document"
                    problems.append(f"{where} ({label}): {path}: {item['msg'].removeprefix('Value error, ')}")
    names = [card.scorecard for card in scorecards]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        problems.append(f"scorecard names must be unique across files: {', '.join(repeated)} repeated")
    problems.extend(_overlaps(plans, places))
    if problems:
        raise PlanError(problems)
    return PlanSet(plans=tuple(plans), scorecards=tuple(scorecards))

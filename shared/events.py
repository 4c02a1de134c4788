"""The event contract (SPEC §2): CloudEvents 1.0 envelopes and the typed `data` of every event type."""

from __future__ import annotations

import base64
import json
import re
import reprlib
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.money import ZERO, parse_bounded
from shared.periods import ts_of

__all__ = [
    "DATA_MODELS",
    "EARLIEST",
    "LATEST",
    "MAX_ID_LENGTH",
    "CaseResolved",
    "Event",
    "EventError",
    "PartyKind",
    "PartyRegistered",
    "ReferralMade",
    "RetentionChurned",
    "RetentionRenewed",
    "SaleClosed",
    "SaleReversed",
    "SurveyResponded",
    "family_of",
    "load_json",
    "parse_event",
]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)
# SPEC §2.1: the range of event times, and the longest id.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)
MAX_ID_LENGTH = 256


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(raw: bytes | str) -> Any:
    """Decode JSON with every non-integer number as an exact `Decimal`; raise ValueError when invalid."""
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:  # decode errors, NaN/Infinity, absurd nesting
        raise ValueError(f"not valid JSON: {error}") from None


def _non_negative(value: object) -> Decimal:
    amount = parse_bounded(value)
    if amount < ZERO:
        raise ValueError("must not be negative")
    return amount


Money = Annotated[Decimal, BeforeValidator(_non_negative)]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, strict=True)]
OptionalId = Annotated[str, Field(max_length=MAX_ID_LENGTH)] | None


class PartyKind(StrEnum):
    WORKFORCE = "workforce"
    CUSTOMER = "customer"
    PARTNER = "partner"
    PROVIDER = "provider"


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)


class _Priced(_Data):
    @field_validator("currency", check_fields=False)
    @classmethod
    def _settlement_currency(cls, value: str, info: ValidationInfo) -> str:
        expected = (info.context or {}).get("currency", "USD")
        if value != expected:
            raise ValueError(f"currency {value!r} is not the settlement currency {expected!r}")
        return value


class PartyRegistered(_Data):
    party_id: Id
    kind: PartyKind
    name: str | None = None
    role: str | None = None
    manager_id: OptionalId = None
    tier: str | None = None


class Credit(_Data):
    party_id: Id
    share: Annotated[Decimal, BeforeValidator(parse_bounded)]

    @field_validator("share")
    @classmethod
    def _in_unit_interval(cls, share: Decimal) -> Decimal:
        if not ZERO < share <= 1:
            raise ValueError("share must be in (0, 1]")
        return share


class SaleClosed(_Priced):
    order_id: Id
    customer_id: Id
    amount: Money
    currency: Id
    margin: Money | None = None
    product: str | None = None
    motion: Literal["new", "upsell", "cross_sell"] = "new"
    credits: Annotated[tuple[Credit, ...], Field(min_length=1)]
    partner_id: OptionalId = None
    referral_id: OptionalId = None

    @field_validator("credits")
    @classmethod
    def _shares_sum_to_one(cls, credits: tuple[Credit, ...]) -> tuple[Credit, ...]:
        total = sum((c.share for c in credits), ZERO)
        if total != 1:
            raise ValueError(f"shares must sum to exactly 1, got {total}")
        merged: dict[str, Decimal] = {}
        for credit in credits:  # a party named twice is one credited party with the summed share
            merged[credit.party_id] = merged.get(credit.party_id, ZERO) + credit.share
        if len(merged) == len(credits):
            return credits
        return tuple(Credit(party_id=party, share=share) for party, share in merged.items())


class SaleReversed(_Data):
    order_id: Id
    amount: Money | None = None
    reason: str | None = None


class CaseResolved(_Data):
    case_id: Id
    customer_id: Id
    resolver_id: Id
    first_contact: StrictBool
    handle_minutes: Money | None = None


class SurveyResponded(_Data):
    survey_id: Id
    customer_id: Id
    about_id: Id
    nps: Annotated[StrictInt, Field(ge=0, le=10)] | None = None
    csat: Annotated[StrictInt, Field(ge=1, le=5)] | None = None

    @model_validator(mode="after")
    def _some_answer(self) -> SurveyResponded:
        if self.nps is None and self.csat is None:
            raise ValueError("at least one of nps and csat is required")
        return self


class ReferralMade(_Data):
    referral_id: Id
    referrer_id: Id
    prospect_id: Id
    provider_id: OptionalId = None


class RetentionRenewed(_Data):
    contract_id: Id
    customer_id: Id
    arr: Money


class RetentionChurned(RetentionRenewed):
    reason: str | None = None


DATA_MODELS: dict[str, type[_Data]] = {
    "party.registered": PartyRegistered,
    "sale.closed": SaleClosed,
    "sale.reversed": SaleReversed,
    "service.case_resolved": CaseResolved,
    "survey.responded": SurveyResponded,
    "referral.made": ReferralMade,
    "retention.renewed": RetentionRenewed,
    "retention.churned": RetentionChurned,
}

_FAMILIES = {"party": "parties", "sale": "sales", "service": "service", "survey": "service",
             "referral": "referrals", "retention": "retention"}


def family_of(event_type: str) -> str:
    """The inbound topic family (`events.<family>`) an event type belongs to."""
    return _FAMILIES[event_type.split(".", 1)[0]]


def _utc(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    shown = reprlib.repr(value)
    if not _RFC3339.fullmatch(value):
        raise ValueError(f"{shown} is not an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SS[.frac]Z or ±HH:MM)")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{shown} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{shown} has no UTC offset")
    try:
        moment = parsed.astimezone(UTC)
    except OverflowError:  # the offset moves it before year 1 or after year 9999
        moment = None
    if moment is None or not EARLIEST <= moment <= LATEST:
        raise ValueError(f"{shown} must be between 1970-01-01T00:00:00Z and 9999-12-31T00:00:00Z")
    return moment


class Event(BaseModel):
    """A validated CloudEvent; `time` is UTC and `ts` its epoch microseconds (the fold's clock)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    specversion: Literal["1.0"]
    id: Id
    source: Id
    type: Annotated[str, Field(strict=True)]
    time: Annotated[datetime, BeforeValidator(_utc)]
    data: Any
    ts: int = Field(default=0, exclude=True, description="event time in epoch microseconds (derived)")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in DATA_MODELS:
            raise ValueError(f"unknown event type {value!r}")
        return value

    @field_validator("data", mode="before")
    @classmethod
    def _typed_data(cls, value: Any, info: ValidationInfo) -> Any:
        event_type = info.data.get("type")
        if event_type is None:
            return value  # the type's own error is reported
        if value is None:
            value = {}
        return DATA_MODELS[event_type].model_validate(value, context=info.context)

    @property
    def key(self) -> tuple[str, str]:
        """The dedup key: `id` + `source` identify an event."""
        return (self.source, self.id)

    @model_validator(mode="after")
    def _epoch(self) -> Event:
        object.__setattr__(self, "ts", ts_of(self.time))  # derived once: the fold reads it on every event
        return self

    def to_json_dict(self) -> dict[str, Any]:
        """The structured-mode CloudEvent, money as strings, time in UTC."""
        return {"specversion": "1.0", "id": self.id, "source": self.source, "type": self.type,
                "time": self.time.isoformat().replace("+00:00", "Z"),
                "data": self.data.model_dump(mode="json", exclude_none=True)}


class EventError(ValueError):
    """An event that breaks the contract; the message names the field and the reason."""


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "event"
        reason = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {reason}")
    return "; ".join(parts)


def _decoded(encoded: object) -> Any:
    """The JSON payload of `data_base64` (strict base64 of UTF-8 JSON), numbers as `Decimal`."""
    if not isinstance(encoded, str):
        raise EventError("data_base64: must be a base64 string")
    try:
        text = base64.b64decode(encoded, validate=True).decode()
    except ValueError:  # binascii.Error, non-ASCII text, UnicodeDecodeError
        raise EventError("data_base64: not valid base64 of UTF-8 text") from None
    try:
        return load_json(text)
    except ValueError as error:
        raise EventError(f"data_base64: {error}") from None


def _inline_data(raw: dict) -> dict:
    """`raw` with a `data_base64` payload (CloudEvents JSON format) decoded into `data`."""
    if "data_base64" not in raw:
        return raw
    if "data" in raw:
        raise EventError("data_base64: an event carries data or data_base64, not both")
    inlined = {name: value for name, value in raw.items() if name != "data_base64"}
    inlined["data"] = _decoded(raw["data_base64"])
    return inlined


def parse_event(raw: object, currency: str = "USD") -> Event:
    """Validate one structured-mode CloudEvent (already JSON-decoded, numbers as `Decimal`).

    Raises only EventError, whatever `raw` is.
    """
    if not isinstance(raw, dict):
        raise EventError("event: must be a JSON object")
    try:
        return Event.model_validate(_inline_data(raw), context={"currency": currency})
    except ValidationError as error:
        raise EventError(_describe(error)) from None

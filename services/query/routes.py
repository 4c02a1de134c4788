"""The query API (SPEC §6): parties, live scorecards and earnings, relationships, leaderboards.

Routes are `async def` on purpose: they run on the event loop, which is where the read model applies
its batches, so a request never reads the fold while a batch is half applied. A scorecard is built once
per party, period and day and then served from the read model's memo until a record it reads changes.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_right
from datetime import datetime
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request

from services.auth import require
from services.query import live
from services.query.deps import Reading, ReadingDep, TimedRoute, get_now
from services.query.read_model import ReadModel
from services.query.schemas import (
    Earnings,
    ExplainedEarnings,
    History,
    HistoryPoint,
    Leaderboard,
    PartyMeasures,
    PartyOut,
    PartyPage,
    PartySummary,
    RelationshipMeasures,
    RelationshipOut,
    RelationshipPage,
    ReportSpan,
    ScorecardOut,
    Team,
    TeamMember,
)
from services.web import ApiError, PartyPath, errors
from shared.events import MAX_ID_LENGTH, PartyKind
from shared.fold import Party
from shared.payouts import evaluate
from shared.periods import WINDOWS, Period, day_of, ts_of
from shared.settlement import attributes_for

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["query"], dependencies=[Depends(require("scorecards:read"))],
                   responses=errors(401, 403, 404, 422), route_class=TimedRoute)

WindowQuery = Annotated[Literal[WINDOWS], Query(description="`period` or a rolling `30d`, `90d`, `365d`")]  # type: ignore[valid-type]
ScorecardPath = Annotated[str, Path(examples=["ae-scorecard"])]
CURSOR_PATTERN = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$"  # URL-safe base64, padded
NowDep = Annotated[datetime, Depends(get_now)]
Live = TypeVar("Live", ScorecardOut, ExplainedEarnings)


def _party(model: ReadModel, party_id: str) -> Party:
    party = model.fold.parties.get(party_id)
    if party is None:
        raise ApiError(404, f"unknown party {party_id!r}")
    return party


def _measured_party(model: ReadModel, party_id: str) -> Party | None:
    """The party, or None for one that only has relationships (e.g. an unregistered resolver); else 404."""
    party = model.fold.parties.get(party_id)
    if party is None and party_id not in model.fold.relationships:
        raise ApiError(404, f"unknown party {party_id!r}")
    return party


def _cursor(counterparty_id: str) -> str:
    return base64.urlsafe_b64encode(counterparty_id.encode()).decode()


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError):
        raise ApiError(400, "query.cursor: not a cursor this API returned") from None


@router.get("/parties")
async def list_parties(request: Request, now: NowDep, kind: Annotated[PartyKind | None, Query(
                           description="only parties of this kind (as in force today)")] = None,
                       after: Annotated[str | None, Query(max_length=MAX_ID_LENGTH,
                                                          description="the party id after which to start")] = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> PartyPage:
    """The known parties by id, with their attributes in force today, one page at a time."""
    model: ReadModel = request.app.state.read_model
    today = day_of(ts_of(now))
    ordered = sorted(model.fold.parties)
    page: list[PartySummary] = []
    for party_id in ordered[0 if after is None else bisect_right(ordered, after):]:
        summary = PartySummary.of(party_id, model.fold.parties[party_id].on(today))
        if kind is None or summary.kind == kind:
            if len(page) == limit:
                return PartyPage(parties=page, next_after=page[-1].party_id)
            page.append(summary)
    return PartyPage(parties=page, next_after=None)


@router.get("/parties/{party_id}")
async def get_party(party_id: PartyPath, read: ReadingDep) -> PartyOut:
    """A party's attributes in force now (kind, role, manager, tier, name) and its registrations, the plan versions
    paying it for the current periods (by its attributes on their last days) and its scorecards."""
    model, now = read.model, read.now
    party = _party(model, party_id)
    plans = model.plans
    current = [Period.containing(ts_of(now), kind) for kind in plans.period_kinds]
    paying = [plan for period in current for plan in plans.plans_for(party_id, attributes_for(party, period), period)]
    today = party.on(day_of(ts_of(now)))
    cards = [card.scorecard for card in plans.scorecards_for(party_id, today)]
    return PartyOut.of(party_id, party, today, paying, cards)


@router.get("/parties/{party_id}/measures")
async def get_party_measures(party_id: PartyPath, read: ReadingDep, window: WindowQuery = "period",
                             scope: Annotated[Literal["self", "team"], Query(
                                 description="`team`: summed over the party's direct reports")] = "self",
                             ) -> PartyMeasures:
    """A party's measures over a window of a period: the roll-up of its relationships, or of its team's."""
    model, now = read.model, read.now
    period = read.period or live.default_period(model.plans, party_id, _measured_party(model, party_id), now)
    values, events = live.view_of(model, period, now).measures(party_id, window, scope)
    return PartyMeasures.of(party_id, scope, str(period), window, live.as_of(period, now), values, events)


@router.get("/scorecards/{party_id}")
async def get_scorecard(party_id: PartyPath, read: ReadingDep) -> ScorecardOut:
    """A party's live scorecard and earnings so far; the period defaults to the current one of its plans' kind."""
    party = _party(read.model, party_id)
    return _scorecard(read, party_id, party,
                      read.period or live.default_period(read.model.plans, party_id, party, read.now))


def _scorecard(read: Reading, party_id: str, party: Party, period: Period) -> ScorecardOut:
    """The party's live scorecard and earnings in `period`, memoized."""
    model = read.model
    view = live.view_of(model, period, read.now)

    def build() -> ScorecardOut:
        earnings = Earnings.of(live.statement(model.plans, party_id, party, view), read.settings.currency)
        return ScorecardOut.of(party_id, attributes_for(party, period).kind, str(period),
                               live.as_of(period, read.now), live.scorecard(model.plans, party_id, party, view),
                               earnings)

    return _as_of_now(model.memo(party_id, ("scorecard", *live.live_key(view)), build), period, read.now)


def _as_of_now(result: Live, period: Period, now: datetime) -> Live:
    """A memoized live result with the `as_of` of now (it is memoized for the whole day its windows end)."""
    as_of = live.as_of(period, now)
    return result if result.as_of == as_of else result.model_copy(update={"as_of": as_of})


@router.get("/parties/{party_id}/earnings")
async def get_earnings(party_id: PartyPath, read: ReadingDep) -> ExplainedEarnings:
    """A party's live earnings line by line, with the measures behind each line and what its rule did with them:
    the band reached, the gate and conditions met or not, the cap hit, and how far the next band or level is.
    The period defaults to the current one of its plans' kind."""
    model = read.model
    party = _party(model, party_id)
    period = read.period or live.default_period(model.plans, party_id, party, read.now)
    view = live.view_of(model, period, read.now)

    def build() -> ExplainedEarnings:
        attributes = attributes_for(party, period)
        payouts = [payout for plan in model.plans.plans_for(party_id, attributes, period)
                   for payout in evaluate(plan, party_id, view)]
        return ExplainedEarnings.of(party_id, attributes.kind, str(period), live.as_of(period, read.now), payouts)

    return _as_of_now(model.memo(party_id, ("earnings", *live.live_key(view)), build), period, read.now)


@router.get("/parties/{party_id}/history")
async def get_history(party_id: PartyPath, read: ReadingDep,
                      periods: Annotated[int, Query(ge=1, le=36, description="how many periods")] = 12) -> History:
    """A party's live score and earnings in each of the `periods` periods up to `period` (default: the current one
    of its plans' kind), oldest first: what a chart of its last months draws."""
    model = read.model
    party = _party(model, party_id)
    chosen = [read.period or live.default_period(model.plans, party_id, party, read.now)]
    while len(chosen) < periods and (chosen[-1].year, chosen[-1].first_month) > (1, 1):  # none before 0001-01
        chosen.append(Period.containing(chosen[-1].start_ts - 1, chosen[-1].kind))
    cards = [_scorecard(read, party_id, party, period) for period in reversed(chosen)]
    return History(party_id=party_id, scorecard=cards[-1].scorecard,
                   periods=[HistoryPoint(period=card.period, as_of=card.as_of, score=card.score,
                                         totals=card.earnings.totals) for card in cards])


@router.get("/parties/{party_id}/team")
async def get_team(party_id: PartyPath, request: Request, now: NowDep) -> Team:
    """The parties that report to a manager on some day, by id: their attributes in force today, whether they report
    to it today, and the spans of days they do (effective-dated registrations, SPEC §2.3)."""
    model: ReadModel = request.app.state.read_model
    _party(model, party_id)
    today = day_of(ts_of(now))
    members = []
    for report, spans in sorted(model.direct_reports(party_id).items()):
        summary = PartySummary.of(report, model.fold.parties[report].on(today))
        members.append(TeamMember(**summary.model_dump(), reports_now=summary.manager_id == party_id,
                                  spans=[ReportSpan.of(span) for span in spans]))
    return Team(manager_id=party_id, as_of=now, members=members)


@router.get("/relationships/{party_id}/{counterparty_id}")
async def get_relationship(party_id: PartyPath, counterparty_id: PartyPath, read: ReadingDep,
                           window: WindowQuery = "period") -> RelationshipOut:
    """The measures of one relationship over a window of a period (default: the current one)."""
    model, now = read.model, read.now
    if counterparty_id not in model.fold.relationships.get(party_id, {}):
        raise ApiError(404, f"no relationship between {party_id!r} and {counterparty_id!r}")
    period = read.period or live.default_period(model.plans, party_id, model.fold.parties.get(party_id), now)
    view = live.view_of(model, period, now)
    values, events = live.relationship_measures(model.fold, party_id, counterparty_id, view, window)
    measured = RelationshipMeasures.of(counterparty_id, values, events)
    return RelationshipOut(party_id=party_id, period=str(period), window=window, as_of=live.as_of(period, now),
                           **measured.model_dump())


@router.get("/relationships/{party_id}", responses=errors(400))
async def list_relationships(party_id: PartyPath, read: ReadingDep, window: WindowQuery = "period",
                             limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                             cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN,
                                                                 description="`next` of the previous page")] = None,
                             ) -> RelationshipPage:
    """A party's relationships with their measures, by counterparty id, one page at a time."""
    model, now = read.model, read.now
    period = read.period or live.default_period(model.plans, party_id, _measured_party(model, party_id), now)
    view = live.view_of(model, period, now)
    page, more = live.counterparties(model.fold, party_id, _after(cursor), limit)
    relationships = [RelationshipMeasures.of(counterparty_id, *live.relationship_measures(
        model.fold, party_id, counterparty_id, view, window)) for counterparty_id in page]
    return RelationshipPage(party_id=party_id, period=str(period), window=window, as_of=live.as_of(period, now),
                            relationships=relationships, next=_cursor(page[-1]) if more else None)


@router.get("/leaderboards/{scorecard}")
async def get_leaderboard(scorecard: ScorecardPath, read: ReadingDep,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 10) -> Leaderboard:
    """The parties a scorecard applies to, ranked by live score (ties by party id); default: this month."""
    model, now = read.model, read.now
    card = model.plans.scorecard(scorecard)
    if card is None:
        raise ApiError(404, f"unknown scorecard {scorecard!r}")
    period = read.period or Period.containing(ts_of(now), "month")
    ranked = live.ranking(model, card, live.view_of(model, period, now))
    return Leaderboard.of(scorecard, str(period), live.as_of(period, now), ranked[:limit])

"""`/v1/dead-letters`: the refused messages, and submitting one again once its cause is fixed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from services.auth import require
from services.broker.binding import loads
from services.ingest.deps import DeadLettersDep, LedgerDep, RelayDep
from services.ingest.routes import Accepted, InvalidEvents, accept
from services.store.dead_letters import StoredDeadLetter
from services.web import ApiError, ErrorBody, SettingsDep, errors

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["dead letters"], dependencies=[Depends(require("events:write"))],
                   responses=errors(401, 403, 503))
MAX_ID = 2**63 - 1  # the database's BIGINT


class DeadLettersOut(BaseModel):
    """A page of dead letters, oldest first; `next_after` is the `after` of the next page (null: no more)."""

    items: list[StoredDeadLetter]
    next_after: int | None


@router.get("/dead-letters", response_model=DeadLettersOut, responses=errors(422))
async def list_dead_letters(letters: DeadLettersDep, after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> DeadLettersOut:
    """Dead letters after id `after`, oldest first (newest last)."""
    page = await letters.page(after, limit)
    return DeadLettersOut(items=page,
                          next_after=page[-1].id if len(page) == limit else None)


@router.post("/dead-letters/{letter_id}/replay", status_code=202, response_model=Accepted,
             responses=errors(404) | errors(422, model=ErrorBody | InvalidEvents))
async def replay_dead_letter(letter_id: Annotated[int, Path(ge=1, le=MAX_ID)], letters: DeadLettersDep,
                             settings: SettingsDep, ledger: LedgerDep, relay: RelayDep) -> Accepted:
    """Submit a dead letter again as it was received: validated and deduplicated like any event."""
    letter = await letters.get(letter_id)
    if letter is None:
        raise ApiError(404, f"no dead letter {letter_id}")
    try:
        raw = loads(letter.value)
    except ValueError as error:
        raise ApiError(422, f"dead letter {letter_id} is not JSON: {error}", code="invalid_events",
                       extra={"errors": [{"index": 0, "id": None, "error": str(error)}]}) from None
    return await accept([raw], settings, ledger, relay)

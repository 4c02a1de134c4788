"""The live dashboard at `/`: a page that polls the leaderboard and scorecards with a read-only token."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

__all__ = ["dashboard_router"]

_PAGE = Path(__file__).with_name("dashboard.html")


def dashboard_router(read_token: str, scorecard: str) -> APIRouter:
    """A router serving the dashboard page, wired to `scorecard` and a `scorecards:read` token."""
    router = APIRouter(include_in_schema=False)
    page = _PAGE.read_text().replace("__TOKEN__", escape(read_token)).replace("__SCORECARD__", escape(scorecard))

    @router.get("/", response_class=HTMLResponse)
    async def dashboard() -> str:
        return page

    return router

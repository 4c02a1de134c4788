"""Serves the web app: one HTML shell for every page path, and its static files.

The shell holds no token and no data: the browser signs in with a token kept in its sessionStorage and reads
everything through the `/v1` API, so the HTML is the same for everyone and can be served by any app that has
the API (`convergence up`, the query service alone).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

__all__ = ["PAGES", "webapp_router"]

STATIC = Path(__file__).with_name("static")
PAGES = ("/", "/parties/{party_id}", "/teams/{party_id}", "/leaderboards", "/leaderboards/{scorecard}", "/settlements",
         "/settlements/{period}", "/ops")
"""The paths the app draws in the browser; each serves the shell, which draws the page its location names."""
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", "": "text/plain"}  # "": the LICENSE
# The token lives in the page's sessionStorage: only the app's own scripts and styles may run or load there.
_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                      "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


def _files() -> dict[str, Path]:
    """Every static file by its path under `/static/`: only these are served, whatever a request asks for."""
    return {path.relative_to(STATIC).as_posix(): path for path in STATIC.rglob("*")
            if path.is_file() and path.name != "index.html"}


def webapp_router() -> APIRouter:
    """The shell at each of `PAGES` and the files under `/static/`, outside the OpenAPI document."""
    router = APIRouter(include_in_schema=False)
    shell, files = (STATIC / "index.html").read_text(), _files()

    async def page() -> HTMLResponse:
        return HTMLResponse(shell, headers=_HEADERS)

    for path in PAGES:
        router.add_api_route(path, page, methods=["GET"])

    @router.get("/static/{name:path}")
    async def static(name: str) -> FileResponse:
        if name not in files:
            raise HTTPException(404, f"no file {name!r}")
        return FileResponse(files[name], media_type=_MEDIA_TYPES.get(files[name].suffix, "application/octet-stream"),
                            headers=_HEADERS)

    return router

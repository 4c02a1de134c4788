"""HTTP plumbing shared by every FastAPI service: settings injection, the error format, health and metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Literal

import httpx
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from services.settings import Settings
from shared.events import MAX_ID_LENGTH
from shared.periods import PERIOD_OUT_OF_RANGE, PERIOD_PATTERN

__all__ = ["ApiError", "ErrorBody", "Health", "HealthCheck", "PartyPath", "PeriodPath", "PeriodQuery", "SettingsDep",
           "add_health_check", "errors", "get_settings", "install_error_handlers", "ops_router", "processor_check",
           "service_app"]

HealthCheck = Callable[[], Awaitable[bool | str]]
"""True when healthy; False, or the reason as a string, when not."""
log = logging.getLogger(__name__)
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
          415: "unsupported_media_type", 422: "validation_error", 503: "unavailable"}


class ErrorDetail(BaseModel):
    code: str = Field(description="a stable, machine-readable code: `not_found`, `out_of_order`, …")
    message: str = Field(description="what went wrong, for people")


class ErrorBody(BaseModel):
    """Every error answer: `{"error": {"code", "message"}}`; some add top-level fields (see the operation)."""

    error: ErrorDetail


_MEANINGS = {400: "The request is malformed.", 401: "No bearer token, or one that is not valid.",
             403: "The token lacks the scope this operation needs.", 404: "Not found.",
             409: "The request conflicts with the current state.", 413: "The request is too large.",
             415: "The request's content type is not supported.", 422: "The request is not valid.",
             503: "The database or the event broker is unavailable, or did not answer in time; try again."}
_AUTHENTICATE = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}


def errors(*statuses: int, model: Any = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of an operation that can answer each of `statuses` with the error body (or `model`)."""
    return {status: {"model": model, "description": _MEANINGS.get(status, "Error."),
                     **({"headers": _AUTHENTICATE} if status == 401 else {})} for status in statuses}


_PERIOD: dict[str, Any] = {"pattern": PERIOD_PATTERN, "examples": ["2026-03"],
                           "json_schema_extra": {"not": {"type": "string", "pattern": PERIOD_OUT_OF_RANGE}}}
PeriodPath = Annotated[str, Path(description="a UTC month `YYYY-MM` or quarter `YYYY-Qn`", **_PERIOD)]
"""A `{period}` path parameter, declared with its format (a malformed one is a 422, one out of range a 400)."""
PeriodQuery = Annotated[str | None, Query(description="`YYYY-MM` or `YYYY-Qn`; default: the current one", **_PERIOD)]
"""A `period` query parameter, declared with its format."""
PartyPath = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, examples=["ae-0"])]
"""A party id in a path: an id as events carry it (SPEC §2)."""


class ApiError(HTTPException):
    """An HTTP error rendered as `{"error": {"code", "message"}}`, plus any `extra` top-level fields."""

    def __init__(self, status_code: int, message: str, *, code: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(status_code, message, headers)
        self.code = code or _CODES.get(status_code, "error")
        self.extra = extra or {}


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None,
           extra: dict[str, Any] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message}, **(extra or {})}
    return JSONResponse(body, status_code=status, headers=headers)


async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
    if isinstance(exc, ApiError):
        return _error(exc.status_code, exc.code, exc.detail, exc.headers, exc.extra)
    return _error(exc.status_code, _CODES.get(exc.status_code, "error"), str(exc.detail), exc.headers)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return _error(422, "validation_error", reasons or "invalid request")


async def _broker_away(_: Request, __: Exception) -> JSONResponse:
    return _error(503, "unavailable", "the event broker is unavailable; try again shortly")


async def _database_away(_: Request, __: Exception) -> JSONResponse:
    return _error(503, "unavailable", "the database is unavailable; try again shortly")


async def _internal_error(_: Request, error: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=error)
    return _error(500, "internal", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Render every HTTP, validation and unexpected error in the project error format; a broker or database
    that is away is a 503 (retry), never a 500, and no library's message reaches the client."""
    # Starlette types every handler as taking a plain Exception (starlette#2417): narrower ones are rejected
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(KafkaError, _broker_away)
    app.add_exception_handler(OperationalError, _database_away)
    app.add_exception_handler(InterfaceError, _database_away)
    app.add_exception_handler(Exception, _internal_error)


async def get_settings(request: Request) -> Settings:
    """The process's one settings object, set on `app.state.settings` by the app factory.

    `async`, like every dependency of a route that is read often: FastAPI runs a plain `def` dependency in its
    thread pool, and each such hop waits for the GIL (with the query's dependencies `async` too, 32 clients
    read scorecards at about 1 000 requests/s instead of 440)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def add_health_check(app: FastAPI, name: str, check: HealthCheck) -> None:
    """Register a readiness check that `/healthz` runs; it returns True when healthy."""
    if not hasattr(app.state, "health_checks"):
        app.state.health_checks = {}
    app.state.health_checks[name] = check


HEALTH_CHECK_TIMEOUT_S = 3.0


async def _outcome(check: HealthCheck) -> str:
    """`ok`, or `failing` with the reason a check gave (a string) or the error it raised."""
    try:
        async with asyncio.timeout(HEALTH_CHECK_TIMEOUT_S):
            result = await check()
    except TimeoutError:
        return f"failing: no answer within {HEALTH_CHECK_TIMEOUT_S:g} s"
    except Exception as error:  # a check that cannot even run is failing, not a 500
        return f"failing: {type(error).__name__}"
    if result is True:
        return "ok"
    return f"failing: {result}" if isinstance(result, str) and result else "failing"


def processor_check(urls: str) -> HealthCheck:
    """A check that every processor's own `/healthz` (`urls`, comma-separated) answers 200."""

    async def processor() -> bool | str:
        async with httpx.AsyncClient(timeout=HEALTH_CHECK_TIMEOUT_S) as client:
            for url in urls.split(","):
                try:
                    response = await client.get(url)
                except httpx.HTTPError:
                    return f"the processor at {url} does not answer"
                if response.status_code != 200:
                    return f"the processor at {url} is not ready ({response.status_code})"
        return True

    return processor


class Health(BaseModel):
    """What `/healthz` answers, with 200 (every check `ok`) or 503."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, Annotated[str, Field(pattern=r"^(ok|failing(: .+)?)$")]] = Field(
        description="each check: `ok`, or `failing: <reason>`")


ops_router = APIRouter(tags=["operations"])
_HEALTH: dict[int | str, dict[str, Any]] = {
    200: {"model": Health, "description": "Every part is ready."},
    503: {"model": Health, "description": "Some part is not ready: the failing checks say why."}}
_METRICS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Prometheus text exposition format 0.0.4.",
          "content": {CONTENT_TYPE_PLAIN_0_0_4: {"schema": {"type": "string"}}}}}


class _MetricsResponse(Response):
    media_type = CONTENT_TYPE_PLAIN_0_0_4


@ops_router.get("/healthz", response_model=None, responses=_HEALTH)
async def healthz(request: Request) -> JSONResponse:
    """Liveness and readiness of every part: 200 when every check passes, else 503 with the failing ones' reasons."""
    checks: dict[str, HealthCheck] = getattr(request.app.state, "health_checks", {})
    results = {name: await _outcome(check) for name, check in checks.items()}
    healthy = all(result == "ok" for result in results.values())
    return JSONResponse({"status": "ok" if healthy else "unavailable", "checks": results},
                        status_code=200 if healthy else 503)


@ops_router.get("/metrics", response_class=_MetricsResponse, responses=_METRICS)
async def metrics() -> Response:
    """Prometheus metrics in the text exposition format (0.0.4)."""
    return _MetricsResponse(generate_latest(REGISTRY))


def service_app(title: str, settings: Settings, lifespan: Lifespan, *routers: APIRouter) -> FastAPI:
    """A FastAPI app with the project's error format, `/healthz`, `/metrics` and `routers`."""
    app = FastAPI(title=title, version="0.1.0", lifespan=lifespan,
                  description="Live scorecards and incentive settlement from one event stream.")
    app.state.settings = settings
    install_error_handlers(app)
    for router in (ops_router, *routers):
        app.include_router(router)
    return app

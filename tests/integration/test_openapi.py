"""Schemathesis over the whole HTTP API, on a real SQLite database and a real broker: every answer is declared.

The app runs in-process, in Schemathesis' own event loop (its ASGI client starts the lifespan once and keeps it
until `shutdown_lifespans`). Every operation gets its schema examples, then derandomized valid and invalid
requests, each checked with Schemathesis' default checks: no 5xx, a declared status, content type, headers and
body schema, the token enforced, invalid input refused and valid input accepted.

Operations are driven with plain Hypothesis (`as_strategy`) rather than `schemathesis.pytest.from_fixture`,
whose lazy loader reads `Function._nodeid`, which pytest 9 no longer has.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.errors import FailureGroup
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from services.api import create_api
from services.auth import SCOPES, create_token
from services.plan_files import DEFAULT_PLANS_DIR
from services.plans import PlansInForce
from services.settings import Settings

pytestmark = [pytest.mark.integration,  # Schemathesis' own strategies draw from `random`, seeded by Hypothesis:
              pytest.mark.filterwarnings("ignore:Do not use the `random` module:FutureWarning")]

MAX_EXAMPLES = 30
PHASES = (Phase.explicit, Phase.generate)  # no shrinking: a failure is reported as found, quickly
# Where a schema-valid request can still be refused, with a declared status, by a rule no JSON Schema states:
SEMANTIC_RULES = {
    "POST /v1/events": "credit shares summing to exactly 1, the settlement currency, a survey's answer (422)",
    "GET /v1/relationships/{party_id}": "a cursor must be one the API returned (400)",
}
# What the examples and the seeded events reach beyond errors: the success bodies are checked too.
SUCCEEDING = {"GET /healthz", "GET /metrics", "POST /v1/events", "GET /v1/dead-letters",
              "GET /v1/parties/{party_id}/measures", "GET /v1/relationships/{party_id}",
              "GET /v1/leaderboards/{scorecard}", "POST /v1/periods/{period}/close", "GET /v1/settlements/{period}",
              "GET /v1/settlements/{period}/statements/{party_id}",
              "GET /v1/settlements/{period}/statements/{party_id}/events", "POST /v1/settlements/{period}/approve",
              "GET /v1/settlements/{period}/payouts.csv", "GET /v1/plans", "GET /v1/plans/errors",
              "POST /v1/plans/reload", "POST /v1/settlements/{period}/reject",
              "GET /v1/settlements/{period}/payouts.json", "GET /v1/audit"}


def _event(event_id: str, event_type: str, time: str, data: dict) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": "openapi-test", "type": event_type, "time": time,
            "data": data}


# An account executive with a sale in 2026-03: the party and the period the operations' examples name.
SEED = [_event("seed-1", "party.registered", "2026-01-05T09:00:00Z",
               {"party_id": "ae-0", "kind": "workforce", "role": "account_executive"}),
        _event("seed-2", "sale.closed", "2026-03-10T10:00:00Z",
               {"order_id": "o-1", "customer_id": "c-1", "amount": "1200.00", "currency": "USD",
                "credits": [{"party_id": "ae-0", "share": "1"}]})]


@pytest.fixture
def api(broker_settings: Settings) -> Iterator[tuple[OpenApiSchema, dict[str, str]]]:
    """The schema, loaded from the running app, and the admin token's headers; the app stops afterwards."""
    settings = broker_settings.model_copy(update={"close_catch_up_timeout_s": 10.0, "broker_timeout_ms": 2000})
    auth = {"Authorization": f"Bearer {create_token(settings.resolved_tokens_file, SCOPES, name='admin')}"}
    app = create_api(settings, PlansInForce.load(DEFAULT_PLANS_DIR))
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the app
        # Every request carries the token (the ignored_auth check also sends each one without it); unknown query
        # parameters are ignored, as FastAPI does, not refused.
        schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
        _ready(schema)  # a 503 from /healthz is declared, but every 5xx fails a check: fuzz a system that is up
        seeded = schema["/v1/events"]["POST"].Case(body=SEED, media_type="application/json").call(headers=auth)
        assert (seeded.status_code, json.loads(seeded.content)) == (202, {"accepted": 2, "duplicates": 0})
        yield schema, auth
    finally:
        shutdown_lifespans()  # stop the app before its broker goes


def _ready(schema: OpenApiSchema, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (health := schema["/healthz"]["GET"].Case().call()).status_code != 200:
        assert time.monotonic() < deadline, health.text
        time.sleep(0.1)


def _fuzz(operation: APIOperation, auth: dict[str, str], statuses: Counter[int]) -> None:
    """The operation's examples, then generated valid and invalid requests, each checked with the default checks."""
    strategy = st.one_of(*operation.get_strategies_from_examples(), operation.as_strategy(),
                         operation.as_strategy(GenerationMode.NEGATIVE))
    excluded = [positive_data_acceptance] if operation.label in SEMANTIC_RULES else []

    @given(case=strategy)
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None, phases=PHASES,
              suppress_health_check=list(HealthCheck))
    def check(case: Case) -> None:
        response = case.call_and_validate(headers=dict(auth), excluded_checks=excluded)  # it adds to the dict
        statuses[response.status_code] += 1
        assert response.status_code not in (401, 403), response.text  # the admin token is good everywhere

    check()


def test_every_operation_answers_only_what_it_declares(api: tuple[OpenApiSchema, dict[str, str]]) -> None:
    schema, auth = api
    failures, answered = {}, {}
    for result in schema.get_all_operations():
        operation = result.ok()
        answered[operation.label] = Counter[int]()
        try:
            _fuzz(operation, auth, answered[operation.label])
        except (Exception, FailureGroup) as error:  # a FailureGroup is a BaseExceptionGroup
            failures[operation.label] = error
    assert not failures, "\n\n".join(f"{label}: {error}" for label, error in failures.items())
    succeeded = {label for label, statuses in answered.items() if any(200 <= s < 300 for s in statuses)}
    assert succeeded >= SUCCEEDING, answered

"""`convergence publish`: every valid line is published, each refused line reported by its line number."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

import services.publisher
from services.cli import app
from services.publisher import publish_file
from shared.events import EventError, load_json, parse_event
from tests.support.events import raw_event


def event(n: int, amount: str = "100.00", currency: str = "USD") -> str:
    """One line of the file: a valid sale (unless `amount` or `currency` say otherwise)."""
    return json.dumps(raw_event("sale.closed", "2026-03-14", id=f"e-{n}", source="crm", order_id=f"o-{n}",
                                customer_id="c-1", amount=amount, currency=currency,
                                credits=[{"party_id": "ae-1", "share": "1"}]))


class FakeIngest:
    """`POST /v1/events` as the ingest answers it: 422 naming every invalid item, else 202 with dedup."""

    def __init__(self, status: int | None = None, currency: str = "USD") -> None:
        self.status, self.currency = status, currency  # `status`: answer every request with it instead
        self.requests: list[list[str]] = []
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tok"
        assert request.headers["content-type"] == "application/cloudevents-batch+json"
        raws = load_json(request.content)
        self.requests.append([raw.get("id") for raw in raws])
        if self.status is not None:
            return httpx.Response(self.status, json={"error": {"code": "unavailable", "message": "broker down"}})
        events, errors = [], []
        for index, raw in enumerate(raws):
            try:
                events.append(parse_event(raw, self.currency))
            except EventError as error:
                errors.append({"index": index, "id": raw.get("id"), "error": str(error)})
        if errors:
            return httpx.Response(422, json={"error": {"code": "invalid_events", "message": "invalid"},
                                             "errors": errors})
        fresh = {event.key for event in events} - self.seen
        self.seen |= fresh
        return httpx.Response(202, json={"accepted": len(fresh), "duplicates": len(events) - len(fresh)})

    @property
    def published(self) -> set[str]:
        return {id for _, id in self.seen}


def publish(tmp_path: Path, lines: list[str], server: FakeIngest, batch: int = 3,
            **options: object) -> tuple[dict[str, int], list[str]]:
    """Publish `lines` as a file; the outcome and the lines printed to the console."""
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    output = io.StringIO()
    console = Console(file=output, width=300)
    outcome = publish_file(path, "http://ingest", "tok", batch, console, transport=httpx.MockTransport(server),
                           **options)
    return outcome, [line for line in output.getvalue().splitlines() if line.strip()]  # a progress bar leaves blanks


def test_every_line_is_published_in_batches(tmp_path: Path) -> None:
    server = FakeIngest()
    outcome, printed = publish(tmp_path, [event(n) for n in range(7)], server)
    assert outcome == {"accepted": 7, "duplicates": 0, "rejected": 0}
    assert [len(ids) for ids in server.requests] == [3, 3, 1]
    assert printed == []


def test_lines_are_sent_as_written_so_money_keeps_its_digits(tmp_path: Path) -> None:
    seen: list[bytes] = []
    server = FakeIngest()

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return server(request)

    path = tmp_path / "events.jsonl"
    path.write_text(event(1, amount="100.10") + "\n")
    publish_file(path, "http://ingest", "tok", 10, Console(file=io.StringIO()),
                 transport=httpx.MockTransport(recording))
    assert seen == [f"[{event(1, amount='100.10')}]".encode()]


def test_duplicates_are_counted_apart(tmp_path: Path) -> None:
    outcome, _ = publish(tmp_path, [event(1), event(2), event(1)], FakeIngest(), batch=2)
    assert outcome == {"accepted": 2, "duplicates": 1, "rejected": 0}


def test_an_invalid_event_is_reported_by_line_and_the_rest_of_its_batch_is_published(tmp_path: Path) -> None:
    server = FakeIngest()
    lines = [event(1), "", event(2, amount="-5"), event(3), "  ", event(4), event(5, amount="1e30"), event(6)]
    outcome, printed = publish(tmp_path, lines, server)
    assert outcome == {"accepted": 4, "duplicates": 0, "rejected": 2}
    assert printed == ["line 3: data.amount: must not be negative",
                       "line 7: data.amount: '1e30' has more than 15 digits before the decimal point"]
    assert server.published == {"e-1", "e-3", "e-4", "e-6"}
    # each refused batch is sent again without its refused lines
    assert server.requests == [["e-1", "e-2", "e-3"], ["e-1", "e-3"], ["e-4", "e-5", "e-6"], ["e-4", "e-6"]]


def test_a_line_that_is_not_json_is_reported_and_never_sent(tmp_path: Path) -> None:
    server = FakeIngest()
    outcome, printed = publish(tmp_path, [event(1), '{"id": "e-2", oops', event(3), "NaN"], server)
    assert outcome == {"accepted": 2, "duplicates": 0, "rejected": 2}
    assert [line.split(":", 2)[:2] for line in printed] == [["line 2", " not valid JSON"],
                                                           ["line 4", " not valid JSON"]]
    assert server.requests == [["e-1", "e-3"]]


def test_a_batch_refused_as_a_whole_counts_all_its_lines(tmp_path: Path) -> None:
    outcome, printed = publish(tmp_path, [event(1), event(2), event(3), event(4)], FakeIngest(status=503))
    assert outcome == {"accepted": 0, "duplicates": 0, "rejected": 4}
    assert [line.split(" refused")[0] for line in printed] == ["lines 1–3 (3 events)", "line 4"]
    assert "503" in printed[0] and "broker down" in printed[0]


def test_all_or_nothing_sends_nothing_when_any_line_is_invalid(tmp_path: Path) -> None:
    server = FakeIngest()
    lines = [event(1), event(2, amount="ten"), "not json", event(4)]
    outcome, printed = publish(tmp_path, lines, server, all_or_nothing=True)
    assert outcome == {"accepted": 0, "duplicates": 0, "rejected": 2}
    assert server.requests == []
    assert printed[0] == "line 2: data.amount: 'ten' is not a decimal number"
    assert printed[1].startswith("line 3: not valid JSON")
    assert printed[2] == "nothing was published: 2 of 4 lines are invalid"


def test_all_or_nothing_validates_in_the_settlement_currency(tmp_path: Path) -> None:
    lines = [event(1, currency="EUR"), event(2, currency="EUR")]
    usd = FakeIngest()
    outcome, _ = publish(tmp_path, lines, usd, all_or_nothing=True, currency="USD")
    assert outcome["rejected"] == 2 and usd.requests == []

    eur = FakeIngest(currency="EUR")
    outcome, printed = publish(tmp_path, lines, eur, all_or_nothing=True, currency="EUR")
    assert outcome == {"accepted": 2, "duplicates": 0, "rejected": 0} and printed == []
    assert eur.published == {"e-1", "e-2"}


@pytest.mark.parametrize(("lines", "options", "code", "requests", "outcome"), [
    ([event(1), event(2)], [], 0, 1, {"accepted": 2, "duplicates": 0, "rejected": 0}),
    # refused, then sent again without line 2
    ([event(1), event(2, amount="-1")], [], 1, 2, {"accepted": 1, "duplicates": 0, "rejected": 1}),
    ([event(1), event(2, amount="-1")], ["--all-or-nothing"], 1, 0, {"accepted": 0, "duplicates": 0, "rejected": 1}),
])
def test_the_command_exits_non_zero_when_a_line_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str], options: list[str], code: int,
        requests: int, outcome: dict[str, int]) -> None:
    server = FakeIngest()
    monkeypatch.setattr(services.publisher, "publish_file", _with_transport(server))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines))
    result = CliRunner().invoke(app, ["publish", str(path), "--token", "tok", "--url", "http://ingest", *options])
    assert result.exit_code == code, result.output
    assert len(server.requests) == requests
    assert json.loads(result.stdout.splitlines()[-1]) == outcome


def _with_transport(server: FakeIngest):
    def publish_with(*args: object, **kwargs: object) -> dict[str, int]:
        return publish_file(*args, **kwargs, transport=httpx.MockTransport(server))

    return publish_with

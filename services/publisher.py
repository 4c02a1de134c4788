"""`convergence publish`: a JSON-lines file of CloudEvents posted to `POST /v1/events` in batches.

Every line that is an event is published; each refused line is reported as `line N: reason`. With
`all_or_nothing`, every line is validated first and nothing is sent unless all of them are valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress

from shared.events import EventError, load_json, parse_event

__all__ = ["publish_file"]


@dataclass(frozen=True)
class _Line:
    """One non-blank line of the file, with its 1-based line number."""

    number: int
    text: str


def _numbered_lines(path: Path) -> list[_Line]:
    """The file's non-blank lines, numbered as an editor numbers them."""
    # Only newlines end a line (read_text turns \r\n into \n): a JSON string may hold U+2028, which splitlines splits.
    lines = enumerate(path.read_text().split("\n"), 1)
    return [_Line(number, text) for number, text in lines if text.strip()]


def _problem(line: _Line, currency: str, validate: bool) -> str | None:
    """Why `line` cannot be published (not JSON; with `validate`, not a valid event), or None."""
    try:
        raw = load_json(line.text)
    except ValueError as error:
        return str(error)
    if validate:
        try:
            parse_event(raw, currency)
        except EventError as error:
            return str(error)
    return None


class _Publisher:
    """Posts batches of lines, and reports and drops the lines the server refuses."""

    def __init__(self, client: httpx.Client, console: Console) -> None:
        self.client, self.console = client, console
        self.outcome = {"accepted": 0, "duplicates": 0, "rejected": 0}

    def refuse(self, line: _Line, reason: str) -> None:
        self.outcome["rejected"] += 1
        self.console.print(f"line {line.number}: {reason}", highlight=False, markup=False, soft_wrap=True)

    def send(self, chunk: list[_Line]) -> None:
        """Post `chunk`; after a 422, post it again without the events it names, until it is accepted."""
        while chunk:
            response = self.client.post("/v1/events", content=("[" + ",".join(line.text for line in chunk) + "]"))
            if response.status_code == 202:
                body = response.json()
                self.outcome["accepted"] += body["accepted"]
                self.outcome["duplicates"] += body["duplicates"]
                return
            errors = _item_errors(response, len(chunk))
            if not errors:  # refused as a whole (token, broker down, …): the lines' own validity is unknown
                self._refuse_batch(chunk, response)
                return
            for index, reason in sorted(errors.items()):
                self.refuse(chunk[index], reason)
            # A 422 accepts nothing of its request, so the rest is sent again.
            chunk = [line for index, line in enumerate(chunk) if index not in errors]

    def _refuse_batch(self, chunk: list[_Line], response: httpx.Response) -> None:
        self.outcome["rejected"] += len(chunk)
        first, last = chunk[0].number, chunk[-1].number
        where = f"line {first}" if first == last else f"lines {first}–{last} ({len(chunk)} events)"
        self.console.print(f"{where} refused: {response.status_code} {response.text[:500]}",
                           highlight=False, markup=False)


def _item_errors(response: httpx.Response, size: int) -> dict[int, str]:
    """The per-event errors of a 422 (`{"errors": [{"index", "id", "error"}]}`) by index in the batch."""
    if response.status_code != 422:
        return {}
    try:
        items = response.json()["errors"]
    except (ValueError, KeyError, TypeError):
        return {}
    if not isinstance(items, list):
        return {}
    return {item["index"]: str(item.get("error")) for item in items
            if isinstance(item, dict) and type(item.get("index")) is int and 0 <= item["index"] < size}


def publish_file(path: Path, base_url: str, token: str, batch: int, console: Console, *, currency: str = "USD",
                 all_or_nothing: bool = False, transport: httpx.BaseTransport | None = None) -> dict[str, int]:
    """Post every line (raw, so money keeps its digits); count accepted, duplicate and refused lines.

    Lines that are not JSON are reported and never sent. With `all_or_nothing` every line is validated as
    an event (settlement `currency`) first, and if any is invalid nothing is sent.
    """
    lines = _numbered_lines(path)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/cloudevents-batch+json"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60, transport=transport) as client:
        publisher = _Publisher(client, console)
        sendable = []
        for line in lines:
            problem = _problem(line, currency, all_or_nothing)
            if problem is None:
                sendable.append(line)
            else:
                publisher.refuse(line, problem)
        if all_or_nothing and publisher.outcome["rejected"]:
            console.print(f"nothing was published: {publisher.outcome['rejected']} of {len(lines)} lines are invalid",
                          highlight=False)
            return publisher.outcome
        chunks = iter(sendable)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("publish", total=len(sendable))
            while chunk := list(islice(chunks, batch)):
                publisher.send(chunk)
                progress.advance(task, len(chunk))
        return publisher.outcome

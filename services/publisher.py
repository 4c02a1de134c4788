"""`convergence publish`: a JSON-lines file of CloudEvents posted to `POST /v1/events` in batches."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress

__all__ = ["publish_file"]


def publish_file(path: Path, base_url: str, token: str, batch: int, console: Console) -> dict[str, int]:
    """Post every line (raw, so money keeps its digits); a refused batch is reported and skipped."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    outcome = {"accepted": 0, "duplicates": 0, "rejected": 0}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/cloudevents-batch+json"}
    chunks = iter(lines)
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client, \
            Progress(console=console, transient=True) as progress:
        task = progress.add_task("publish", total=len(lines))
        while chunk := list(islice(chunks, batch)):
            response = client.post("/v1/events", content=("[" + ",".join(chunk) + "]").encode())
            if response.status_code == 202:
                body = response.json()
                outcome["accepted"] += body["accepted"]
                outcome["duplicates"] += body["duplicates"]
            else:
                outcome["rejected"] += len(chunk)
                console.print(f"batch refused: {response.status_code} {response.text[:500]}", highlight=False)
            progress.advance(task, len(chunk))
    return outcome

"""The processor's `/healthz` and `/metrics`, served by Faust's own web server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

__all__ = ["Status", "add_ops_pages"]


@dataclass
class Status:
    """Faust has assigned the partitions (a rebalance completed); the agent has not stopped."""

    recovered: bool = False
    stopped: bool = False

    @property
    def healthy(self) -> bool:
        return self.recovered and not self.stopped


def add_ops_pages(app: faust.App, status: Status) -> None:
    """Serve `/healthz` (503 until the first rebalance completes) and `/metrics` (Prometheus text)."""

    @app.on_rebalance_complete.connect
    async def recovered(sender: Any, /, *_: Any, **__: Any) -> None:
        status.recovered = True

    @app.page("/healthz")
    async def healthz(web, request):
        return web.json({"status": "ok" if status.healthy else "unavailable"}, status=200 if status.healthy else 503)

    @app.page("/metrics")
    async def metrics(web, request):
        return web.text(generate_latest(REGISTRY).decode(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

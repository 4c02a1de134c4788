"""Dependency aliases of the ingest routes, resolved from `app.state` (filled by the lifespan)."""

from __future__ import annotations

from typing import Annotated

from aiokafka import AIOKafkaProducer
from fastapi import Depends, Request

from services.store.keys import IngestKeys

__all__ = ["IngestKeysDep", "ProducerDep"]


def get_producer(request: Request) -> AIOKafkaProducer:
    """The started producer every request publishes with."""
    return request.app.state.producer


def get_ingest_keys(request: Request) -> IngestKeys:
    """The store of (source, id) keys already accepted."""
    return request.app.state.ingest_keys


ProducerDep = Annotated[AIOKafkaProducer, Depends(get_producer)]
IngestKeysDep = Annotated[IngestKeys, Depends(get_ingest_keys)]

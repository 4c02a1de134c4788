"""What a test asks the broker about itself."""

from __future__ import annotations

from services.broker.identity import BrokerIdentity
from services.settings import Settings

__all__ = ["broker_epoch"]


async def broker_epoch(settings: Settings) -> str | None:
    """The epoch of the broker `settings` point at (None: it has no identity)."""
    identity = BrokerIdentity(settings)
    try:
        return await identity.read()
    finally:
        await identity.stop()

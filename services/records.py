"""The fold's records as Kafka messages: the key is the record key as a JSON array
(`["relationship", party, counterparty]`), the value its `shared.snapshot` JSON (null: the record is gone).

The processor writes every changed record to its state and the party and relationship records to the
compacted `measures` topic; the query service puts that topic back into a read-only `Fold`.
"""

from __future__ import annotations

import json

from shared.fold import Fold
from shared.snapshot import get_record, put_record

__all__ = ["MEASURE_KINDS", "apply_message", "encode_key", "record_message"]

MEASURE_KINDS = frozenset({"party", "relationship"})


def encode_key(key: tuple[object, ...]) -> bytes:
    """A record key as message key bytes: one encoding, so a compacted topic keeps one value per record."""
    return json.dumps(list(key)).encode()


def record_message(fold: Fold, key: tuple[str, ...]) -> tuple[bytes, bytes | None]:
    """The message for one record of `fold` as it is now."""
    value = get_record(fold, key)
    return encode_key(key), None if value is None else json.dumps(value).encode()


def apply_message(fold: Fold, key: bytes, value: bytes | None) -> None:
    """Put one record message into `fold` (the inverse of `record_message`)."""
    put_record(fold, tuple(json.loads(key)), None if value is None else json.loads(value))

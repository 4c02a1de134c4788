"""Bearer tokens with scopes, stored only as SHA-256 hashes in the tokens file."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.web import ApiError, SettingsDep

__all__ = ["SCOPES", "create_token", "ensure_default_tokens", "granted_scopes", "require"]

SCOPES = ("events:write", "periods:close", "settlements:read", "settlements:approve", "scorecards:read")
TOKEN_PREFIX = "cvg_"

_bearer = HTTPBearer(auto_error=False, description="a token from `convergence token create`")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text())["tokens"] if path.exists() else []


def create_token(path: Path, scopes: Iterable[str]) -> str:
    """Mint a token with `scopes`, store its hash in `path` and return the token (shown once)."""
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; unknown: {unknown}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    entry = {"sha256": _digest(token), "scopes": wanted, "created_at": datetime.now(UTC).isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps({"tokens": [*_read(path), entry]}, indent=2))
    partial.chmod(0o600)
    os.replace(partial, path)  # readers never see a half-written file
    return token


def ensure_default_tokens(path: Path) -> str | None:
    """Create a token with every scope when `path` does not exist yet; return it, else None."""
    return None if path.exists() else create_token(path, SCOPES)


@lru_cache(maxsize=8)
def _table(path: Path, version: tuple[int, int, int]) -> dict[str, frozenset[str]]:
    return {entry["sha256"]: frozenset(entry["scopes"]) for entry in _read(path)}


def granted_scopes(path: Path, token: str) -> frozenset[str] | None:
    """The scopes of `token`, or None when it is unknown; reloads the file when it changes."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    # mtime alone can miss a rewrite within one clock tick; each rewrite is a new inode.
    return _table(path, (stat.st_ino, stat.st_mtime_ns, stat.st_size)).get(_digest(token))


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require(scope: str) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency refusing requests without a valid token (401) or without `scope` (403)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def check(settings: SettingsDep, credentials: Credentials) -> None:
        if not settings.auth:
            return
        if credentials is None:
            raise ApiError(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        scopes = granted_scopes(settings.resolved_tokens_file, credentials.credentials)
        if scopes is None:
            raise ApiError(401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"})
        if scope not in scopes:
            raise ApiError(403, f"the token lacks the scope {scope!r}")

    return check

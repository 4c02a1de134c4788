"""Bearer tokens with scopes, stored only as SHA-256 hashes in the tokens file."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, NamedTuple

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.settings import Settings
from services.store.audit import AuditLog
from services.store.database import opened_database
from services.web import ApiError, SettingsDep

__all__ = ["ANONYMOUS", "DEFAULT_TOKEN_NAME", "SCOPES", "ActorDep", "Grant", "actor", "create_audited_token",
           "create_token", "grant_of", "granted_scopes", "new_token", "require", "require_token",
           "store_token", "token_name"]

SCOPES = ("events:write", "periods:close", "settlements:read", "settlements:approve", "scorecards:read",
          "audit:read", "plans:write")
TOKEN_PREFIX = "cvg_"
DEFAULT_TOKEN_NAME = "admin"
ANONYMOUS = "anonymous"
"""Who acts when tokens are not required (`auth` off): there is no name to record."""

_bearer = HTTPBearer(auto_error=False, description="a token from `convergence token create`")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text())["tokens"] if path.exists() else []


def _auto_name(digest: str) -> str:
    return f"token-{digest[:8]}"


def _private_dir(directory: Path) -> None:
    """Create `directory` and any missing parent, each readable by its owner only (0o700)."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for created in reversed(missing):
        created.mkdir(mode=0o700, exist_ok=True)
        created.chmod(0o700)  # mkdir's mode is narrowed by the umask, never widened; make it exact


def _write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically, as a file readable by its owner only (0o600)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0o600 from the start: a token hash is never readable by others, not even for a moment.
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a leftover partial from a crash may have had another mode
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(partial, path)  # readers never see a half-written file


def new_token(scopes: Iterable[str], name: str | None = None) -> tuple[str, dict]:
    """Mint a token with `scopes`: the token (shown once) and its entry for the tokens file, not stored yet.

    Without a name the token is called `token-<first 8 hex digits of its hash>`.
    """
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; unknown: {unknown}")
    if name is not None and not name.strip():
        raise ValueError("a token name must not be blank")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = _digest(token)
    return token, {"sha256": digest, "name": name or _auto_name(digest), "scopes": wanted,
                   "created_at": datetime.now(UTC).isoformat()}


def store_token(path: Path, entry: dict) -> None:
    """Add a token's entry (from `new_token`) to the tokens file at `path`."""
    _private_dir(path.parent)
    _write_private(path, json.dumps({"tokens": [*_read(path), entry]}, indent=2))


def create_token(path: Path, scopes: Iterable[str], name: str | None = None) -> str:
    """Mint a token with `scopes`, store its hash and `name` in `path` and return the token (shown once)."""
    token, entry = new_token(scopes, name)
    store_token(path, entry)
    return token


async def create_audited_token(settings: Settings, scopes: Iterable[str], name: str | None, actor: str
                               ) -> tuple[str, dict]:
    """`new_token` stored in the configured tokens file (the token and its entry are returned), its creation
    first appended to the audit log of the configured database (`token.create` by `actor`, with the token's
    name and scopes, never its hash), where `GET /v1/audit` reads every other entry: a token whose creation
    cannot be recorded is not stored."""
    token, entry = new_token(scopes, name)
    async with opened_database(settings.resolved_database_url) as sessions:
        await AuditLog(sessions).append(actor=actor, action="token.create",
                                        detail={"name": entry["name"], "scopes": entry["scopes"]})
    store_token(settings.resolved_tokens_file, entry)
    return token, entry


class Grant(NamedTuple):
    """What a known token is: its name and its scopes."""

    name: str
    scopes: frozenset[str]


@lru_cache(maxsize=8)
def _table(path: Path, version: tuple[int, int, int]) -> tuple[tuple[bytes, Grant], ...]:
    grants = []
    for entry in _read(path):
        name = entry.get("name") or _auto_name(entry["sha256"])  # files from before tokens had names
        grants.append((entry["sha256"].encode(), Grant(name, frozenset(entry["scopes"]))))
    return tuple(grants)


def grant_of(path: Path, token: str) -> Grant | None:
    """The name and scopes of `token`, or None when it is unknown; reloads the file when it changes."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    # mtime alone can miss a rewrite within one clock tick; each rewrite is a new inode.
    table = _table(path, (stat.st_ino, stat.st_mtime_ns, stat.st_size))
    digest = _digest(token).encode()
    found = None
    for stored, grant in table:  # every entry compared in constant time: timing tells nothing about the hashes
        if hmac.compare_digest(stored, digest):
            found = grant
    return found


def granted_scopes(path: Path, token: str) -> frozenset[str] | None:
    """The scopes of `token`, or None when it is unknown."""
    grant = grant_of(path, token)
    return None if grant is None else grant.scopes


def token_name(path: Path, token: str) -> str | None:
    """The name of `token`, or None when it is unknown."""
    grant = grant_of(path, token)
    return None if grant is None else grant.name


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _caller(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> Grant | None:
    """The grant of the request's token, None when tokens are not required; 401 without a valid one."""
    if not settings.auth:
        return None
    if credentials is None:
        raise ApiError(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    grant = grant_of(settings.resolved_tokens_file, credentials.credentials)
    if grant is None:
        raise ApiError(401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"})
    return grant


def require(scope: str) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency refusing requests without a valid token (401) or without `scope` (403)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def check(settings: SettingsDep, credentials: Credentials) -> None:
        grant = _caller(settings, credentials)
        if grant is not None and scope not in grant.scopes:
            raise ApiError(403, f"the token lacks the scope {scope!r}")

    return check


async def require_token(settings: SettingsDep, credentials: Credentials) -> None:
    """A FastAPI dependency refusing requests without a valid token (401), whatever its scopes."""
    _caller(settings, credentials)


async def actor(settings: SettingsDep, credentials: Credentials) -> str:
    """The caller's token name, by which what a request changes is recorded (`ANONYMOUS` with `auth` off)."""
    grant = _caller(settings, credentials)
    return ANONYMOUS if grant is None else grant.name


ActorDep = Annotated[str, Depends(actor)]

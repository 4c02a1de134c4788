"""Bearer tokens: stored hashed, checked per scope, refused with 401/403 in the project error format."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI

import services.auth
from services.auth import (
    SCOPES,
    Grant,
    create_audited_token,
    create_token,
    grant_of,
    granted_scopes,
    require,
    token_name,
)
from services.settings import Settings
from services.store.audit import AuditLog
from services.store.database import opened_database
from services.web import install_error_handlers


def test_a_created_token_is_stored_only_as_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "tokens.json"
    token = create_token(path, ["events:write"])
    text = path.read_text()
    assert token not in text
    assert json.loads(text)["tokens"][0]["scopes"] == ["events:write"]
    assert path.stat().st_mode & 0o077 == 0


def test_granted_scopes_knows_each_token_and_no_other(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    writer = create_token(path, ["events:write"])
    reader = create_token(path, ["settlements:read", "scorecards:read"])
    assert granted_scopes(path, writer) == {"events:write"}
    assert granted_scopes(path, reader) == {"settlements:read", "scorecards:read"}
    assert granted_scopes(path, writer + "x") is None
    assert granted_scopes(tmp_path / "missing.json", writer) is None


async def test_an_audited_token_is_recorded_in_the_audit_log_then_stored(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    token, entry = await create_audited_token(settings, SCOPES, "admin", actor="up")
    path = settings.resolved_tokens_file
    assert (granted_scopes(path, token), token_name(path, token)) == (set(SCOPES), "admin")
    async with opened_database(settings.resolved_database_url) as sessions:
        [logged] = await AuditLog(sessions).entries()
    assert (logged.actor, logged.action, logged.detail) == ("up", "token.create",
                                                            {"name": "admin", "scopes": entry["scopes"]})
    assert entry["sha256"] not in json.dumps(logged.detail)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_tokens_file_and_the_directories_it_creates_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "conf" / "tokens.json"
    tmp_path.chmod(0o755)
    old_umask = os.umask(0)  # even a permissive umask leaves them private
    try:
        create_token(path, ["events:write"])
    finally:
        os.umask(old_umask)
    assert (mode(path), mode(path.parent), mode(path.parent.parent)) == (0o600, 0o700, 0o700)
    assert mode(tmp_path) == 0o755  # a directory that already existed is left as it was
    assert [p.name for p in path.parent.iterdir()] == ["tokens.json"]  # no partial file left behind


def test_rewriting_the_tokens_file_keeps_it_private(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    first = create_token(path, ["events:write"])
    path.chmod(0o644)
    second = create_token(path, ["scorecards:read"])
    assert mode(path) == 0o600
    assert granted_scopes(path, first) == {"events:write"} and granted_scopes(path, second) == {"scorecards:read"}


def test_a_wrong_token_of_the_same_length_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = create_token(path, ["events:write"])
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert len(wrong) == len(token)
    assert granted_scopes(path, wrong) is None and token_name(path, wrong) is None


def test_every_stored_hash_is_compared_in_constant_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tokens.json"
    first = create_token(path, ["events:write"])
    for _ in range(2):
        create_token(path, ["scorecards:read"])
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(services.auth.hmac, "compare_digest", counting)
    assert granted_scopes(path, first) == {"events:write"}  # found first, yet every entry is compared
    assert len(compared) == 3


def test_tokens_have_names(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    named = create_token(path, ["events:write"], name="crm-connector")
    unnamed = create_token(path, ["scorecards:read"])
    assert token_name(path, named) == "crm-connector"
    assert token_name(path, unnamed) == f"token-{hashlib.sha256(unnamed.encode()).hexdigest()[:8]}"
    assert grant_of(path, named) == Grant("crm-connector", frozenset({"events:write"}))
    assert [entry["name"] for entry in json.loads(path.read_text())["tokens"]] == [
        "crm-connector", token_name(path, unnamed)]
    assert token_name(tmp_path / "missing.json", named) is None


def test_a_tokens_file_from_before_names_gets_automatic_names(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    digest = hashlib.sha256(b"cvg_old").hexdigest()
    path.write_text(json.dumps({"tokens": [{"sha256": digest, "scopes": ["events:write"]}]}))
    assert grant_of(path, "cvg_old") == Grant(f"token-{digest[:8]}", frozenset({"events:write"}))


@pytest.mark.parametrize("name", ["", "  "])
def test_a_blank_token_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="blank"):
        create_token(tmp_path / "tokens.json", ["events:write"], name=name)


@pytest.mark.parametrize("scopes", [[], ["events:write", "admin"]])
def test_unknown_or_no_scopes_are_refused(tmp_path: Path, scopes: list[str]) -> None:
    with pytest.raises(ValueError, match="scopes must be"):
        create_token(tmp_path / "tokens.json", scopes)


def client(tokens_file: Path, auth: bool = True) -> httpx.AsyncClient:
    app = FastAPI()
    app.state.settings = Settings(tokens_file=tokens_file, auth=auth)
    install_error_handlers(app)

    @app.post("/close", dependencies=[Depends(require("periods:close"))])
    async def close() -> dict[str, str]:
        return {"status": "closed"}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.parametrize(("authorization", "status", "code"), [
    (None, 401, "unauthorized"),
    ("Basic dXNlcjpwYXNz", 401, "unauthorized"),
    ("Bearer not-a-token", 401, "unauthorized"),
])
async def test_missing_or_invalid_tokens_get_401(
        tmp_path: Path, authorization: str | None, status: int, code: str) -> None:
    create_token(tmp_path / "tokens.json", SCOPES)
    headers = {"Authorization": authorization} if authorization else {}
    async with client(tmp_path / "tokens.json") as http:
        response = await http.post("/close", headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_token_without_the_scope_gets_403_and_with_it_passes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    reader, closer = create_token(path, ["settlements:read"]), create_token(path, ["periods:close"])
    async with client(path) as http:
        refused = await http.post("/close", headers={"Authorization": f"Bearer {reader}"})
        allowed = await http.post("/close", headers={"Authorization": f"Bearer {closer}"})
    assert refused.status_code == 403
    assert refused.json() == {"error": {"code": "forbidden",
                                        "message": "the token lacks the scope 'periods:close'"}}
    assert allowed.json() == {"status": "closed"}


async def test_a_token_created_while_running_is_accepted_at_once(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    create_token(path, ["settlements:read"])
    async with client(path) as http:
        assert (await http.post("/close", headers={"Authorization": "Bearer x"})).status_code == 401
        token = create_token(path, ["periods:close"])
        assert (await http.post("/close", headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_auth_off_lets_anonymous_requests_through(tmp_path: Path) -> None:
    async with client(tmp_path / "absent.json", auth=False) as http:
        assert (await http.post("/close")).status_code == 200


def test_require_refuses_an_unknown_scope() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        require("periods:open")

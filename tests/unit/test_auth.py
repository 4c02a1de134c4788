"""Bearer tokens: stored hashed, checked per scope, refused with 401/403 in the project error format."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI

from services.auth import SCOPES, create_token, ensure_default_tokens, granted_scopes, require
from services.settings import Settings
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


def test_default_tokens_are_created_once_with_every_scope(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = ensure_default_tokens(path)
    assert token is not None
    assert granted_scopes(path, token) == set(SCOPES)
    assert ensure_default_tokens(path) is None


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

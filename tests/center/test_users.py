"""Cutting off access: ``todokede user revoke-token / disable / enable / set-role /
set-password``, each audited, each in force on the user's next request (the API asks the
store every time; the web sessions are tested in tests/web)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.center.conftest import TestClient, bearer
from todokede.center.store import Store
from todokede.center.store.auth import User
from todokede.center.web.app import create_app
from todokede.cli import cli


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'center.db'}"


@pytest.fixture
def center(db: str) -> Iterator[tuple[Store, Any, dict[str, str]]]:
    """A store, a test client of the running app over it, and tokens of alice (two) and
    ana; the CLI changes the same database from outside, as an operator would."""
    store = Store.open(db)
    tokens = {
        "alice": store.add_user("alice", "reporter", "alice-password-1"),
        "ana": store.add_user("ana", "analyst", "ana-password-1"),
    }
    tokens["alice2"] = store.new_token("alice")
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        yield store, client, tokens
    store.close()


def run(db: str, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, ["user", *args, "--db", db], input=input)


def audited(store: Store, action: str) -> list[dict[str, Any]]:
    return [
        {"actor": e.actor, **json.loads(e.detail or "{}")}
        for e in store.audit_log()
        if e.action == action
    ]


def test_revoke_every_token(db: str, center: tuple[Store, Any, dict[str, str]]) -> None:
    store, client, tokens = center
    assert client.get("/api/me", headers=bearer(tokens["alice"])).status_code == 200
    result = run(db, "revoke-token", "alice")
    assert result.exit_code == 0, result.output
    assert "2 tokens of alice revoked" in result.output
    for name in ("alice", "alice2"):
        assert client.get("/api/me", headers=bearer(tokens[name])).status_code == 401
    assert client.get("/api/me", headers=bearer(tokens["ana"])).status_code == 200
    [entry] = audited(store, "token-revoke")
    assert entry["user"] == "alice" and entry["n"] == 2 and entry["actor"].startswith("cli")


def test_revoke_one_token_from_stdin(db: str, center: tuple[Store, Any, dict[str, str]]) -> None:
    _, client, tokens = center
    result = run(db, "revoke-token", "alice", "--token-from", "-", input=tokens["alice"] + "\n")
    assert result.exit_code == 0, result.output
    assert client.get("/api/me", headers=bearer(tokens["alice"])).status_code == 401
    assert client.get("/api/me", headers=bearer(tokens["alice2"])).status_code == 200
    # Someone else's token is not alice's to revoke: refused, nothing changes.
    other = run(db, "revoke-token", "alice", "--token-from", "-", input=tokens["ana"])
    assert other.exit_code == 2 and "not one of 'alice'" in other.output
    assert client.get("/api/me", headers=bearer(tokens["ana"])).status_code == 200


def test_disable_and_enable(db: str, center: tuple[Store, Any, dict[str, str]]) -> None:
    store, client, tokens = center
    assert run(db, "disable", "alice").exit_code == 0
    assert client.get("/api/me", headers=bearer(tokens["alice"])).status_code == 401
    assert store.authenticate("alice", "alice-password-1") is None
    listed = run(db, "list").output
    assert "alice\treporter\tdisabled" in listed and "ana\tanalyst\tenabled" in listed
    assert run(db, "enable", "alice").exit_code == 0
    assert client.get("/api/me", headers=bearer(tokens["alice"])).json()["name"] == "alice"
    assert store.authenticate("alice", "alice-password-1") == User("alice", "reporter")
    assert [e["user"] for e in audited(store, "user-disable")] == ["alice"]
    assert [e["user"] for e in audited(store, "user-enable")] == ["alice"]


def test_set_role_counts_on_the_next_request(
    db: str, center: tuple[Store, Any, dict[str, str]]
) -> None:
    store, client, tokens = center
    analyst = bearer(tokens["ana"])
    assert client.get("/api/reports", headers=analyst).status_code == 200
    report = client.post("/api/reports", json={}, headers=bearer(tokens["alice"])).json()
    assert client.get(f"/api/reports/{report['id']}", headers=analyst).status_code == 200
    result = run(db, "set-role", "ana", "reporter")
    assert result.exit_code == 0 and "analyst -> reporter" in result.output
    assert client.get("/api/me", headers=analyst).json()["role"] == "reporter"
    assert client.get(f"/api/reports/{report['id']}", headers=analyst).status_code == 404
    [entry] = audited(store, "role-set")
    assert (entry["user"], entry["old"], entry["role"]) == ("ana", "analyst", "reporter")


def test_set_password(db: str, center: tuple[Store, Any, dict[str, str]]) -> None:
    store = center[0]
    result = run(db, "set-password", "alice", input="new-password-2\nnew-password-2\n")
    assert result.exit_code == 0, result.output
    assert store.authenticate("alice", "alice-password-1") is None
    assert store.authenticate("alice", "new-password-2") == User("alice", "reporter")
    piped = run(db, "set-password", "alice", "--stdin", input="third-password-3\n")
    assert piped.exit_code == 0, piped.output
    assert store.authenticate("alice", "third-password-3") is not None
    assert [e["user"] for e in audited(store, "password-set")] == ["alice", "alice"]


@pytest.mark.parametrize(
    ("args", "input", "message"),
    [
        (["disable", "nobody"], None, "no user 'nobody'"),
        (["enable", "nobody"], None, "no user 'nobody'"),
        (["set-role", "nobody", "admin"], None, "no user 'nobody'"),
        (["set-role", "alice", "boss"], None, "boss"),
        (["revoke-token", "nobody"], None, "no user 'nobody'"),
        (["revoke-token", "alice", "--token-from", "-"], "\n", "no token"),
        (["set-password", "nobody", "--stdin"], "long-enough-1\n", "no user 'nobody'"),
        (["set-password", "alice", "--stdin"], "short\n", "at least 8 characters"),
        (["add", "dave", "--role", "reporter", "--password"], "short\nshort\n", "at least 8"),
    ],
)
def test_refusals_name_the_problem(
    db: str,
    center: tuple[Store, Any, dict[str, str]],
    args: list[str],
    input: str | None,
    message: str,
) -> None:
    store = center[0]
    before = len(store.audit_log())
    result = run(db, *args, input=input)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(store.audit_log()) == before  # nothing half-done, nothing audited


@pytest.mark.parametrize(
    "command", ["revoke-token", "disable", "enable", "set-role", "set-password"]
)
def test_help_has_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, ["user", command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output
    assert f"todokede user {command}" in result.output

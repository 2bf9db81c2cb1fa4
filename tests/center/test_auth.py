"""Tokens, passwords, bearer headers, roles, and the ``todokede user`` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from todokede.center.store import Store
from todokede.center.store.auth import (
    User,
    hash_password,
    new_token,
    parse_bearer,
    token_digest,
    verify_password,
)
from todokede.cli import cli


def test_tokens_are_long_random_and_stored_as_digests() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert token.startswith("tdk_") and len(token) >= 40
        digest = token_digest(token)
        assert len(digest) == 64 and token not in digest
    assert token_digest("a") != token_digest("b")


def test_passwords() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse")
    assert not verify_password(None, "anything")
    assert not verify_password("not-a-hash", "anything")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("  Bearer   abc  ", "abc"),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_bearer(header: str | None, token: str | None) -> None:
    assert parse_bearer(header) == token


@pytest.mark.parametrize(
    ("role", "owner", "analyst", "admin", "reads_own", "reads_other"),
    [
        ("reporter", "alice", False, False, True, False),
        ("analyst", "ana", True, False, True, True),
        ("admin", "root", True, True, True, True),
    ],
)
def test_roles(
    role: str, owner: str, analyst: bool, admin: bool, reads_own: bool, reads_other: bool
) -> None:
    user = User(owner, role)
    assert (user.is_analyst, user.is_admin) == (analyst, admin)
    assert user.may_read(owner) is reads_own
    assert user.may_read("bob") is reads_other
    assert user.may_read(None) is analyst


def test_user_add_prints_the_token_last(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'center.db'}"
    result = CliRunner().invoke(cli, ["user", "add", "alice", "--role", "reporter", "--db", db])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    with Store.open(db) as store:
        assert store.user_for_token(token) == User("alice", "reporter")
    again = CliRunner().invoke(cli, ["user", "add", "alice", "--role", "admin", "--db", db])
    assert again.exit_code == 2
    assert "exists already" in again.output
    listed = CliRunner().invoke(cli, ["user", "list", "--db", db])
    assert listed.output.strip() == "alice\treporter\tenabled"
    second = CliRunner().invoke(cli, ["user", "token", "alice", "--db", db])
    with Store.open(db) as store:
        assert store.user_for_token(second.output.strip()) == User("alice", "reporter")


def test_user_add_with_password(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'center.db'}"
    result = CliRunner().invoke(
        cli,
        ["user", "add", "ana", "--role", "analyst", "--password", "--db", db],
        input="s3cret-pass\ns3cret-pass\n",
    )
    assert result.exit_code == 0, result.output
    with Store.open(db) as store:
        assert store.authenticate("ana", "s3cret-pass") == User("ana", "analyst")


def test_user_add_refuses_a_bad_role(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'center.db'}"
    result = CliRunner().invoke(cli, ["user", "add", "x", "--role", "boss", "--db", db])
    assert result.exit_code == 2 and "boss" in result.output


def test_serve_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output and "--db" in result.output

"""The store's users: accounts with a role, API tokens (kept as SHA-256 digests) and
passwords (argon2). What roles may do, and the hashing itself, are in ``auth``."""

from __future__ import annotations

import json
import re

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from todokede.center import tables as t
from todokede.center.audit import record
from todokede.center.auth import (
    ROLES,
    User,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)
from todokede.center.database import Database, now
from todokede.errors import InputError, NotFound, StoreError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class Users(Database):
    """The store's user methods."""

    def add_user(self, name: str, role: str, password: str | None = None) -> str:
        """Create a user; returns its first API token (shown once, stored as a digest)."""
        if not _NAME.match(name):
            raise InputError(
                "a user name is 1-100 letters, digits or . _ @ - (starting with a letter or digit)",
                field="name",
            )
        if role not in ROLES:
            raise InputError(f"role must be one of {', '.join(ROLES)}", field="role")
        at = now()
        token = new_token()
        try:
            with self._write() as conn:
                conn.execute(
                    insert(t.users).values(
                        name=name,
                        role=role,
                        password_hash=hash_password(password) if password else None,
                        created_at=at,
                    )
                )
                conn.execute(
                    insert(t.tokens).values(
                        digest=token_digest(token), user_name=name, created_at=at
                    )
                )
                record(conn, name, "user-add", None, json.dumps({"role": role}), at)
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            raise InputError(f"user {name!r} exists already", field="name") from exc
        return token

    def new_token(self, name: str) -> str:
        """Another API token for an existing user."""
        token = new_token()
        with self._write() as conn:
            if conn.execute(select(t.users.c.name).where(t.users.c.name == name)).first() is None:
                raise NotFound(f"no user {name!r}")
            conn.execute(
                insert(t.tokens).values(
                    digest=token_digest(token), user_name=name, created_at=now()
                )
            )
            record(conn, name, "token-add", None, None, now())
        return token

    def set_password(self, name: str, password: str) -> None:
        with self._write() as conn:
            done = conn.execute(
                update(t.users)
                .where(t.users.c.name == name)
                .values(password_hash=hash_password(password))
            )
            if done.rowcount == 0:
                raise NotFound(f"no user {name!r}")
            record(conn, name, "password-set", None, None, now())

    def user_for_token(self, token: str) -> User | None:
        """The user an API token belongs to (one SHA-256 and an indexed lookup)."""
        query = (
            select(t.users.c.name, t.users.c.role)
            .join(t.tokens, t.tokens.c.user_name == t.users.c.name)
            .where(t.tokens.c.digest == token_digest(token))
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else User(row[0], row[1])

    def authenticate(self, name: str, password: str) -> User | None:
        """The user, if the password matches (argon2)."""
        with self._read() as conn:
            row = conn.execute(
                select(t.users.c.role, t.users.c.password_hash).where(t.users.c.name == name)
            ).first()
        ok = verify_password(row[1] if row else None, password)
        return User(name, row[0]) if ok and row is not None else None

    def get_user(self, name: str) -> User | None:
        with self._read() as conn:
            row = conn.execute(select(t.users.c.role).where(t.users.c.name == name)).first()
        return None if row is None else User(name, row[0])

    def list_users(self) -> list[User]:
        with self._read() as conn:
            rows = conn.execute(select(t.users.c.name, t.users.c.role).order_by(t.users.c.name))
            return [User(r[0], r[1]) for r in rows]

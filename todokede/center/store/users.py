"""The store's users: accounts with a role, API tokens (kept as SHA-256 digests) and
passwords (argon2). What roles may do, and the hashing itself, are in ``auth``.

Access can be cut off: a token can be revoked, a user disabled (its tokens and web
sessions are refused until it is enabled again) or given another role; a new password ends
the user's web sessions. Each change is audited with who made it, and the web layer reads
role and ``enabled`` from here on every request, so it takes effect on the next one.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from todokede.center.store import tables as t
from todokede.center.store.audit import record
from todokede.center.store.auth import (
    ROLES,
    User,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)
from todokede.center.store.database import Database, now
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
        if password is not None:
            check_password(password)
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

    def set_password(self, name: str, password: str, *, actor: str | None = None) -> None:
        """A new password; the user's open web sessions end."""
        check_password(password)
        digest = hash_password(password)
        with self._write() as conn:
            self._change(conn, name, {"password_hash": digest})
            conn.execute(delete(t.sessions).where(t.sessions.c.user_name == name))
            record(conn, actor or name, "password-set", None, _detail(user=name), now())

    def set_role(self, name: str, role: str, *, actor: str) -> str:
        """Give ``name`` another role; returns the role it had."""
        if role not in ROLES:
            raise InputError(f"role must be one of {', '.join(ROLES)}", field="role")
        with self._write() as conn:
            old = self._change(conn, name, {"role": role})
            record(conn, actor, "role-set", None, _detail(user=name, old=old, role=role), now())
        return old

    def set_enabled(self, name: str, enabled: bool, *, actor: str) -> None:
        """Disable a user (its tokens and sessions are refused; its web sessions end) or
        enable it again (its tokens work again)."""
        with self._write() as conn:
            self._change(conn, name, {"enabled": enabled})
            if not enabled:
                conn.execute(delete(t.sessions).where(t.sessions.c.user_name == name))
            action = "user-enable" if enabled else "user-disable"
            record(conn, actor, action, None, _detail(user=name), now())

    def revoke_tokens(self, name: str, token: str | None = None, *, actor: str) -> int:
        """Revoke every API token of ``name``, or only ``token`` (which must be one of
        its); returns how many were revoked."""
        with self._write() as conn:
            self._change(conn, name, {})
            where = [t.tokens.c.user_name == name]
            if token is not None:
                where.append(t.tokens.c.digest == token_digest(token))
            count = conn.execute(select(func.count()).select_from(t.tokens).where(*where))
            n = int(count.scalar_one())
            if token is not None and n == 0:
                raise NotFound(f"that token is not one of {name!r}'s")
            conn.execute(delete(t.tokens).where(*where))
            one = "one" if token is not None else "all"
            record(conn, actor, "token-revoke", None, _detail(user=name, tokens=one, n=n), now())
        return n

    def _change(self, conn: Connection, name: str, values: dict[str, object]) -> str:
        """Update user ``name`` (NotFound if there is none); returns its role before."""
        role = conn.execute(select(t.users.c.role).where(t.users.c.name == name)).scalar()
        if role is None:
            raise NotFound(f"no user {name!r}")
        if values:
            conn.execute(update(t.users).where(t.users.c.name == name).values(**values))
        return str(role)

    def user_for_token(self, token: str) -> User | None:
        """The user an API token belongs to (one SHA-256 and an indexed lookup)."""
        query = (
            select(t.users.c.name, t.users.c.role)
            .join(t.tokens, t.tokens.c.user_name == t.users.c.name)
            .where(t.tokens.c.digest == token_digest(token), t.users.c.enabled.is_(True))
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else User(row[0], row[1])

    def authenticate(self, name: str, password: str) -> User | None:
        """The user, if the password matches (argon2)."""
        with self._read() as conn:
            row = conn.execute(
                select(t.users.c.role, t.users.c.password_hash, t.users.c.enabled).where(
                    t.users.c.name == name
                )
            ).first()
        ok = verify_password(row[1] if row else None, password)
        return User(name, row[0]) if ok and row is not None and row[2] else None

    def get_user(self, name: str) -> User | None:
        with self._read() as conn:
            row = conn.execute(select(t.users.c.role).where(t.users.c.name == name)).first()
        return None if row is None else User(name, row[0])

    def list_users(self) -> list[User]:
        u = t.users.c
        with self._read() as conn:
            rows = conn.execute(select(u.name, u.role, u.enabled).order_by(u.name))
            return [User(r[0], r[1], bool(r[2])) for r in rows]


MIN_PASSWORD = 8


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password has at least {MIN_PASSWORD} characters", field="password")
    if len(password) > 1000:
        raise InputError("a password has at most 1000 characters", field="password")


def _detail(**values: object) -> str:
    return json.dumps(values, ensure_ascii=False)

"""Web sign-ins kept in the store, so that access can be cut off.

A browser holds only a random session id (256 bits); the store keeps its SHA-256 digest
with the user's name, the CSRF token of the session and the messages waiting to be shown
once. Every request looks the id up and reads the user's role and ``enabled`` flag from
``users`` in the same query: signing out deletes the row, and disabling a user or changing
its role takes effect on that user's next request, in every web process.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, insert, select, update

from todokede.center.store import tables as t
from todokede.center.store.auth import User, token_digest
from todokede.center.store.database import Database, now


@dataclass(frozen=True)
class Login:
    """A signed-in session as a request sees it."""

    user: User
    csrf: str
    flash: list[str]


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


class Logins(Database):
    """The store's session methods."""

    def open_login(self, name: str, *, lifetime: timedelta) -> tuple[str, Login]:
        """A new session for user ``name``: its id (for the cookie) and its state. Expired
        sessions of anyone are swept out on the way."""
        sid = new_session_id()
        csrf = secrets.token_urlsafe(32)
        at = now()
        with self._write() as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.expires_at < at))
            conn.execute(
                insert(t.sessions).values(
                    digest=token_digest(sid),
                    user_name=name,
                    csrf=csrf,
                    flash="[]",
                    created_at=at,
                    expires_at=at + lifetime,
                )
            )
            role = conn.execute(select(t.users.c.role).where(t.users.c.name == name)).scalar_one()
        return sid, Login(User(name, role), csrf, [])

    def login(self, sid: str) -> Login | None:
        """The session ``sid`` names, if it exists, has not expired and its user is
        enabled; else None."""
        s, u = t.sessions.c, t.users.c
        query = (
            select(u.name, u.role, s.csrf, s.flash)
            .join(t.users, u.name == s.user_name)
            .where(s.digest == token_digest(sid), s.expires_at > now(), u.enabled.is_(True))
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        flash = json.loads(row[3])
        return Login(User(row[0], row[1]), row[2], [f for f in flash if isinstance(f, str)])

    def set_login_flash(self, sid: str, flash: list[str]) -> None:
        with self._write() as conn:
            conn.execute(
                update(t.sessions)
                .where(t.sessions.c.digest == token_digest(sid))
                .values(flash=json.dumps(flash[:20]))
            )

    def close_login(self, sid: str) -> None:
        """Sign out: the id opens nothing any more."""
        with self._write() as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.digest == token_digest(sid)))

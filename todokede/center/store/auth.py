"""Who may do what at the center: roles, API tokens and passwords.

API tokens are long random secrets (256 bits); the center keeps only their SHA-256
digests, so checking a token is one hash and one indexed lookup — microseconds, not the
cost of a password hash. Passwords (for the web pages' session login) are kept with
argon2. Nothing here knows about HTTP: the web layer turns a header into a token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

Role = Literal["reporter", "analyst", "admin"]
ROLES: tuple[str, ...] = ("reporter", "analyst", "admin")

# Tokens carry a recognisable prefix so a leaked one is easy to grep for in logs/repos.
TOKEN_PREFIX = "tdk_"  # noqa: S105 (a label, not a secret)

_hasher = PasswordHasher()
# Verified against when the user does not exist, so timing does not tell names apart.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    name: str
    role: str
    enabled: bool = True

    @property
    def is_analyst(self) -> bool:
        """Analysts and admins triage, classify and read every report."""
        return self.role in ("analyst", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_read(self, owner: str | None) -> bool:
        """A reporter sees only its own reports; analysts and admins see all."""
        return self.is_analyst or (owner is not None and owner == self.name)


def new_token() -> str:
    """A fresh API token: 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the center stores for a token (hex SHA-256)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; a missing hash costs as much as a wrong password."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()

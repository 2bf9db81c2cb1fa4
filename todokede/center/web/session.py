"""Sessions and CSRF for the HTML pages.

The session lives in one signed cookie (itsdangerous), so web processes stay stateless:
any process with the same secret (``TODOKEDE_SECRET``) reads it. The cookie is HttpOnly,
SameSite=Lax, Secure when the page was served over https, and expires after ``MAX_AGE``
(the signature carries the issue time, so an old cookie is refused even if a browser keeps
it). Every session, signed in or not, holds a random CSRF token that every form repeats; a
POST is accepted only with that token and, when the browser names one, a same-site Origin.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass, field

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "todokede_session"
MAX_AGE = 8 * 3600  # seconds: one working day


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    user: str | None = None
    role: str | None = None
    flash: list[str] = field(default_factory=list)  # message keys shown once
    dirty: bool = False  # changed: the cookie must be (re)sent


class Sessions:
    """Reads and writes the session cookie with one secret."""

    def __init__(self, secret: str | None = None) -> None:
        secret = secret or os.environ.get("TODOKEDE_SECRET") or secrets.token_urlsafe(32)
        self._serializer = URLSafeTimedSerializer(secret, salt="todokede.session")

    def load(self, request: Request) -> Session:
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data = self._serializer.loads(raw, max_age=MAX_AGE)
            except BadSignature:  # includes SignatureExpired
                data = None
            if isinstance(data, dict) and isinstance(data.get("csrf"), str):
                user = data.get("user")
                role = data.get("role")
                flash = data.get("flash")
                return Session(
                    csrf=data["csrf"],
                    user=user if isinstance(user, str) else None,
                    role=role if isinstance(role, str) else None,
                    flash=[f for f in flash if isinstance(f, str)]
                    if isinstance(flash, list)
                    else [],
                )
        return Session(dirty=True)

    def save(self, response: Response, request: Request, session: Session) -> None:
        if not session.dirty:
            return
        value = self._serializer.dumps(
            {
                "csrf": session.csrf,
                "user": session.user,
                "role": session.role,
                "flash": session.flash,
            }
        )
        response.set_cookie(
            COOKIE,
            value,
            max_age=MAX_AGE,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )


def sign_in(session: Session, user: str, role: str) -> None:
    """A new CSRF token at every sign-in, so a token seen before it is worthless after."""
    session.csrf = secrets.token_urlsafe(32)
    session.user = user
    session.role = role
    session.dirty = True


def sign_out(session: Session) -> None:
    session.csrf = secrets.token_urlsafe(32)
    session.user = None
    session.role = None
    session.dirty = True


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another origin.

    Browsers send Origin on every cross-site POST; when it is absent (old clients), a
    Referer is checked instead; with neither, the CSRF token alone decides.
    """
    own = f"{request.url.scheme}://{request.url.netloc}".lower()
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() == own
    referer = request.headers.get("referer")
    if referer:
        return referer.lower() == own or referer.lower().startswith(own + "/")
    return True


def csrf_ok(request: Request, session: Session, token: object) -> bool:
    if not same_origin(request):
        return False
    if not isinstance(token, str) or not token:
        return False
    return hmac.compare_digest(token.encode(), session.csrf.encode())

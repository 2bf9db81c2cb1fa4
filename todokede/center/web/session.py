"""Sessions and CSRF for the HTML pages.

The session cookie holds only a random id (256 bits). A signed-in session is a row in the
store (``center.logins``): signing out deletes it, so the old cookie opens nothing, and
the user's role and ``enabled`` flag are read from the store on every request. A session
lasts at most ``MAX_AGE``. The cookie is HttpOnly, SameSite=Lax, and Secure when the page
was served over https.

Every session, signed in or not, has a CSRF token that every form repeats; a POST is
accepted only with that token and, when the browser names one, a same-site Origin. A
signed-in session's token is random and kept in the store; before sign-in it is an HMAC of
the session id under the server's secret (``TODOKEDE_SECRET``), so visitors who only read
public pages cost the store nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from todokede import settings
from todokede.center.store.auth import User
from todokede.center.store.logins import Logins, new_session_id

COOKIE = "todokede_session"
MAX_AGE = 8 * 3600  # seconds: one working day
_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # what secrets.token_urlsafe(32) gives


@dataclass
class Session:
    id: str
    csrf: str
    user: User | None = None
    flash: list[str] = field(default_factory=list)  # message keys shown once
    dirty: bool = False  # flash changed: the store must be told
    new_cookie: bool = False  # the id changed: the cookie must be (re)sent


class Sessions:
    """Finds the session a request's cookie names, and sends the cookie."""

    def __init__(self, store: Logins, secret: str | None = None) -> None:
        self.store = store
        secret = settings.secret(secret) or secrets.token_urlsafe(32)
        self._key = hashlib.sha256(("todokede.session:" + secret).encode()).digest()

    def load(self, request: Request) -> Session:
        """The request's session (reads the store: call it off the event loop)."""
        sid = request.cookies.get(COOKIE) or ""
        if not _ID.match(sid):
            return self._anonymous(new_session_id(), new_cookie=True)
        login = self.store.login(sid)
        if login is None:
            return self._anonymous(sid)
        return Session(sid, login.csrf, login.user, list(login.flash))

    def _anonymous(self, sid: str, *, new_cookie: bool = False) -> Session:
        csrf = hmac.new(self._key, sid.encode(), hashlib.sha256).hexdigest()
        return Session(sid, csrf, new_cookie=new_cookie)

    def sign_in(self, session: Session, name: str) -> None:
        """A new session id and CSRF token at every sign-in, so neither an id planted
        before it nor a token seen before it is worth anything after."""
        sid, login = self.store.open_login(name, lifetime=timedelta(seconds=MAX_AGE))
        session.id, session.csrf, session.user = sid, login.csrf, login.user
        session.flash, session.dirty, session.new_cookie = [], False, True

    def sign_out(self, session: Session) -> None:
        if session.user is not None:
            self.store.close_login(session.id)
        fresh = self._anonymous(new_session_id(), new_cookie=True)
        session.id, session.csrf, session.user = fresh.id, fresh.csrf, None
        session.flash, session.dirty, session.new_cookie = [], False, True

    def save(self, response: Response, request: Request, session: Session) -> None:
        if session.dirty and session.user is not None:
            self.store.set_login_flash(session.id, session.flash)
            session.dirty = False
        if not session.new_cookie:
            return
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=MAX_AGE,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )


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

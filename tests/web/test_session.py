from __future__ import annotations

import pytest
from itsdangerous import URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from todokede.center.web import session as sessions
from todokede.center.web.session import Session, Sessions, csrf_ok, same_origin, sign_in


def request(
    cookie: str | None = None, scheme: str = "http", headers: dict[str, str] | None = None
) -> Request:
    raw = [(b"host", b"center.example:8080")]
    if cookie is not None:
        raw.append((b"cookie", f"{sessions.COOKIE}={cookie}".encode()))
    for name, value in (headers or {}).items():
        raw.append((name.lower().encode(), value.encode()))
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": scheme,
            "path": "/",
            "query_string": b"",
            "headers": raw,
            "server": ("center.example", 8080),
        }
    )


def cookie_of(response: Response) -> str:
    header = response.headers["set-cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


def test_round_trip_and_flags() -> None:
    store = Sessions("secret-1")
    s = Session()
    sign_in(s, "alice", "reporter")
    response = Response()
    store.save(response, request(scheme="https"), s)
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "secure" in header
    loaded = store.load(request(cookie_of(response)))
    assert (loaded.user, loaded.role, loaded.csrf) == ("alice", "reporter", s.csrf)


def test_other_secret_or_tampering_gives_a_fresh_anonymous_session() -> None:
    response = Response()
    s = Session()
    sign_in(s, "ana", "analyst")
    Sessions("secret-1").save(response, request(), s)
    value = cookie_of(response)
    assert Sessions("secret-2").load(request(value)).user is None
    forged = URLSafeTimedSerializer("guess", salt="todokede.session").dumps(
        {"csrf": "x", "user": "ana", "role": "admin", "flash": []}
    )
    assert Sessions("secret-1").load(request(forged)).user is None
    assert Sessions("secret-1").load(request("garbage")).user is None


def test_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Sessions("secret-1")
    s = Session()
    sign_in(s, "alice", "reporter")
    response = Response()
    store.save(response, request(), s)
    value = cookie_of(response)
    import itsdangerous.timed

    real = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real() + sessions.MAX_AGE + 5)
    assert store.load(request(value)).user is None


def test_sign_in_rotates_the_csrf_token() -> None:
    s = Session()
    before = s.csrf
    sign_in(s, "alice", "reporter")
    assert s.csrf != before


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({}, True),
        ({"Origin": "http://center.example:8080"}, True),
        ({"Origin": "http://center.example:8081"}, False),
        ({"Origin": "null"}, False),
        ({"Origin": "https://center.example:8080"}, False),
        ({"Referer": "http://center.example:8080/reports/new"}, True),
        ({"Referer": "http://center.example:8080.evil.example/"}, False),
        ({"Referer": "http://evil.example/"}, False),
    ],
)
def test_same_origin(headers: dict[str, str], ok: bool) -> None:
    assert same_origin(request(headers=headers)) is ok


def test_csrf_token_must_match() -> None:
    s = Session()
    assert csrf_ok(request(), s, s.csrf)
    assert not csrf_ok(request(), s, s.csrf + "x")
    assert not csrf_ok(request(), s, None)
    assert not csrf_ok(request(), s, "")
    assert not csrf_ok(request(headers={"Origin": "http://evil.example"}), s, s.csrf)

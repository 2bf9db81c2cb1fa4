from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response

from todokede.center.store import Store, logins
from todokede.center.web import session as session_module
from todokede.center.web.session import Session, Sessions, csrf_ok, same_origin


def request(
    cookie: str | None = None, scheme: str = "http", headers: dict[str, str] | None = None
) -> Request:
    raw = [(b"host", b"center.example:8080")]
    if cookie is not None:
        raw.append((b"cookie", f"{session_module.COOKIE}={cookie}".encode()))
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


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'center.db'}")
    s.add_user("alice", "reporter", "alice-password-1")
    s.add_user("ana", "analyst", "ana-password-1")
    yield s
    s.close()


def signed_in(sessions: Sessions, name: str, scheme: str = "http") -> tuple[Session, str]:
    s = sessions.load(request())
    sessions.sign_in(s, name)
    response = Response()
    sessions.save(response, request(scheme=scheme), s)
    return s, cookie_of(response)


def test_round_trip_and_flags(store: Store) -> None:
    sessions = Sessions(store, "secret-1")
    s, value = signed_in(sessions, "alice", scheme="https")
    loaded = sessions.load(request(value))
    assert loaded.user is not None
    assert (loaded.user.name, loaded.user.role, loaded.csrf) == ("alice", "reporter", s.csrf)


def test_the_cookie_holds_only_a_random_id(store: Store) -> None:
    sessions = Sessions(store, "secret-1")
    s = sessions.load(request())
    sessions.sign_in(s, "ana")
    response = Response()
    sessions.save(response, request(scheme="https"), s)
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "secure" in header
    value = cookie_of(response)
    assert len(value) == 43 and "ana" not in value and "analyst" not in value
    # The store keeps a digest, never the id itself.
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT digest FROM sessions").all()
    assert rows and all(value not in row[0] for row in rows)


@pytest.mark.parametrize("cookie", ["garbage", "x" * 43, "", "a" * 500])
def test_unknown_or_malformed_cookies_are_not_signed_in(store: Store, cookie: str) -> None:
    assert Sessions(store, "secret-1").load(request(cookie)).user is None


def test_sign_out_deletes_the_session(store: Store) -> None:
    sessions = Sessions(store, "secret-1")
    s, value = signed_in(sessions, "alice")
    sessions.sign_out(s)
    assert sessions.load(request(value)).user is None
    assert s.id != value and s.user is None


def test_expiry(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = Sessions(store, "secret-1")
    _, value = signed_in(sessions, "alice")
    later = datetime.now(UTC) + timedelta(seconds=session_module.MAX_AGE + 5)
    monkeypatch.setattr(logins, "now", lambda: later)
    assert sessions.load(request(value)).user is None


@pytest.mark.parametrize(
    ("change", "user"),
    [
        (lambda st: st.set_role("alice", "analyst", actor="t"), ("alice", "analyst")),
        (lambda st: st.set_enabled("alice", False, actor="t"), None),
        (lambda st: st.set_password("alice", "new-password-1", actor="t"), None),
    ],
    ids=["set-role", "disable", "set-password"],
)
def test_the_store_decides_on_every_request(
    store: Store, change: Callable[[Store], object], user: tuple[str, str] | None
) -> None:
    sessions = Sessions(store, "secret-1")
    _, value = signed_in(sessions, "alice")
    change(store)
    loaded = sessions.load(request(value)).user
    assert (None if loaded is None else (loaded.name, loaded.role)) == user


def test_sign_in_rotates_the_id_and_the_csrf_token(store: Store) -> None:
    sessions = Sessions(store, "secret-1")
    s = sessions.load(request())
    before = (s.id, s.csrf)
    sessions.sign_in(s, "alice")
    assert s.id != before[0] and s.csrf != before[1]


def test_anonymous_csrf_depends_on_the_secret(store: Store) -> None:
    a = Sessions(store, "secret-1").load(request("b" * 43))
    b = Sessions(store, "secret-2").load(request("b" * 43))
    assert a.user is None and a.csrf != b.csrf
    assert Sessions(store, "secret-1").load(request("b" * 43)).csrf == a.csrf


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
    s = Session("i" * 43, "token-1")
    assert csrf_ok(request(), s, s.csrf)
    assert not csrf_ok(request(), s, s.csrf + "x")
    assert not csrf_ok(request(), s, None)
    assert not csrf_ok(request(), s, "")
    assert not csrf_ok(request(headers={"Origin": "http://evil.example"}), s, s.csrf)

"""Access that can be cut off, over real HTTP: signing out ends the session for good, and
the store decides on every request (a new role, a disabled user, a new password). Also
what the pages refuse without a 500: huge numbers in the triage form and the inbox's
query, and an empty report form."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.web.conftest import csrf_of, signed_in
from tests.web.server import Live
from todokede.center.store import Store
from todokede.center.web.session import COOKIE


def session_cookie(client: httpx.Client) -> str:
    value = client.cookies.get(COOKIE)
    assert value, "no session cookie"
    return value


def with_cookie(live: Live, value: str) -> httpx.Client:
    """A new client that presents ``value`` as its session cookie (as a thief would)."""
    return httpx.Client(base_url=live.url, cookies={COOKIE: value}, timeout=30)


def test_signing_out_ends_the_session_for_good(live: Live) -> None:
    with signed_in(live, "alice") as client:
        old = session_cookie(client)
        assert client.get("/my").status_code == 200
        token = csrf_of(client.get("/my").text)
        out = client.post("/logout", data={"csrf": token})
        assert out.status_code == 303
        assert session_cookie(client) != old
        assert client.get("/my").status_code == 303
    with with_cookie(live, old) as thief:
        response = thief.get("/my")
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


@pytest.mark.parametrize(
    ("change", "inbox", "my"),
    [
        (lambda s: s.set_role("carol", "analyst", actor="test"), 200, 200),
        (lambda s: s.set_enabled("carol", False, actor="test"), 303, 303),
        (lambda s: s.set_password("carol", "carol-password-2", actor="test"), 303, 303),
    ],
    ids=["set-role", "disable", "set-password"],
)
def test_the_store_decides_on_the_next_request(
    live: Live, change: Callable[[Store], object], inbox: int, my: int
) -> None:
    with signed_in(live, "carol") as client:
        assert client.get("/inbox").status_code == 403
        change(live.store)
        try:
            assert client.get("/inbox").status_code == inbox
            assert client.get("/my").status_code == my
        finally:
            live.store.set_role("carol", "reporter", actor="test")
            live.store.set_enabled("carol", True, actor="test")
            live.store.set_password("carol", "carol-password-1", actor="test")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duplicate_of", str(2**63)),
        ("duplicate_of", "9" * 500),
        ("incident_id", str(2**31)),
        ("incident_id", "0"),
    ],
)
def test_huge_numbers_in_the_triage_form_are_named(live: Live, field: str, value: str) -> None:
    with signed_in(live, "bob") as bob:
        form = bob.get("/reports/new")
        sent = bob.post(
            "/reports/new",
            data={"csrf": csrf_of(form.text), "action": "send", "title": "numbers"},
        )
        rid = int(sent.headers["location"].rsplit("/", 1)[1])
    with signed_in(live, "ana") as ana:
        token = csrf_of(ana.get(f"/reports/{rid}").text)
        response = ana.post(
            f"/reports/{rid}/triage", data={"csrf": token, "status": "triaged", field: value}
        )
        assert response.status_code == 422, response.text
        errors = response.text.split('class="error-box"', 1)[1].split("</div>", 1)[0]
        assert f"<li>{field}: " in errors, errors
        assert live.store.get_report(rid).triage.status == "received"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"incident": str(2**63)}, 422),
        ({"incident": "9" * 300}, 422),
        ({"offset": str(2**63)}, 200),
        ({"offset": "9" * 300}, 200),
    ],
)
def test_huge_numbers_in_the_inbox_query(live: Live, params: dict[str, str], status: int) -> None:
    with signed_in(live, "ana") as ana:
        assert ana.get("/inbox", params=params).status_code == status


def test_an_empty_form_is_no_report(live: Live) -> None:
    with signed_in(live, "alice", lang="en") as client:
        before = live.store.list_reports(owner="alice")[1]
        for action in ("send", "draft"):
            form = client.get("/reports/new")
            response = client.post(
                "/reports/new",
                data={"csrf": csrf_of(form.text), "action": action, "reporter.name": "A"},
            )
            assert response.status_code == 422
            assert "fill in at least the title or what happened" in response.text
            assert 'value="A"' in response.text  # what was typed stays
        assert live.store.list_reports(owner="alice")[1] == before

"""Each page's JSON twin (``PATH.json``, or the page with ``Accept: application/json``):
the page's own data as JSON, behind the page's own sign-in and role, on a real server."""

from __future__ import annotations

import re
from datetime import date

import httpx
import pytest
from starlette.routing import Route

from tests.web.conftest import digest_of, publish_month, signed_in
from tests.web.server import Live
from todokede.center import taxonomy
from todokede.center.intake.schema import Report, Triage
from todokede.center.web.routes import ROUTES

NOTE = "internal: call the reporter back"


def setup_reports(live: Live) -> tuple[int, int]:
    """A report of alice's (triaged, with an internal note) and one of bob's."""
    mine = live.store.add_report(
        Report(title="alice's", received=date(1997, 9, 17), methods=["access_probe"]),
        owner="alice",
    )
    live.store.set_triage(mine.id, Triage(status="triaged", note=NOTE), actor="ana")
    theirs = live.store.add_report(Report(title="bob's", methods=["dos"]), owner="bob")
    return mine.id, theirs.id


@pytest.fixture(scope="module")
def ids(live: Live) -> tuple[int, int]:
    return setup_reports(live)


PRIVATE = ["/my.json", "/reports/{mine}.json", "/inbox.json", "/dashboard.json"]


@pytest.mark.parametrize("path", PRIVATE)
def test_a_private_twin_needs_the_sign_in_its_page_needs(
    live: Live, ids: tuple[int, int], path: str
) -> None:
    url = live.url + path.format(mine=ids[0])
    response = httpx.get(url, timeout=30)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]
    page = httpx.get(url.removesuffix(".json"), timeout=30)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


@pytest.mark.parametrize(
    ("path", "status"),
    [("/inbox.json", 403), ("/dashboard.json", 403), ("/reports/{theirs}.json", 404)],
)
def test_a_reporter_gets_from_a_twin_what_the_page_gives(
    live: Live, ids: tuple[int, int], path: str, status: int
) -> None:
    with signed_in(live, "alice") as alice:
        url = path.format(theirs=ids[1])
        assert alice.get(url).status_code == status
        assert alice.get(url.removesuffix(".json")).status_code == status


def test_my_reports_twin_lists_what_the_page_links(live: Live, ids: tuple[int, int]) -> None:
    with signed_in(live, "alice") as alice:
        twin = alice.get("/my.json").json()
        page = alice.get("/my").text
    listed = [r["id"] for r in twin["reports"]]
    assert ids[0] in listed and ids[1] not in listed
    linked = {int(n) for n in re.findall(r'href="/reports/(\d+)"', page)}
    assert set(listed) == linked
    assert twin["total"] == len(listed)


def test_a_report_twin_hides_the_note_from_its_reporter(live: Live, ids: tuple[int, int]) -> None:
    with signed_in(live, "alice") as alice:
        own = alice.get(f"/reports/{ids[0]}.json").json()
    assert own["report"]["id"] == ids[0] and own["mine"] is True
    assert own["report"]["triage"]["note"] is None and NOTE not in str(own)
    assert "audit" not in own  # the analysts' part of the page
    with signed_in(live, "ana") as ana:
        seen = ana.get(f"/reports/{ids[0]}.json").json()
        by_accept = ana.get(f"/reports/{ids[0]}", headers={"Accept": "application/json"})
    assert seen["report"]["triage"]["note"] == NOTE
    assert [e["action"] for e in seen["audit"]][:1] == ["create"]
    assert by_accept.headers["content-type"] == "application/json"
    assert by_accept.json()["report"] == seen["report"]


def test_the_inbox_twin_lists_the_inbox(live: Live, ids: tuple[int, int]) -> None:
    with signed_in(live, "ana") as ana:
        twin = ana.get("/inbox.json").json()
        page = ana.get("/inbox").text
        dashboard = ana.get("/dashboard.json").json()
    listed = [r["id"] for r in twin["reports"]]
    assert set(ids) <= set(listed)
    assert all(f'href="/reports/{n}"' in page for n in listed)
    assert "1997-09" in twin["months"] and "1997-09" in dashboard["months"]


@pytest.mark.parametrize("path", ["/.json", "/published.json", "/statistics.json"])
def test_public_twins_need_no_sign_in(live: Live, path: str) -> None:
    response = httpx.get(live.url + path, timeout=30)
    assert response.status_code == 200 and "months" in response.json()


def test_the_home_twin_lists_the_months_the_home_page_links(
    live: Live, ids: tuple[int, int]
) -> None:
    with signed_in(live, "ana") as ana:
        publish_month(ana, "1997-09")
    twin = httpx.get(live.url + "/.json", timeout=30).json()
    by_accept = httpx.get(live.url + "/", headers={"Accept": "application/json"}, timeout=30)
    page = httpx.get(live.url + "/", timeout=30).text
    assert "1997-09" in twin["months"] and by_accept.json() == twin
    assert twin["months"] == re.findall(r'href="/published/(\d{4}-\d{2})"', page)


def test_the_preview_twin_is_what_the_preview_page_would_publish(
    live: Live, ids: tuple[int, int]
) -> None:
    with signed_in(live, "ana") as ana:
        twin = ana.get("/publish.json", params={"month": "1997-09"})
        page = ana.get("/publish", params={"month": "1997-09"}).text
        future = ana.get("/publish.json", params={"month": "2999-01"})
        bad = ana.get("/publish.json", params={"month": "1997-13"})
    data = twin.json()
    assert twin.status_code == 200 and twin.headers["content-type"] == "application/json"
    assert data["month"] == "1997-09" and data["refused"] is None
    assert data["digest"] == digest_of(page)
    assert len(data["cases"]) == 1 and data["cases"][0]["title"]  # alice's, triaged
    assert NOTE not in str(data) and "alice's" not in str(data)  # public text only
    assert future.status_code == 409 and future.json()["refused"]  # not closed yet
    assert future.json()["cases"] == [] and future.json()["digest"] == ""
    assert bad.status_code == 422 and bad.json()["error"]


@pytest.mark.parametrize(("who", "status"), [(None, 401), ("alice", 403)])
def test_the_preview_twin_is_for_analysts(live: Live, who: str | None, status: int) -> None:
    if who is None:
        response = httpx.get(live.url + "/publish.json?month=1997-09", timeout=30)
    else:
        with signed_in(live, who) as client:
            response = client.get("/publish.json?month=1997-09")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_report_form_twin_gives_its_fields_and_choices(live: Live, lang: str) -> None:
    assert httpx.get(live.url + "/reports/new.json", timeout=30).status_code == 401
    with signed_in(live, "alice", lang) as alice:
        form = alice.get("/reports/new.json").json()
        page = alice.get("/reports/new").text
    for vocabulary, terms in taxonomy.VOCABULARIES.items():
        choices = form["choices"][vocabulary]
        assert [c["code"] for c in choices] == list(terms)
        assert [c["label"] for c in choices] == [
            t.ja if lang == "ja" else t.en for t in terms.values()
        ]
    method = form["choices"]["method"][0]
    assert f'value="{method["code"]}"' in page and method["label"] in page
    assert form["fields"]["title"] and form["fields"]["title"] in page
    assert set(form["values"]) >= {"title", "narrative"}


def test_every_page_is_in_the_route_table(live: Live) -> None:
    """The table is the one place: the app serves its pages, and no page besides them."""
    from todokede.center.web.app import create_app

    app = create_app(live.store)
    served = {
        (route.path, tuple(sorted(route.methods or ())))
        for route in app.router.routes
        if type(route) is Route and route.path != "/openapi.json"  # not the API's
    }
    listed = set()
    for page in ROUTES:
        methods = tuple(sorted({*page.methods, "HEAD"} if "GET" in page.methods else page.methods))
        path = page.path
        listed.add((path, methods))
        if page.twin:
            listed.add((f"{path}.json", methods))
    assert served == listed

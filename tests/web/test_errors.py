"""Errors outside any page: a path that does not exist, a method a path does not take, an
unexpected exception. Pages get the site's HTML page (ja/en, the site's layout, no
traceback); the API keeps its JSON errors."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.server import Live
from todokede.center.store import Store
from todokede.center.web.app import create_app
from todokede.errors import (
    AccessDenied,
    ConfigError,
    Conflict,
    InputError,
    NotFound,
    StoreError,
    TodokedeError,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette asks for httpx2 at import time
    from fastapi.testclient import TestClient


def assert_site_page(response: httpx.Response, status: int, lang: str, heading: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == lang
    assert "script-src 'self'" in response.headers["content-security-policy"]
    text = response.text
    assert f'<html lang="{lang}">' in text and 'href="/static/site.css"' in text
    assert 'href="/published"' in text  # the site's navigation
    assert heading in text
    assert "Traceback" not in text and '"detail"' not in text


@pytest.mark.parametrize(
    ("lang", "heading"), [("ja", "ページが見つかりません"), ("en", "Page not found")]
)
@pytest.mark.parametrize("path", ["/no/such/page", "/reports/new/x", "/static/none.css"])
def test_unknown_page_is_an_html_404(live: Live, lang: str, heading: str, path: str) -> None:
    response = httpx.get(live.url + path, headers={"Accept-Language": lang})
    assert_site_page(response, 404, lang, heading)


def test_unknown_api_path_stays_json(live: Live) -> None:
    for path in ("/api/no/such", "/api/reports/1/nothing"):
        response = httpx.get(live.url + path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) >= {"error", "field"}


def test_hostile_path_is_not_reflected(live: Live) -> None:
    response = httpx.get(live.url + "/<script>alert(1)</script>", headers={"Accept-Language": "en"})
    assert response.status_code == 404
    assert "<script>" not in response.text and "alert(1)" not in response.text.replace("%", "")


@pytest.mark.parametrize(
    ("lang", "message"),
    [("ja", "このページはその方法では利用できません"), ("en", "This page cannot be used that way")],
)
def test_wrong_method_on_a_page_is_an_html_405(live: Live, lang: str, message: str) -> None:
    response = httpx.put(live.url + "/login", headers={"Accept-Language": lang})
    assert_site_page(response, 405, lang, message)
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    api = httpx.put(live.url + "/api/me")
    assert api.status_code == 405 and api.headers["content-type"] == "application/json"
    assert api.headers["allow"] == "GET"
    # Each method is a route of its own: Allow names them all.
    api = httpx.patch(live.url + "/api/reports/1")
    assert api.status_code == 405 and api.headers["allow"] == "GET, PUT"


@pytest.fixture
def broken(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A center whose store fails unexpectedly (not a TodokedeError) on one call."""
    store = Store.open(f"sqlite:///{tmp_path / 'center.db'}")

    def fail() -> list[str]:
        raise RuntimeError("secret internals /var/lib/x")

    store.latest_revisions = fail  # type: ignore[method-assign,assignment]
    app = create_app(store)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, app
    store.close()


@pytest.mark.parametrize(("lang", "heading"), [("ja", "エラー"), ("en", "Something went wrong")])
def test_unexpected_error_on_a_page_is_an_html_500(
    broken: tuple[Any, Store], lang: str, heading: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = broken
    response = client.get("/published", headers={"Accept-Language": lang})
    assert_site_page(response, 500, lang, heading)
    assert "secret internals" not in response.text
    assert "secret internals" in caplog.text  # logged for the operator, not shown
    api = client.get("/api/public/months")
    assert (api.status_code, api.json()["error"]) == (500, "internal error")


def test_error_page_survives_a_broken_template(broken: tuple[Any, Any]) -> None:
    client, app = broken
    app.state.site.env = None  # rendering itself now fails
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "Error" in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[tuple[Any, Store]]:
    """A center with 1997-04 published then withdrawn, whose store can be made to fail
    with any of the product's errors."""
    from todokede.center.intake.schema import Report, Triage

    store = Store.open(f"sqlite:///{tmp_path / 'center.db'}")
    store.add_report(Report(received=date(1997, 4, 2), methods=["dos"]), triage=Triage())
    store.publish_month("1997-04", actor="ana", today=date(1997, 5, 1))
    store.withdraw_month("1997-04", actor="ana", reason="counted twice")
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        yield client, store
    store.close()


@pytest.mark.parametrize(
    ("month", "status"),
    [("1997-04", 410), ("1997-05", 404), ("1997-13", None)],
)
def test_a_month_gets_one_status_on_page_twin_and_api(
    failing: tuple[Any, Store], month: str, status: int | None
) -> None:
    client, _ = failing
    page = client.get(f"/published/{month}")
    twin = client.get(f"/published/{month}.json")
    api = client.get(f"/api/public/months/{month}")
    if status is None:  # not a month at all: the page and its twin refuse the input
        assert page.status_code == twin.status_code == 422
        assert api.status_code == 404  # the API's path pattern names no record
        return
    assert page.status_code == twin.status_code == api.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert twin.headers["content-type"] == "application/json" and twin.json()["error"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (StoreError("the database went away"), 503),
        (ConfigError("no such setting"), 503),
        (NotFound("no such month"), 404),
        (AccessDenied("not you"), 403),
        (InputError("bad", field="month"), 422),
        (Conflict("refused", field="month"), 409),
        (TodokedeError("something else"), 400),
    ],
)
def test_one_table_for_pages_and_api(
    failing: tuple[Any, Store], error: TodokedeError, status: int
) -> None:
    client, store = failing

    def fail() -> list[str]:
        raise error

    store.latest_revisions = fail  # type: ignore[method-assign,assignment]
    page = client.get("/published")
    api = client.get("/api/public/months")
    assert page.status_code == api.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert api.json()["error"]
    if isinstance(error, StoreError) and not isinstance(error, NotFound):
        assert "went away" not in page.text + api.text  # the store's words stay inside

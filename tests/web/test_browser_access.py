"""In a real headless Chromium: a signed-out session's cookie opens nothing when replayed,
a revoked API token is refused on the very next request, the statistics page and the
dashboard fit 1280 px and a 390 px phone without sideways scrolling (measured in the
browser), and /api/docs runs Swagger UI from the package under the site's CSP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.server import PASSWORDS, Live
from todokede.center.intake.schema import Report, Triage
from todokede.center.web.session import COOKIE

pytestmark = [pytest.mark.peer, pytest.mark.slow]

METHODS = ["access_probe", "security_hole_attack", "mail_relay", "mail_bombing", "worm_probe",
           "dos", "masquerading", "spam", "address_spoofing", "malicious_code"]  # fmt: skip
DAMAGE = ["none", "service_lowering", "mail_relay", "file_alteration", "homepage_alteration"]
CAUSES = ["misconfiguration", "old_version", "password_management"]


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    made: list[Any] = []

    def new(width: int = 1280, lang: str = "en") -> Any:
        ctx = browser.new_context(
            viewport={"width": width, "height": 900}, locale="ja-JP" if lang == "ja" else "en-GB"
        )
        ctx.set_default_timeout(15_000)
        made.append(ctx)
        return ctx

    yield new
    for ctx in made:
        ctx.close()


def sign_in(page: Any, live: Live, name: str) -> None:
    page.goto(live.url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name][1])
    with page.expect_navigation():
        page.locator("main").get_by_role("button", name="Sign in").click()
    assert "/login" not in page.url


def test_a_signed_out_cookie_opens_nothing(context: Any, live: Live) -> None:
    person = context()
    page = person.new_page()
    sign_in(page, live, "alice")
    page.goto(live.url + "/my")
    old = next(c for c in person.cookies() if c["name"] == COOKIE)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    assert next(c for c in person.cookies() if c["name"] == COOKIE)["value"] != old["value"]
    # Someone who kept a copy of the cookie from before: refused, sent to sign in.
    thief = context()
    thief.add_cookies([{k: old[k] for k in ("name", "value", "domain", "path")}])
    replay = thief.new_page()
    replay.goto(live.url + "/my")
    assert "/login" in replay.url
    assert replay.goto(live.url + "/inbox") is not None and "/login" in replay.url


def test_a_revoked_token_is_refused_at_once(context: Any, live: Live) -> None:
    token = live.store.new_token("bob")
    page = context().new_page()
    page.goto(live.url + "/")

    def me() -> int:
        status: int = page.evaluate(
            """async (token) => (await fetch("/api/me",
                   {headers: {Authorization: "Bearer " + token}})).status""",
            token,
        )
        return status

    assert me() == 200
    live.store.revoke_tokens("bob", token, actor="test")
    assert me() == 401


@pytest.fixture(scope="module")
def published(live: Live) -> str:
    """Thirteen months of reports with many methods, damages and causes, 1997-09 and
    1997-08 published: the widest statistics tables the center draws."""
    for i in range(60):
        year, month = 1996 + (8 + i % 13) // 12, (8 + i % 13) % 12 + 1
        report = Report(
            methods=[METHODS[i % 10], METHODS[(i + 3) % 10]],
            damage=[DAMAGE[i % 5]],
            causes=[CAUSES[i % 3]],
            actual_damage=bool(i % 3),
            received=f"{year}-{month:02d}-1{i % 9}",
        )
        sr = live.store.add_report(report, owner="carol")
        live.store.set_triage(sr.id, Triage(status="triaged"), actor="ana")
    for published in ("1997-08", "1997-09"):
        live.store.publish_month(published, actor="ana")
    return "1997-09"


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("path", ["/statistics", "/dashboard?month=1997-09"])
def test_statistics_fit_the_screen(
    context: Any, live: Live, published: str, path: str, width: int, lang: str
) -> None:
    page = context(width, lang).new_page()
    if path.startswith("/dashboard"):  # analysts only; the sign-in form is read in English
        page.goto(live.url + "/lang/en?next=/")
        sign_in(page, live, "ana")
        page.goto(live.url + f"/lang/{lang}?next=/")
    response = page.goto(live.url + path)
    assert response is not None and response.status == 200
    assert page.locator("table.stats").count() >= 4
    page_width, inner = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert page_width <= inner, f"{path} at {width}px scrolls sideways ({page_width} > {inner})"
    if width == 1280:
        # On a desktop every column shows: no table needs to scroll inside its box.
        cut = page.evaluate(
            """() => [...document.querySelectorAll('.table-wrap')]
                   .filter(w => w.scrollWidth > w.clientWidth)
                   .map(w => w.querySelector('caption').textContent)"""
        )
        assert cut == [], f"cut off at 1280px: {cut}"
    captions = page.locator(".charts figcaption").all_text_contents()
    year = "1997年1-9月" if lang == "ja" else "1997 to Sep"
    assert any(year in c for c in captions), captions  # the by-method chart's period


def test_api_docs_run_under_the_csp(context: Any, live: Live) -> None:
    page = context().new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live.url) else None)
    response = page.goto(live.url + "/api/docs")
    assert response is not None and response.status == 200
    page.wait_for_selector(".opblock-tag", timeout=20_000)
    assert page.locator(".opblock").count() >= 10
    assert outside == [] and problems == [], (outside, problems)

"""End to end in a real headless Chromium: a reporter fills and sends the form, an analyst
finds, classifies and publishes it, the public reads it without the reporter's name — in
Japanese and in English. Attacker-written text stays text; a cross-site POST is refused.
Screenshots of the main pages go to tests/_artifacts/screenshots/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.web.server import PASSWORDS, Live, serve

pytestmark = [pytest.mark.peer, pytest.mark.slow]


# What each language's page calls things (the test reads the page as a person would).
UI = {
    "ja": {
        "user": "ユーザ名",
        "password": "パスワード",
        "login": "ログイン",
        "logout": "ログアウト",
        "title": "件名(届出概要)",
        "organisation": "企業・組織名",
        "name": "氏名",
        "email": "E-mail",
        "device": "被害を受けた機器",
        "mail_server": "メールサーバ",
        "discovered": "発見年月日",
        "probe": "アクセス形跡(未遂)",
        "no": "いいえ",
        "sources": "攻撃元(ホスト名・アドレス)",
        "targets": "対象サービス",
        "attempts": "回数(試行・メール通数)",
        "narrative": "被害の状況",
        "excerpt": "ログの抜粋",
        "countermeasures": "対策",
        "send": "送信",
        "sent": "届出を受け付けました",
        "search": "検索",
        "apply": "絞り込む",
        "status": "状態",
        "triaged": "分類済み",
        "hole": "セキュリティホールアタック",
        "ptitle": "公表時の見出し (日本語)",
        "pnarr": "公表する概要(日本語)",
        "save": "保存",
        "preview": "プレビュー",
        "publish": "公表する",
        "confirm": "プレビューを確認しました",
        "saved": "保存しました",
    },
    "en": {
        "user": "User name",
        "password": "Password",
        "login": "Sign in",
        "logout": "Sign out",
        "title": "Title (summary)",
        "organisation": "Organisation",
        "name": "Name",
        "email": "E-mail",
        "device": "Affected device",
        "mail_server": "Mail server",
        "discovered": "Date discovered",
        "probe": "Access probe (attempt)",
        "no": "No",
        "sources": "Sources (host names, addresses)",
        "targets": "Targeted services",
        "attempts": "Number of attempts or messages",
        "narrative": "What happened, in your words",
        "excerpt": "Log excerpt",
        "countermeasures": "Countermeasures",
        "send": "Send report",
        "sent": "Report received",
        "search": "Search",
        "apply": "Apply",
        "status": "Status",
        "triaged": "Triaged",
        "hole": "Security-hole attack",
        "ptitle": "Heading in the publication (English)",
        "pnarr": "Public summary (English)",
        "save": "Save",
        "preview": "Preview",
        "publish": "Publish",
        "confirm": "I have checked the preview",
        "saved": "Saved",
    },
}

LOG = (
    "Sep 16 22:40:01 mail imapd[4711]: refused connect from ppp12.example.net\n"
    "Sep 16 22:40:03 mail imapd[4712]: refused connect from ppp12.example.net"
)


class Person:
    """One browser context (its own cookies) in one language, watching for script."""

    def __init__(self, browser: Any, live: Live, lang: str) -> None:
        self.live = live
        self.lang = lang
        self.ui = UI[lang]
        self.context = browser.new_context(
            locale="ja-JP" if lang == "ja" else "en-GB",
            viewport={"width": 1280, "height": 900},
        )
        self.context.set_default_timeout(15_000)
        self.dialogs: list[str] = []
        self.page = self.context.new_page()
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def go(self, path: str) -> Any:
        response = self.page.goto(self.live.url + path)
        assert response is not None
        return response

    def sign_in(self, name: str) -> None:
        self.go("/login")
        self.page.get_by_label(self.ui["user"]).fill(name)
        self.page.get_by_label(self.ui["password"]).fill(PASSWORDS[name][1])
        with self.page.expect_navigation():
            self.page.locator("main").get_by_role("button", name=self.ui["login"]).click()
        assert "/login" not in self.page.url

    def no_script_ran(self) -> None:
        assert self.page.evaluate("() => window.__xss === undefined")
        assert self.dialogs == []

    def shot(self, folder: Path, name: str) -> None:
        self.page.screenshot(path=str(folder / f"{name}-{self.lang}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def people(browser: Any, live: Live) -> Iterator[list[Person]]:
    made: list[Person] = []
    yield made
    for person in made:
        person.close()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_report_classify_publish(
    lang: str, browser: Any, live: Live, people: list[Person], artifacts: Path
) -> None:
    tag = f"e2e-{lang}"
    month = datetime.now(UTC).strftime("%Y-%m")

    # The reporter fills in and sends the form.
    reporter = Person(browser, live, lang)
    people.append(reporter)
    ui, page = reporter.ui, reporter.page
    reporter.go("/")
    reporter.shot(artifacts, "home")
    reporter.sign_in("alice")
    reporter.go("/reports/new")
    assert page.locator("html").get_attribute("lang") == lang
    page.get_by_label(ui["title"], exact=True).fill(f"{tag} IMAP refused connections")
    page.get_by_label(ui["organisation"]).fill("Example Trading Co.")
    page.get_by_label(ui["name"], exact=True).fill("Yamada Hanako")
    page.get_by_label(ui["email"]).fill("hanako@example.jp")
    page.get_by_label(ui["device"]).select_option(label=ui["mail_server"])
    page.get_by_label(ui["discovered"]).fill("1997-09-17")
    page.get_by_label(ui["probe"]).check()
    page.get_by_role("group", name=re.compile("実際の被害|actual damage")).get_by_label(
        ui["no"], exact=True
    ).check()
    page.get_by_label(ui["sources"]).fill("ppp12.example.net\ndial3.example.org")
    page.get_by_label(ui["targets"]).fill("imap")
    page.get_by_label(ui["attempts"]).fill("9")
    page.get_by_label(ui["narrative"]).fill("Nine refused attempts found in the tcpd log.")
    page.get_by_label(ui["excerpt"], exact=True).fill(LOG)
    page.get_by_label(ui["countermeasures"], exact=True).fill("Upgraded to IMAP4rev1.")
    reporter.shot(artifacts, "report-form")
    page.get_by_role("button", name=ui["send"], exact=True).click()
    page.wait_for_url(re.compile(r"/reports/\d+$"))
    rid = int(page.url.rsplit("/", 1)[1])
    assert ui["sent"] in page.locator("main").inner_text()
    assert "refused connect from ppp12.example.net" in page.locator("pre.log").first.inner_text()
    reporter.shot(artifacts, "report-sent")
    reporter.go("/my")
    assert f"#{rid}" in page.locator("main").inner_text()
    reporter.shot(artifacts, "my-reports")

    # The analyst finds it, classifies it and publishes the month.
    analyst = Person(browser, live, lang)
    people.append(analyst)
    ui, page = analyst.ui, analyst.page
    analyst.sign_in("ana")
    analyst.go("/inbox")
    page.get_by_label(ui["search"]).fill(tag)
    with page.expect_navigation():
        page.get_by_role("button", name=ui["apply"]).click()
    assert "q=e2e-" in page.url
    rows = page.locator("table.inbox tbody tr")
    assert rows.count() == 1
    analyst.shot(artifacts, "inbox")
    rows.first.get_by_role("link", name=f"#{rid}").click()
    page.wait_for_url(re.compile(rf"/reports/{rid}$"))
    assert "Yamada Hanako" in page.locator("main").inner_text()  # analysts see the reporter
    form = page.locator("form.triage")
    form.get_by_label(ui["status"]).select_option(label=ui["triaged"])
    form.get_by_label(ui["hole"]).check()
    form.get_by_label(ui["ptitle"]).fill(f"{tag}: attempts on an IMAP server")
    form.get_by_label(ui["pnarr"]).fill("Refused attempts on an IMAP server, found in logs.")
    with page.expect_navigation():  # the same URL again, after the POST
        form.get_by_role("button", name=ui["save"], exact=True).click()
    assert page.url.endswith(f"/reports/{rid}")
    assert ui["saved"] in page.locator("main").inner_text()
    analyst.shot(artifacts, "report-analyst")
    analyst.go(f"/dashboard?month={month}")
    page.locator("img[src$='monthly.svg']").wait_for()
    # Both charts arrive as images (rendered on the server) and decode.
    page.wait_for_function(
        "() => document.images.length >= 2"
        " && [...document.images].every(i => i.complete && i.naturalWidth > 0)"
    )
    analyst.shot(artifacts, "dashboard")
    page.get_by_label(re.compile("^(月|Month)$")).last.select_option(month)
    page.get_by_role("button", name=ui["preview"], exact=True).click()
    # The preview shows the month exactly as it would be published; publishing needs the tick.
    page.wait_for_url(re.compile(rf"/publish\?month={month}$"))
    assert f"{tag}: attempts on an IMAP server" in page.locator("main").inner_text()
    analyst.shot(artifacts, "publish-preview")
    page.get_by_role("button", name=ui["publish"], exact=True).click()
    assert "/publish?" in page.url  # the browser refused: the box is not ticked
    page.get_by_label(re.compile(ui["confirm"])).check()
    page.get_by_role("button", name=ui["publish"], exact=True).click()
    page.wait_for_url(re.compile(rf"/published/{month}$"))

    stored = live.store.get_report(rid)
    assert stored.triage.status == "triaged"
    assert "security_hole_attack" in stored.effective_methods()
    assert month in live.store.published_months()

    # The public reads it: the case is there, the reporter is not.
    public = Person(browser, live, lang)
    people.append(public)
    public.go(f"/published/{month}")
    text = public.page.locator("body").inner_text()
    assert f"{tag}: attempts on an IMAP server" in text
    for secret in ("Yamada", "Hanako", "hanako@example.jp", "Example Trading", "alice"):
        assert secret not in public.page.content()
    public.shot(artifacts, "published-month")
    public.page.get_by_role("link", name="HTML").click()
    public.page.wait_for_url(re.compile(r"/report\.html\?lang="))
    assert f"{tag}: attempts on an IMAP server" in public.page.content()
    assert "Yamada" not in public.page.content()
    public.go(f"/statistics?month={month}")
    public.page.locator("img[src$='methods.svg']").wait_for()
    public.shot(artifacts, "statistics")
    for person in people:
        person.no_script_ran()


PAYLOADS = [
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=2">',
    "'><svg onload=window.__xss=3>",
    "javascript:window.__xss=4",
    "</textarea><script>alert(5)</script>",
    "{{ 7*7 }}<b>bold?</b>",
]


def test_xss_payloads_stay_text(browser: Any, live: Live, people: list[Person]) -> None:
    reporter = Person(browser, live, "en")
    people.append(reporter)
    page = reporter.page
    reporter.sign_in("alice")
    reporter.go("/reports/new")
    fields = page.locator(
        "form.report-form input[type=text], form.report-form input[type=email], "
        "form.report-form input[type=tel], form.report-form textarea"
    )
    count = fields.count()
    assert count >= 15
    for i in range(count):
        field = fields.nth(i)
        if field.get_attribute("name") == "scan_json":
            continue
        field.fill(f"x{i} " + PAYLOADS[i % len(PAYLOADS)])
    # A scan finding written by the attacker, too: it becomes evidence and a table row.
    finding = {
        "kind": "access-probe",
        "service": PAYLOADS[1],
        "sources": [PAYLOADS[2]],
        "count": 1,
        "first_seen": "1997-09-16T22:40:01",
        "last_seen": "1997-09-16T22:40:01",
        "outcome": PAYLOADS[0],
        "evidence": [PAYLOADS[4]],
        "targets": [],
        "details": {},
    }
    page.locator("details.scan summary").click()
    page.get_by_label("Output of scan --json", exact=True).fill(json.dumps(finding))
    with page.expect_navigation():
        page.get_by_role("button", name="Fill from scan").click()
    assert "filled from the scan" in page.locator("main").inner_text()
    reporter.no_script_ran()
    page.get_by_role("button", name="Send report", exact=True).click()
    page.wait_for_url(re.compile(r"/reports/\d+$"))
    rid = int(page.url.rsplit("/", 1)[1])
    reporter.no_script_ran()
    body = page.locator("main").inner_text()
    assert "<script>window.__xss=1</script>" in body  # shown as text
    assert page.locator("img[src='x']").count() == 0 and page.locator("main svg").count() == 0
    assert page.locator("main b").count() == 0
    assert page.locator("table.findings td", has_text=PAYLOADS[1]).count() == 1

    analyst = Person(browser, live, "en")
    people.append(analyst)
    analyst.sign_in("ana")
    for path in ("/inbox", f"/inbox?q={rid}", f"/reports/{rid}"):
        analyst.go(path)
        analyst.no_script_ran()
        assert analyst.page.locator("img[src='x']").count() == 0
    shown = analyst.page.locator("main").inner_text()
    for payload in PAYLOADS:
        assert payload in shown
    # The stored text is exactly what was typed: escaping happens on output only.
    stored = live.store.get_report(rid)
    assert stored.report.title is not None and stored.report.title.startswith("x0 <script>")


def test_forged_cross_site_post_is_refused(browser: Any, live: Live, people: list[Person]) -> None:
    async def hostile(request: Request) -> HTMLResponse:
        return HTMLResponse(
            f"""<!doctype html><form method="post" action="{live.url}/reports/new">
            <input name="action" value="send"><input name="title" value="forged-by-attacker">
            <input name="csrf" value="guess"></form>
            <script>document.forms[0].submit()</script>"""
        )

    victim = Person(browser, live, "en")
    people.append(victim)
    victim.sign_in("alice")
    with serve(Starlette(routes=[Route("/", hostile)])) as evil:
        assert evil != live.url
        with victim.page.expect_response(lambda r: r.url.endswith("/reports/new")) as posted:
            victim.page.goto(evil + "/")
        assert posted.value.status == 403
    reports, _ = live.store.list_reports(owner="alice", limit=1000)
    assert all(sr.report.title != "forged-by-attacker" for sr in reports)


def test_keyboard_only_sign_in_and_skip_link(
    browser: Any, live: Live, people: list[Person]
) -> None:
    person = Person(browser, live, "en")
    people.append(person)
    page = person.page
    person.go("/login")
    # The user name field takes the focus on arrival (autofocus, applied at the next frame).
    page.wait_for_function("() => document.activeElement.id === 'f-username'")
    page.keyboard.type("bob")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS["bob"][1])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/my$"))
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("() => location.hash") == "#main"
    # Every form control on the report form has a label a screen reader can announce.
    person.go("/reports/new")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter(e => !(e.labels && e.labels.length) && !e.closest('label'))
              .map(e => e.name)"""
    )
    assert unlabelled == []


def test_seed_story_filled_from_a_scan_file(
    browser: Any, live: Live, people: list[Person], artifacts: Path, tmp_path: Path
) -> None:
    """The September 1997 IMAP case: the site scans its log and attaches the JSON."""
    import todokede
    from todokede.detect import scan_paths

    log = Path(todokede.__file__).parent / "samples/logs/1997-09/site-imap/messages"
    result = scan_paths([log], year=1997)
    assert result.findings
    jsonl = tmp_path / "findings.jsonl"
    jsonl.write_text(
        "".join(json.dumps(f.to_dict()) + "\n" for f in result.findings), encoding="utf-8"
    )

    reporter = Person(browser, live, "ja")
    people.append(reporter)
    page = reporter.page
    reporter.sign_in("alice")
    reporter.go("/reports/new")
    page.get_by_label("件名(届出概要)", exact=True).fill("IMAPサーバへの不審なアクセス")
    page.locator("details.scan summary").click()
    page.locator("input[name=scan_file]").set_input_files(str(jsonl))
    with page.expect_navigation():
        page.get_by_role("button", name="scan結果で入力").click()
    assert page.get_by_label("件名(届出概要)", exact=True).input_value() == (
        "IMAPサーバへの不審なアクセス"
    )
    assert page.get_by_label("アクセス形跡(未遂)").is_checked()
    sources = page.get_by_label("攻撃元(ホスト名・アドレス)").input_value()
    assert all(s in sources for f in result.findings for s in f.to_dict()["sources"])
    assert page.get_by_label("発生期間(開始)").input_value().startswith("1997-08")
    reporter.shot(artifacts, "report-form-filled-from-scan")
    page.get_by_role("button", name="送信", exact=True).click()
    page.wait_for_url(re.compile(r"/reports/\d+$"))
    rows = page.locator("table.findings tbody tr")
    assert rows.count() == len(result.findings)
    assert "refused connect from" in page.locator("pre.log").first.inner_text()
    reporter.shot(artifacts, "report-with-findings")
    reporter.no_script_ran()

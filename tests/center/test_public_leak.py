"""Nothing a reporter wrote goes public.

Reports are filed with a marker in every free-text field through each way in (the web
form, the API, e-mail in IPA's text form, an IODEF document attached to a mail), classified
(through the classification form and the API, public heading and summary left empty, the
drafted text approved for some), and their month published after the preview: once
through the web's confirmation, then again (revision 2, every draft approved) through the
API's digest. A second month is published and withdrawn. Then every public URL (taken
from the app's route table, so a new page is checked too) including the withdrawal
notice, every public API answer, the PDF's text, every stored revision's snapshot and
documents, the previews an analyst sees, and the exports without ``--personal`` must not
hold the marker: zero occurrences. Exports to partner centers may carry the source
addresses, so those are taken out before they are searched.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from starlette.routing import Route

from tests.center import backdate
from tests.conftest import need
from tests.web.conftest import csrf_of, publish_month
from tests.web.server import PASSWORDS, serve
from todokede.center.exchange.iodef import to_iodef
from todokede.center.intake import mailin
from todokede.center.intake.schema import (
    Addition,
    AffectedSystem,
    Discovery,
    Evidence,
    Report,
    Reporter,
    StoredReport,
    Triage,
)
from todokede.center.store import Store
from todokede.center.web.app import create_app
from todokede.center.web.pages import SWAGGER_FILES
from todokede.cli import cli

MARK = "zqxmark"  # searched case-insensitively
HOST = f"{MARK}-relay.example.net"  # a source host name: allowed in exports only
ADDRESS = "192.0.2.77"
SOURCES = (HOST, ADDRESS)
SECRETS = (MARK, ADDRESS, "山田", "経理", "10.1.2.3")  # what no public text may hold


def m(label: str) -> str:
    """Free text holding the marker, with the kind of words reporters write around it."""
    return f"{label} 山田太郎({MARK}-{label}) syslog 10.1.2.3"


def api_report() -> dict[str, Any]:
    at = datetime.now(UTC).isoformat()
    evidence = {"kind": "log", "source": m("evsrc"), "text": m("log"), "data": {"x": m("data")}}
    return {
        "title": m("title"),
        "reporter": {"organisation": m("org"), "name": m("name"), "email": f"{MARK}@example.jp",
                     "phone": m("tel"), "fax": m("fax"), "address": m("addr"),
                     "type": "system_admin"},
        "systems": [{"device": "mail_server", "role": m("role"), "os": m("os"),
                     "software": [m("sw")]}],
        "network": m("network"),
        "discovery": {"how": "own_monitoring", "tool": m("tool"), "detail": m("detail")},
        "methods": ["access_probe"],
        "damage": ["none"],
        "actual_damage": False,
        "sources": list(SOURCES),
        "targets": [f"経理サーバ({MARK}.example.jp)", "imap"],
        "attempts": 9,
        "narrative": m("narrative"),
        "evidence": [evidence],
        "countermeasures": m("countermeasures"),
        "additions": [{"at": at, "text": m("addition"), "evidence": [evidence]}],
    }  # fmt: skip


def form_fields() -> dict[str, Any]:
    return {
        "title": m("title"),
        "language": "ja",
        "reporter.organisation": m("org"),
        "reporter.name": m("name"),
        "reporter.email": f"{MARK}@example.jp",
        "reporter.phone": m("tel"),
        "reporter.fax": m("fax"),
        "reporter.address": m("addr"),
        "reporter.type": "end_user",
        "system.device": "web_server",
        "system.role": m("role"),
        "system.os": m("os"),
        "system.software": m("sw"),
        "network": m("network"),
        "discovery.how": "own_monitoring",
        "discovery.tool": m("tool"),
        "discovery.detail": m("detail"),
        "methods": ["intrusion"],
        "damage": ["file_alteration"],
        "actual_damage": "yes",
        "sources": "\n".join(SOURCES),
        "targets": f"{MARK}-portal, http",
        "attempts": "3",
        "narrative": m("narrative"),
        "countermeasures": m("countermeasures"),
        "evidence.text": m("log"),
        "evidence.source": m("evsrc"),
    }


def form_mail() -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{MARK} <{MARK}@example.jp>"
    msg["To"] = "reports@todokede.invalid"
    msg["Subject"] = m("subject")
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{MARK}-form@example.jp>"
    lines = [
        f"届出者: {m('name')}", f"組織名: {m('org')}", f"住所: {m('addr')}",
        f"TEL: {m('tel')}", f"届出概要: {m('title')}", f"OS: {m('os')}",
        f"ソフトウェア: {m('sw')}", f"接続形態: {m('network')}", f"発見ツール: {m('tool')}",
        "手口: 電子メール爆撃", "被害内容: サービス低下", "実被害: 不明",
        f"攻撃元: {HOST} {ADDRESS}", f"対象サービス: smtp, {MARK}サーバ", "回数: 3200",
        f"被害の状況: {m('narrative')}", f"対策: {m('countermeasures')}",
    ]  # fmt: skip
    msg.set_content("\n".join(lines))
    return bytes(msg)


def iodef_mail() -> bytes:
    """A partner's IODEF document with the marker in every text it can carry."""
    now = datetime.now(UTC)
    report = Report(
        title=m("title"), received=now.date(), network=m("network"),
        reporter=Reporter(organisation=m("org"), name=m("name"), email=f"{MARK}@example.jp",
                          address=m("addr"), phone=m("tel")),
        systems=[AffectedSystem(device="mail_server", role=m("role"), os=m("os"),
                                software=[m("sw")])],
        discovery=Discovery(how="external", tool=m("tool"), detail=m("detail")),
        methods=["mail_relay"], damage=["mail_relay"], actual_damage=True,
        sources=list(SOURCES), targets=["smtp", f"{MARK}-svc"], attempts=400,
        narrative=m("narrative"), countermeasures=m("countermeasures"),
        evidence=[Evidence(source=m("evsrc"), text=m("log"))],
        additions=[Addition(at=now, text=m("addition"))],
    )  # fmt: skip
    stored = StoredReport(id=1, report=report, triage=Triage(), created_at=now, updated_at=now)
    msg = EmailMessage()
    msg["From"] = f"partner <{MARK}@partner.example>"
    msg["Subject"] = m("iodef-subject")
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{MARK}-iodef@example.jp>"
    msg.set_content(m("cover-letter"))
    document = to_iodef([stored], personal=True, domain=f"{MARK}.example")
    msg.add_attachment(document, maintype="application", subtype="iodef+xml",
                       filename=f"{MARK}.xml")  # fmt: skip
    return bytes(msg)


def sign_in(client: httpx.Client, name: str) -> None:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "username": name, "password": PASSWORDS[name][1]},
    )
    assert response.status_code == 303, response.text


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store, Any, str]]:
    tmp = tmp_path_factory.mktemp("leak")
    db = f"sqlite:///{tmp / 'center.db'}"
    store = Store.open(db)
    try:
        for name, (role, password) in PASSWORDS.items():
            store.add_user(name, role, password)
        app = create_app(store)
        with serve(app) as url:
            yield url, store, app, db
    finally:
        store.close()


def leaks_in(text: str) -> list[str]:
    low = text.lower()
    return [secret for secret in SECRETS if secret in low]


def api_publish(client: httpx.Client, month: str, token: str) -> dict[str, Any]:
    """Publish ``month`` through the API: the preview, then its digest as confirmation."""
    auth = {"Authorization": f"Bearer {token}"}
    preview = client.get(f"/api/months/{month}/preview", headers=auth)
    assert preview.status_code == 200, preview.text
    assert leaks_in(preview.text) == []
    done = client.post(f"/api/months/{month}/publish", json={"digest": preview.json()["digest"]},
                       headers=auth)  # fmt: skip
    assert done.status_code == 200, done.text
    published: dict[str, Any] = done.json()
    return published


def month_before(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=15)


def withdrawn_month(client: httpx.Client, store: Store, alice: str, ana: str) -> str:
    """A marked report in the month before, classified, published, then withdrawn."""
    created = client.post("/api/reports", json=api_report(),
                          headers={"Authorization": f"Bearer {alice}"})  # fmt: skip
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    month = backdate.move(store, [rid], month_before(backdate.last_month()))
    put = client.put(f"/api/reports/{rid}/triage", json={"status": "triaged"},
                     headers={"Authorization": f"Bearer {ana}"})  # fmt: skip
    assert put.status_code == 200, put.text
    assert api_publish(client, month, ana)["revision"] == 1
    gone = client.post(f"/api/months/{month}/withdraw", json={"reason": "分類の誤りのため"},
                       headers={"Authorization": f"Bearer {ana}"})  # fmt: skip
    assert gone.status_code == 200 and gone.json()["published"] is False, gone.text
    return month


@pytest.fixture(scope="module")
def published(
    center: tuple[str, Store, Any, str], tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    """File the marked reports every way, classify them, publish their month (twice);
    publish and withdraw the month before. The months: [published, withdrawn]."""
    url, store, _, _ = center
    alice, ana = store.new_token("alice"), store.new_token("ana")
    ids: list[int] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        created = client.post("/api/reports", json=api_report(),
                              headers={"Authorization": f"Bearer {alice}"})  # fmt: skip
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
        withdrawn = withdrawn_month(client, store, alice, ana)
    with httpx.Client(base_url=url, timeout=60) as web:
        sign_in(web, "alice")
        token = csrf_of(web.get("/reports/new").text)
        sent = web.post("/reports/new", data={"csrf": token, "action": "send", **form_fields()})
        assert sent.status_code == 303, sent.text
        rid = int(sent.headers["location"].rsplit("/", 1)[1])
        page = web.get(f"/reports/{rid}")
        addition = {"csrf": csrf_of(page.text), "addition.text": m("addition")}
        added = web.post(f"/reports/{rid}/addition", data=addition)
        assert added.status_code == 303, added.text
        ids.append(rid)
    for raw in (form_mail(), iodef_mail()):
        got = mailin.ingest_message(store, raw, key=f"{MARK}-{len(ids)}")
        assert got.report_ids and not got.manual, got
        ids += got.report_ids
    # received last month: a closed month in the past, one that may be published
    month = backdate.move(store, ids, backdate.last_month())
    stored = {rid: store.get_report(rid) for rid in ids}
    assert all(MARK in sr.report.model_dump_json().lower() for sr in stored.values())
    # Classified: half through the classification form, half through the API; public
    # heading and summary left empty; the drafted text approved for some.
    with httpx.Client(base_url=url, timeout=60) as web:
        sign_in(web, "ana")
        for n, rid in enumerate(ids):
            sr = stored[rid]
            if n % 2 == 0:
                page = web.get(f"/reports/{rid}")
                assert page.status_code == 200
                data: dict[str, Any] = {
                    "csrf": csrf_of(page.text), "status": "triaged",
                    "methods": sr.effective_methods(), "damage": sr.effective_damage(),
                    "causes": sr.effective_causes(), "targets": sr.effective_targets(),
                    "actual_damage": {True: "yes", False: "no", None: ""}[
                        sr.effective_actual_damage()],
                    "new_type": "yes", "new_type_reason": "", "published_title": "",
                    "published_narrative": "",
                }  # fmt: skip
                if n % 4 == 0:
                    data["public_draft_approved"] = "on"
                saved = web.post(f"/reports/{rid}/triage", data=data)
                assert saved.status_code == 303, saved.text
            else:
                triage = {"status": "triaged", "new_type": True,
                          "public_draft_approved": n % 4 == 1}  # fmt: skip
                put = web.put(f"/api/reports/{rid}/triage", json=triage,
                              headers={"Authorization": f"Bearer {ana}"})  # fmt: skip
                assert put.status_code == 200, put.text
        # Frozen only now, after the classification: revision 1 through the web's preview
        # and confirmation (the preview page and its documents are what will be public)...
        for fmt in ("html", "md", "pdf"):
            doc = web.get("/publish/report." + fmt, params={"month": month, "lang": "en"})
            assert doc.status_code == 200, doc.text
            assert leaks_in(text_of(doc, tmp_path_factory.mktemp("preview"))) == [], fmt
        assert leaks_in(web.get("/publish", params={"month": month}).text) == []
        publish_month(web, month)
        # ... then revision 2 through the API, every drafted text approved.
        auth = {"Authorization": f"Bearer {ana}"}
        for rid in ids:
            triage = web.get(f"/api/reports/{rid}", headers=auth).json()["triage"]
            put = web.put(f"/api/reports/{rid}/triage", headers=auth,
                          json={**triage, "public_draft_approved": True})  # fmt: skip
            assert put.status_code == 200, put.text
        assert api_publish(web, month, ana)["revision"] == 2
    return [month, withdrawn]


# Values for the path parameters of the public routes. A route with a parameter not listed
# here fails the test: a new page must say how it is reached before it can be trusted.
def _values(name: str, months: list[str], ids: list[int]) -> list[str]:
    table: dict[str, list[str]] = {
        "month": months,
        "fmt": ["html", "pdf", "md"],
        "kind": ["monthly", "methods"],
        "code": ["ja", "en"],  # /lang/{code}
        "report_id": [str(i) for i in ids],
        "id": [str(i) for i in ids],
        "path": ["site.css"],
        "name": sorted(SWAGGER_FILES),  # /static/swagger/{name}: Swagger UI, from the package
    }
    assert name in table, f"no test value for the path parameter {{{name}}}"
    return table[name]


def get_paths(app: Any) -> set[str]:
    """Every GET path template: the pages from the route table, the API from its OpenAPI
    description (FastAPI keeps included routers out of ``app.routes``)."""
    paths = {
        route.path
        for route in app.routes
        if isinstance(route, Route) and "GET" in (route.methods or set())
    }
    paths |= {path for path, ops in app.openapi()["paths"].items() if "get" in ops}
    return paths


def public_urls(app: Any, months: list[str], ids: list[int]) -> list[str]:
    urls: list[str] = []
    for template in sorted(get_paths(app)):
        names = re.findall(r"{(\w+)(?::\w+)?}", template)
        choices = [_values(n, months, ids) for n in names]
        for combo in itertools.product(*choices):
            path = template
            for name, value in zip(names, combo, strict=True):
                path = re.sub(r"{" + name + r"(?::\w+)?}", value, path)
            urls.append(path)
    return urls


def text_of(response: httpx.Response, tmp: Path) -> str:
    if response.headers.get("content-type", "").startswith("application/pdf"):
        need("pdftotext")
        pdf = tmp / "page.pdf"
        pdf.write_bytes(response.content)
        done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"],
                              capture_output=True, timeout=120, check=True)  # fmt: skip
        text = done.stdout.decode("utf-8")
        assert text.strip(), "pdftotext found no text"
        return text
    return response.text


def test_no_public_url_holds_what_a_reporter_wrote(
    center: tuple[str, Store, Any, str], published: list[str], tmp_path: Path
) -> None:
    url, store, app, _ = center
    ids = [sr.id for sr in store.iter_reports()]
    urls = public_urls(app, published, ids)
    served: dict[str, int] = {}
    leaks: list[str] = []
    with httpx.Client(base_url=url, timeout=120) as anonymous:
        for path, lang in itertools.product(urls, ("ja", "en")):
            response = anonymous.get(path, params={"lang": lang},
                                     headers={"Accept-Language": lang})  # fmt: skip
            served[path] = response.status_code
            if response.status_code != 200 and "pdf" in response.headers.get("content-type", ""):
                continue
            # error pages too: the withdrawal notice (410) is public
            leaks += [f"{path} ({lang}): {s}" for s in leaks_in(text_of(response, tmp_path))]
    assert leaks == []
    month, withdrawn = published
    must = {
        "/": 200, "/published": 200, f"/published/{month}": 200, "/statistics": 200,
        f"/published/{month}/report.html": 200, f"/published/{month}/report.pdf": 200,
        f"/published/{month}/report.md": 200, "/api/public/months": 200,
        f"/api/public/months/{month}": 200, f"/published/{withdrawn}": 410,
        f"/api/public/months/{withdrawn}": 410, f"/published/{withdrawn}/report.md": 410,
    }  # fmt: skip
    assert {path: served.get(path) for path in must} == must


def test_previews_and_revisions_are_for_analysts_only(
    center: tuple[str, Store, Any, str], published: list[str]
) -> None:
    url, store, _, _ = center
    month = published[0]
    pages = ["/publish", "/publish/report.html", "/publish/report.md", "/publish/report.pdf"]
    api = [f"/api/months/{month}/preview", f"/api/months/{month}/revisions"]
    with httpx.Client(base_url=url, timeout=60) as anonymous:
        for path in pages + api:
            got = anonymous.get(path, params={"month": month})
            assert got.status_code in (303, 401), path
            assert leaks_in(got.text) == [], path
    with httpx.Client(base_url=url, timeout=60) as alice:
        sign_in(alice, "alice")
        token = store.new_token("alice")
        for path in pages:
            assert alice.get(path, params={"month": month}).status_code == 403, path
        for path in api:
            got = alice.get(path, headers={"Authorization": f"Bearer {token}"})
            assert got.status_code == 403, path


def test_every_stored_revision_was_frozen_after_classification(
    center: tuple[str, Store, Any, str], published: list[str]
) -> None:
    _, store, _, _ = center
    revisions = store.revisions()
    assert sorted((r.month, r.revision) for r in revisions) == sorted(
        [(published[0], 1), (published[0], 2), (published[1], 1)]
    )
    names = [f"{lang}.{part}" for lang in ("ja", "en")
             for part in ("html", "md", "pdf.html", "monthly.svg", "methods.svg")]  # fmt: skip
    for rev in revisions:
        text = store.snapshot_text(rev.month, rev.revision)
        assert text is not None and leaks_in(text) == [], rev
        for name in names:
            body = store.publication_file(rev.month, rev.revision, name)
            assert body is not None and leaks_in(body.decode()) == [], (rev, name)


def test_public_month_shows_the_cases_as_codes(
    center: tuple[str, Store, Any, str], published: list[str]
) -> None:
    url, store, _, _ = center
    body = httpx.get(f"{url}/api/public/months/{published[0]}", timeout=30).json()
    assert body["revision"] == 2
    assert body["total"] == len(store.list_reports(month=published[0])[0]) == 4
    assert (body["with_actual_damage"], body["without_actual_damage"],
            body["actual_damage_unknown"]) == (2, 1, 1)  # fmt: skip
    # the reporters' services are public only as target codes
    targets = {code for case in body["reports"] for code in case["targets"]}
    assert targets <= {"imap", "smtp", "http", "other"} and "other" in targets


@pytest.mark.parametrize("fmt", ["iodef", "stix", "csv"])
def test_exports_for_partners_hold_nothing_the_reporter_wrote(
    center: tuple[str, Store, Any, str], published: list[str], fmt: str
) -> None:
    _, _, _, db = center
    result = CliRunner().invoke(cli, ["export", "--format", fmt, "--db", db])
    assert result.exit_code == 0, result.output
    text = result.stdout
    # the attack's indicators may go to partners: their addresses are taken out first
    assert HOST in text and ADDRESS in text
    rest = text.replace(HOST, "").lower()
    assert MARK not in rest and "山田" not in rest and "経理" not in rest
    assert {"iodef": 'restriction="amber"', "stix": "TLP:AMBER", "csv": "TLP:AMBER"}[fmt] in text
    personal = CliRunner().invoke(cli, ["export", "--format", fmt, "--db", db, "--personal"])
    assert personal.exit_code == 0 and MARK in personal.stdout.replace(HOST, "").lower()

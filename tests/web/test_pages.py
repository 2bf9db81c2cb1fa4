"""The pages over real HTTP: sign-in, sessions, CSRF, roles, the report form, triage,
publication and what the public sees."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from tests.web.conftest import csrf_of, publish_month, signed_in
from tests.web.server import Live, next_month_start


def send_report(client: httpx.Client, **fields: object) -> int:
    form = client.get("/reports/new")
    data: dict[str, object] = {"csrf": csrf_of(form.text), "action": "send", **fields}
    response = client.post("/reports/new", data=data)
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def test_security_headers_and_language(live: Live) -> None:
    ja = httpx.get(live.url + "/", headers={"Accept-Language": "ja,en;q=0.5"})
    en = httpx.get(live.url + "/", headers={"Accept-Language": "en-GB,en;q=0.9,ja;q=0.3"})
    assert ja.headers["content-language"] == "ja" and "不正アクセス届出センター" in ja.text
    assert en.headers["content-language"] == "en" and "Reporting Center" in en.text
    csp = en.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert en.headers["x-content-type-options"] == "nosniff"
    assert 'href="/static/site.css"' in en.text
    assert httpx.get(live.url + "/static/site.css").status_code == 200


def test_language_switch_is_a_cookie_and_stays_on_the_page(live: Live) -> None:
    with httpx.Client(base_url=live.url, headers={"Accept-Language": "ja"}) as client:
        switched = client.get("/lang/en", params={"next": "/published"})
        assert switched.status_code == 303 and switched.headers["location"] == "/published"
        assert client.get("/published").headers["content-language"] == "en"
        # An outside target is not followed.
        assert client.get("/lang/ja", params={"next": "//evil.example/"}).headers["location"] == "/"
        assert client.get("/").headers["content-language"] == "ja"


def test_session_cookie_flags(live: Live) -> None:
    with httpx.Client(base_url=live.url) as client:
        page = client.get("/login")
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "max-age=" in cookie
        assert "secure" not in cookie  # plain http on loopback; https adds Secure
        bad = client.post(
            "/login",
            data={"csrf": csrf_of(page.text), "username": "alice", "password": "wrong"},
        )
        assert bad.status_code == 401
        assert "not correct" in bad.text or "正しくありません" in bad.text


def test_tampered_session_is_anonymous(live: Live) -> None:
    with signed_in(live, "alice") as client:
        assert client.get("/my").status_code == 200
        value = client.cookies["todokede_session"]
        client.cookies.set("todokede_session", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
        response = client.get("/my")
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_login_rate_limited_per_user_and_address(live: Live) -> None:
    with httpx.Client(base_url=live.url) as client:
        token = csrf_of(client.get("/login").text)
        codes = [
            client.post(
                "/login", data={"csrf": token, "username": "carol", "password": f"guess{i}"}
            ).status_code
            for i in range(6)
        ]
        assert codes[:5] == [401] * 5 and codes[5] == 429
        # Even the right password is refused while the limit holds.
        right = client.post(
            "/login",
            data={"csrf": token, "username": "carol", "password": "carol-password-1"},
        )
        assert right.status_code == 429
        # Another user from the same address is not affected.
        other = client.post(
            "/login",
            data={"csrf": token, "username": "alice", "password": "alice-password-1"},
        )
        assert other.status_code == 303


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({}, None),  # no token
        ({}, "forged-token"),  # wrong token
        ({"Origin": "http://127.0.0.1:1"}, "GOOD"),  # right token, other origin
        ({"Referer": "http://evil.example/form"}, "GOOD"),  # no Origin, foreign Referer
    ],
)
def test_csrf_refused(live: Live, headers: dict[str, str], token: str | None) -> None:
    with signed_in(live, "alice") as client:
        good = csrf_of(client.get("/reports/new").text)
        data = {"action": "send", "title": "forged"}
        if token is not None:
            data["csrf"] = good if token == "GOOD" else token
        response = client.post("/reports/new", data=data, headers=headers)
        assert response.status_code == 403
        mine = client.get("/my").text
        assert "forged" not in mine


def test_roles_and_ownership(live: Live) -> None:
    with signed_in(live, "alice") as alice, signed_in(live, "bob") as bob:
        rid = send_report(alice, title="alice's own report")
        assert alice.get(f"/reports/{rid}").status_code == 200
        assert bob.get(f"/reports/{rid}").status_code == 404  # not even its existence
        assert bob.get("/inbox").status_code == 403
        assert bob.get("/dashboard").status_code == 403
        token = csrf_of(bob.get("/my").text)
        assert bob.post(f"/reports/{rid}/triage", data={"csrf": token}).status_code == 403
    with httpx.Client(base_url=live.url) as anonymous:
        response = anonymous.get(f"/reports/{rid}")
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next=/reports/{rid}"


def test_invalid_form_keeps_everything_typed(live: Live) -> None:
    with signed_in(live, "alice") as client:
        token = csrf_of(client.get("/reports/new").text)
        response = client.post(
            "/reports/new",
            data={
                "csrf": token,
                "action": "send",
                "title": "kept title",
                "narrative": "kept narrative",
                "period.start": "1997-09-17",
                "period.end": "1997-08-01",
                "attempts": "-3",
                "evidence.text": "Sep 17 kept log line",
            },
        )
        assert response.status_code == 422
        text = response.text
        assert "kept title" in text and "kept narrative" in text
        assert "Sep 17 kept log line" in text  # carried as attached evidence
        assert 'aria-invalid="true"' in text
        assert 'href="#f-period-end">Period: to</a>' in text
        assert 'href="#f-attempts">Number of attempts or messages</a>' in text


def test_fill_from_scan_json(live: Live) -> None:
    finding = {
        "kind": "access-probe",
        "service": "imapd",
        "sources": ["ppp12.example.net", "dial3.example.org"],
        "count": 9,
        "first_seen": "1997-08-14T03:12:00",
        "last_seen": "1997-09-16T22:40:00",
        "outcome": "refused",
        "evidence": ["Aug 14 03:12:00 mail imapd[312]: refused connect from ppp12.example.net"],
        "targets": ["mail"],
        "details": {},
    }
    with signed_in(live, "alice") as client:
        token = csrf_of(client.get("/reports/new").text)
        filled = client.post(
            "/reports/new",
            data={
                "csrf": token,
                "action": "fill",
                "title": "typed first",
                "scan_json": json.dumps(finding),
            },
        )
        assert filled.status_code == 200
        text = filled.text
        assert "typed first" in text  # what the reporter typed wins
        assert "ppp12.example.net" in text and 'value="access_probe" checked' in text
        assert "1997-08-14" in text and "refused connect from" in text
        broken = client.post(
            "/reports/new",
            data={"csrf": token, "action": "fill", "scan_json": "{}\n{not json"},
        )
        assert "line 1" in broken.text  # the first object has no kind


def test_addition_to_a_sent_report(live: Live) -> None:
    with signed_in(live, "alice") as client:
        rid = send_report(client, title="needs an addition")
        page = client.get(f"/reports/{rid}")
        response = client.post(
            f"/reports/{rid}/addition",
            data={
                "csrf": csrf_of(page.text),
                "addition.text": "found a tenth attempt",
                "addition.evidence.text": "Sep 18 imapd: refused connect from x",
            },
        )
        assert response.status_code == 303
        stored = live.store.get_report(rid)
        assert stored.report.additions[0].text == "found a tenth attempt"
        assert stored.report.additions[0].evidence[0].text.startswith("Sep 18")


def test_draft_is_not_received(live: Live) -> None:
    """Save a draft, reopen it, save it again changed, then send it: one report, which is a
    draft (not counted, not in a month) until sent and received (counted) after."""
    with signed_in(live, "alice") as client:
        token = csrf_of(client.get("/reports/new").text)
        response = client.post(
            "/reports/new", data={"csrf": token, "action": "draft", "title": "half written"}
        )
        assert response.status_code == 303 and response.headers["location"].endswith("/edit")
        rid = int(response.headers["location"].split("/")[2])
        stored = live.store.get_report(rid)
        assert stored.triage.status == "draft" and not stored.counted
        again = client.get(f"/reports/{rid}/edit")
        assert again.status_code == 200 and "half written" in again.text
        saved = client.post(
            f"/reports/{rid}/edit",
            data={"csrf": csrf_of(again.text), "action": "draft", "title": "three quarters",
                  "methods": ["mail_bombing"]},
        )  # fmt: skip
        assert saved.status_code == 303 and saved.headers["location"] == f"/reports/{rid}/edit"
        stored = live.store.get_report(rid)
        assert stored.triage.status == "draft" and stored.report.title == "three quarters"
        assert stored.report.methods == ["mail_bombing"] and not stored.counted
        again = client.get(f"/reports/{rid}/edit")
        assert "three quarters" in again.text and 'value="mail_bombing" checked' in again.text
        send = client.post(
            f"/reports/{rid}/edit",
            data={"csrf": csrf_of(again.text), "action": "send", "title": "finished now",
                  "methods": ["mail_bombing"]},
        )  # fmt: skip
        assert send.status_code == 303 and send.headers["location"] == f"/reports/{rid}"
        stored = live.store.get_report(rid)
        assert stored.triage.status == "received" and stored.report.title == "finished now"
        assert stored.counted and stored.report.received == datetime.now(UTC).date()
        actions = [e.action for e in live.store.audit_log(rid)]
        assert actions.count("update") == 2 and actions.count("send") == 1
        mine = client.get("/my")
        assert f'href="/reports/{rid}"' in mine.text and f"/reports/{rid}/edit" not in mine.text
        # Sent: the form is gone and a late POST changes nothing.
        assert client.get(f"/reports/{rid}/edit").headers["location"] == f"/reports/{rid}"
        late = client.post(
            f"/reports/{rid}/edit",
            data={"csrf": csrf_of(again.text), "action": "draft", "title": "rewritten"},
        )
        assert late.status_code == 409 and "can no longer be changed" in late.text
        assert live.store.get_report(rid).report.title == "finished now"


def test_others_drafts_are_not_found(live: Live) -> None:
    with signed_in(live, "alice") as alice:
        token = csrf_of(alice.get("/reports/new").text)
        response = alice.post(
            "/reports/new", data={"csrf": token, "action": "draft", "title": "alice's draft"}
        )
        rid = int(response.headers["location"].split("/")[2])
    with signed_in(live, "bob") as bob:
        page = bob.get("/reports/new")
        assert bob.get(f"/reports/{rid}/edit").status_code == 404
        taken = bob.post(
            f"/reports/{rid}/edit",
            data={"csrf": csrf_of(page.text), "action": "send", "title": "bob's now"},
        )
        assert taken.status_code == 404
    with signed_in(live, "ana") as ana:  # an analyst reads it but does not write it
        link = f'href="/reports/{rid}"'
        assert link not in ana.get("/inbox", params={"q": f"#{rid}"}).text  # not sent yet
        assert link in ana.get("/inbox", params={"q": f"#{rid}", "status": "draft"}).text
        page = ana.get(f"/reports/{rid}")
        assert page.status_code == 200
        assert ana.get(f"/reports/{rid}/edit").headers["location"] == f"/reports/{rid}"
        taken = ana.post(
            f"/reports/{rid}/edit",
            data={"csrf": csrf_of(page.text), "action": "send", "title": "ana's now"},
        )
        assert taken.status_code == 403
    stored = live.store.get_report(rid)
    assert stored.report.title == "alice's draft" and stored.triage.status == "draft"


def test_analyst_flow_and_public_page(live: Live) -> None:
    today = datetime.now(UTC).date()
    with signed_in(live, "alice") as alice:
        rid = send_report(
            alice,
            title="IMAP probes",
            **{"reporter.name": "Yamada Taro", "reporter.email": "taro@example.jp"},
            methods=["access_probe"],
            targets="imap",
            narrative="Taro's own words",
        )
    month = today.strftime("%Y-%m")
    with signed_in(live, "ana") as ana:
        inbox = ana.get("/inbox", params={"method": "access_probe", "q": "IMAP"})
        assert f'href="/reports/{rid}"' in inbox.text
        empty = ana.get("/inbox", params={"method": "mail_bombing", "q": "IMAP"})
        assert f'href="/reports/{rid}"' not in empty.text
        page = ana.get(f"/reports/{rid}")
        assert "Yamada Taro" in page.text and "Audit trail" in page.text
        saved = ana.post(
            f"/reports/{rid}/triage",
            data={
                "csrf": csrf_of(page.text),
                "status": "triaged",
                "methods": ["access_probe", "security_hole_attack"],
                "actual_damage": "no",
                "new_type": "yes",
                "published_title": "IMAPサーバへのアクセス形跡",
                "published_title_en": "Access attempts on an IMAP server",
                "published_narrative_en": "Refused attempts on an IMAP server.",
            },
        )
        assert saved.status_code == 303
        stored = live.store.get_report(rid)
        assert stored.triage.methods == ["access_probe", "security_hole_attack"]
        assert stored.triage.damage is None  # unchanged ticks are no override
        shown = ana.get(f"/reports/{rid}").text
        assert "Access probe (attempt), Security-hole attack" in shown
        ja = ana.get(f"/reports/{rid}", headers={"Accept-Language": "ja"}).text
        assert "アクセス形跡(未遂)、セキュリティホールアタック" in ja
        assert ana.get("/inbox", params={"month": month, "new": "yes"}).text.count(
            f'href="/reports/{rid}"'
        )
        dashboard = ana.get("/dashboard", params={"month": month})
        assert "damage" in dashboard.text and f"/dashboard/{month}/monthly.svg" in dashboard.text
        chart = ana.get(f"/dashboard/{month}/monthly.svg")
        assert chart.headers["content-type"].startswith("image/svg+xml")
        assert 'action="/publish"' in dashboard.text
        publish_month(ana, month)
    with httpx.Client(base_url=live.url, headers={"Accept-Language": "en"}) as public:
        text = public.get(f"/published/{month}").text
        assert "Access attempts on an IMAP server" in text
        for secret in ("Yamada", "taro@example.jp", "Taro's own words", "alice"):
            assert secret not in text
        stats = public.get("/statistics", params={"month": month}).text
        assert "Access probe" in stats and "Yamada" not in stats
        assert public.get("/published/1901-01").status_code == 404


def test_findings_table_survives_any_shape(live: Live) -> None:
    from todokede.center.intake.schema import Evidence, Report

    weird = {
        "kind": "<script>window.__xss=1</script>",
        "service": {"nested": ["x"]},
        "sources": {"not": "a list"},
        "count": [1, 2, 3],
        "first_seen": None,
    }
    listed = {"kind": "access-probe", "sources": [f"h{i}.example" for i in range(30)]}
    sr = live.store.add_report(
        Report(
            evidence=[
                Evidence(kind="finding", text="<b>raw</b>", data=weird),
                Evidence(kind="finding", data=listed),
            ]
        ),
        owner="alice",
    )
    with signed_in(live, "alice") as client:
        page = client.get(f"/reports/{sr.id}")
        assert page.status_code == 200
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page.text
        assert "<script>" not in page.text and "&lt;b&gt;raw&lt;/b&gt;" in page.text
        assert "h9.example …" in page.text and "h10.example" not in page.text


def test_fill_then_send_keeps_the_findings(live: Live) -> None:
    import html
    import re

    finding = {
        "kind": "relay-abuse",
        "service": "sendmail",
        "sources": ["relay.example.com"],
        "count": 1200,
        "first_seen": "1997-09-19T01:00:00",
        "last_seen": "1997-09-19T09:00:00",
        "outcome": "relayed",
        "evidence": ["Sep 19 01:00:00 mail sendmail[9]: relay=relay.example.com"],
        "targets": ["a@example.com"],
        "details": {},
    }
    with signed_in(live, "alice") as client:
        token = csrf_of(client.get("/reports/new").text)
        filled = client.post(
            "/reports/new",
            data={"csrf": token, "action": "fill", "scan_json": json.dumps(finding)},
        )
        carried = re.search(r'name="carried_evidence" value="([^"]*)"', filled.text)
        assert carried
        sent = client.post(
            "/reports/new",
            data={
                "csrf": token,
                "action": "send",
                "title": "relay",
                "methods": ["mail_relay"],
                "carried_evidence": html.unescape(carried.group(1)),
            },
        )
        assert sent.status_code == 303
        page = client.get(sent.headers["location"])
        assert "relay-abuse" in page.text and "relay.example.com" in page.text
        assert '<table class="list findings">' in page.text


@pytest.mark.slow
def test_publication_files(live: Live) -> None:
    from todokede.center.intake.schema import Report, Triage

    sr = live.store.add_report(
        Report(title="secret-title", methods=["mail_bombing"], reporter={"name": "Suzuki"}),
        owner="alice",
        triage=Triage(status="triaged"),
    )
    assert sr.report.received is not None
    month = sr.report.received.strftime("%Y-%m")
    live.store.publish_month(month, actor="ana", today=next_month_start())
    for fmt, kind in (("html", "text/html"), ("md", "text/markdown"), ("pdf", "application/pdf")):
        response = httpx.get(f"{live.url}/published/{month}/report.{fmt}?lang=en", timeout=120)
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        assert "script-src" not in response.headers["content-security-policy"]
        if fmt != "pdf":
            assert "Suzuki" not in response.text
        else:
            assert response.content.startswith(b"%PDF")
    assert httpx.get(f"{live.url}/published/{month}/report.exe").status_code == 404
    odd = httpx.get(
        f"{live.url}/published/{month}/report.md", params={"lang": "x\r\nSet-Cookie: a=b"}
    )
    assert odd.status_code == 200 and "set-cookie" not in odd.headers
    assert odd.headers["content-disposition"].endswith(f'todokede-{month}-ja.md"')


def test_incidents_and_duplicates(live: Live) -> None:
    with signed_in(live, "alice") as alice:
        first = send_report(alice, title="link-first")
        second = send_report(alice, title="link-second")
        third = send_report(alice, title="link-third")
    with signed_in(live, "ana") as ana:
        token = csrf_of(ana.get(f"/reports/{first}").text)
        made = ana.post(f"/reports/{first}/incident", data={"csrf": token, "title": "<i>bomb</i>"})
        assert made.status_code == 303
        incident = live.store.get_report(first).triage.incident_id
        assert incident is not None
        for rid, data in (
            (second, {"incident_id": str(incident)}),
            (third, {"duplicate_of": str(first)}),
        ):
            saved = ana.post(
                f"/reports/{rid}/triage", data={"csrf": token, "status": "triaged", **data}
            )
            assert saved.status_code == 303, saved.text
        page = ana.get(f"/reports/{first}").text
        assert f'href="/reports/{third}"' in page and f'href="/reports/{second}"' in page
        assert "&lt;i&gt;bomb&lt;/i&gt;" in page
        listed = ana.get("/inbox", params={"incident": str(incident)}).text
        assert f'href="/reports/{first}"' in listed and f'href="/reports/{second}"' in listed
        assert f'href="/reports/{third}"' not in listed
        # A link to a report that does not exist is refused with the field named.
        bad = ana.post(f"/reports/{second}/triage", data={"csrf": token, "duplicate_of": "99999"})
        assert bad.status_code == 422 and "duplicate_of" in bad.text
        assert live.store.get_report(second).triage.duplicate_of is None


def test_charts_drawn_concurrently_stay_whole(live: Live) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from todokede.center.intake.schema import Report, Triage

    sr = live.store.add_report(
        Report(methods=["mail_relay"], damage=["service_lowering"], actual_damage=True),
        owner="alice",
        triage=Triage(status="triaged"),
    )
    assert sr.report.received is not None
    month = sr.report.received.strftime("%Y-%m")
    live.store.publish_month(month, actor="ana", today=next_month_start())
    urls = [f"{live.url}/statistics/{month}/{kind}.svg" for kind in ("monthly", "methods") * 4]
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(lambda u: httpx.get(u, headers={"Accept-Language": "ja"}, timeout=60), urls)
        )
    assert [r.status_code for r in responses] == [200] * len(urls)
    assert all(r.text.lstrip().startswith("<?xml") and "<svg" in r.text for r in responses)


def test_inbox_filters_and_pages(live: Live) -> None:
    from todokede.center.intake.schema import Report, Triage

    made = []
    for i in range(56):
        report = Report(
            title=f"pager-{i}",
            methods=["mail_bombing"] if i % 2 else ["spam"],
            damage=["service_lowering"] if i % 3 == 0 else [],
            actual_damage=i % 3 == 0,
        )
        status = "triaged" if i % 4 == 0 else "received"
        made.append(live.store.add_report(report, owner="bob", triage=Triage(status=status)).id)
    with signed_in(live, "ana") as ana:

        def listed(**params: str) -> set[int]:
            page = ana.get("/inbox", params={"q": "pager-", **params}).text
            return {rid for rid in made if f'href="/reports/{rid}"' in page}

        first = listed()
        assert len(first) == 50 and max(made) in first  # newest first, 50 a page
        rest = listed(offset="50")
        assert len(rest) == 6 and not (first & rest)
        assert listed(method="mail_bombing") == {r for i, r in enumerate(made) if i % 2}
        assert listed(actual="yes", method="spam") == {
            r for i, r in enumerate(made) if i % 3 == 0 and not i % 2
        }
        assert listed(damage="service_lowering", status="triaged") == {
            r for i, r in enumerate(made) if i % 12 == 0
        }
        assert listed(q=f"#{made[7]}") == {made[7]}
        bad = ana.get("/inbox", params={"month": "1997-13"})
        assert bad.status_code == 422
        assert ana.get("/inbox", params={"new": "yes"}).status_code == 422  # needs a month


def test_oversized_log_file_is_refused_and_the_form_kept(live: Live) -> None:
    with signed_in(live, "alice") as client:
        token = csrf_of(client.get("/reports/new").text)
        response = client.post(
            "/reports/new",
            data={"csrf": token, "action": "send", "title": "kept despite the file"},
            files={"evidence.file": ("huge.log", b"x" * 1_000_001, "text/plain")},
        )
        assert response.status_code == 422
        assert "kept despite the file" in response.text and "1,000,000 bytes" in response.text
        small = client.post(
            "/reports/new",
            data={"csrf": token, "action": "send", "title": "with a file"},
            files={"evidence.file": ("messages", b"Sep 17 imapd: refused\x00 x\n", "text/plain")},
        )
        assert small.status_code == 303
        rid = int(small.headers["location"].rsplit("/", 1)[1])
        evidence = live.store.get_report(rid).report.evidence
        assert evidence[0].source == "messages" and evidence[0].text == "Sep 17 imapd: refused x\n"

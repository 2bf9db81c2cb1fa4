"""Publishing from the web: the preview, the confirmation (a tick and the preview's digest,
under CSRF), a month that changed since its preview, revisions, withdrawal, and the months
that cannot be published. The test center's calendar is at the start of next month
(``tests/web/server.py``), so this month has closed for it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx

from tests.web.conftest import csrf_of, digest_of, publish_month, signed_in
from tests.web.server import Live, next_month_start
from todokede.center.intake.schema import Report, Triage

MONTH = datetime.now(UTC).strftime("%Y-%m")


def file_case(live: Live, title: str) -> int:
    stored = live.store.add_report(
        Report(methods=["access_probe"], targets=["imap"], reporter={"name": "Suzuki Jiro"}),
        owner="alice",
        triage=Triage(status="triaged", published_title_en=title),
    )
    return stored.id


def test_preview_then_confirm(live: Live) -> None:
    file_case(live, "pub-first: IMAP attempts")
    with signed_in(live, "alice") as alice:
        assert alice.get("/publish", params={"month": MONTH}).status_code == 403
    assert httpx.get(f"{live.url}/publish?month={MONTH}").status_code == 303  # sign in first
    with signed_in(live, "ana") as ana:
        preview = ana.get("/publish", params={"month": MONTH})
        assert preview.status_code == 200
        assert "pub-first: IMAP attempts" in preview.text and "Suzuki" not in preview.text
        assert "revision 1" in preview.text
        assert f'href="/publish/report.md?month={MONTH}&amp;lang=en"' in preview.text
        document = ana.get("/publish/report.md", params={"month": MONTH, "lang": "en"})
        assert document.status_code == 200 and "pub-first: IMAP attempts" in document.text
        assert document.headers["cache-control"] == "no-store"
        assert live.store.revisions(MONTH) == []  # previews publish nothing
        form = {"csrf": csrf_of(preview.text), "month": MONTH, "digest": digest_of(preview.text)}
        # The confirmation is a second, explicit step: without the tick, nothing happens.
        unticked = ana.post("/publish", data=form)
        assert unticked.status_code == 422 and "Tick the confirmation" in unticked.text
        forged = ana.post("/publish", data={**form, "csrf": "x", "confirm": "yes"})
        assert forged.status_code == 403
        # The month changes after the preview: refused, and the new preview is shown.
        file_case(live, "pub-late: arrived after the preview")
        changed = ana.post("/publish", data={**form, "confirm": "yes"})
        assert changed.status_code == 409 and "changed after the preview" in changed.text
        assert "pub-late" in changed.text and digest_of(changed.text) != form["digest"]
        assert live.store.revisions(MONTH) == []
        done = ana.post("/publish", data={**form, "digest": digest_of(changed.text),
                                          "confirm": "yes"})  # fmt: skip
        assert done.status_code == 303 and done.headers["location"] == f"/published/{MONTH}"
        page = ana.get(f"/published/{MONTH}").text
        assert "Published." in page and "Revision 1" in page and "pub-late" in page
        # Again: the preview says nothing changed; publishing makes revision 2.
        again = ana.get("/publish", params={"month": MONTH}).text
        assert "Nothing has changed" in again and "revision 2" in again
        publish_month(ana, MONTH)
        assert "Revision 2" in ana.get(f"/published/{MONTH}").text
    assert [r.revision for r in live.store.revisions(MONTH)] == [1, 2]
    assert [e.actor for e in live.store.audit_log() if e.action == "publish"] == ["ana", "ana"]


def test_withdraw_from_the_preview_page(live: Live) -> None:
    file_case(live, "pub-withdrawn")
    live.store.publish_month(MONTH, actor="ana", today=next_month_start())
    with signed_in(live, "ana") as ana:
        preview = ana.get("/publish", params={"month": MONTH}).text
        assert 'action="/withdraw"' in preview
        form = {"csrf": csrf_of(preview), "month": MONTH, "reason": "<b>counted twice</b>"}
        assert ana.post("/withdraw", data=form).status_code == 422  # not ticked
        assert live.store.published_months() == [MONTH]
        done = ana.post("/withdraw", data={**form, "confirm": "yes"})
        assert done.status_code == 303
        assert "withdrawn" in ana.get(done.headers["location"]).text
    with httpx.Client(base_url=live.url, headers={"Accept-Language": "ja"}) as public:
        notice = public.get(f"/published/{MONTH}")
        assert notice.status_code == 410 and "取り下げられました" in notice.text
        assert "<h1>公表の取り下げ</h1>" in notice.text
        assert "&lt;b&gt;counted twice&lt;/b&gt;" in notice.text
        listed = public.get("/published").text
        assert "取り下げられた月" in listed and f'href="/published/{MONTH}"' not in listed
        assert public.get(f"/published/{MONTH}/report.pdf").status_code == 410
        assert public.get("/api/public/months").json()["withdrawn"] == [MONTH]
    assert live.store.published_months() == []
    assert [e.action for e in live.store.audit_log()].count("withdraw") == 1


def test_months_that_cannot_be_published(live: Live) -> None:
    clock = next_month_start().strftime("%Y-%m")  # the test center's current month
    cases = [(clock, "still in progress"), ("2999-12", "in the future"),
             ("0001-01", "before the reporting scheme")]  # fmt: skip
    with signed_in(live, "ana") as ana:
        for month, why in cases:
            preview = ana.get("/publish", params={"month": month})
            assert preview.status_code == 409 and why in preview.text, month
            assert 'name="digest"' not in preview.text
            token = csrf_of(preview.text)
            forced = ana.post("/publish", data={"csrf": token, "month": month, "confirm": "yes",
                                                "digest": "0" * 64})  # fmt: skip
            assert forced.status_code == 409 and why in forced.text
        bad = ana.get("/publish", params={"month": "1997-13"})
        assert bad.status_code == 422
    published = {r.month for r in live.store.revisions()}
    assert not published & {m for m, _ in cases}
    assert re.fullmatch(r"\d{4}-\d{2}", clock)

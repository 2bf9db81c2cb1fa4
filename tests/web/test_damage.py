"""実被害 yes / no / unknown on the pages: unknown is shown and preselected as unknown,
saving the classification form with only the status changed keeps it unknown, the inbox
filters on it, and the public page never says "no damage" for it. The classification form
previews the public text drafted from the codes and stores the analyst's approval."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from tests.center import backdate
from tests.web.conftest import csrf_of, publish_month, signed_in
from tests.web.server import Live
from todokede.center.store import tables


class FormValues(HTMLParser):
    """What a browser would submit for one form of a page, as it stands."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.values: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        if not self.inside or ("name" not in a and tag != "option"):
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.values.append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "file"):
                self.values.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.values.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.values.append((a["name"], ""))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            name, text = self.values[-1]
            self.values[-1] = (name, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def form_of(html: str, action: str) -> list[tuple[str, str]]:
    parser = FormValues(action)
    parser.feed(html)
    assert parser.values, f"no form posting to {action}"
    return parser.values


def as_data(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Form pairs as httpx sends them (a name may repeat: ticked boxes)."""
    data: dict[str, list[str]] = {}
    for name, value in pairs:
        data.setdefault(name, []).append(value)
    return data


def file_report(client: httpx.Client, **fields: Any) -> int:
    token = csrf_of(client.get("/reports/new").text)
    sent = client.post("/reports/new", data={"csrf": token, "action": "send", **fields})
    assert sent.status_code == 303, sent.text
    return int(sent.headers["location"].rsplit("/", 1)[1])


def column(live: Live, rid: int) -> Any:
    with live.store.engine.connect() as conn:
        r = tables.reports.c
        return conn.execute(tables.reports.select().with_only_columns(r.actual_damage)
                            .where(r.id == rid)).scalar_one()  # fmt: skip


@pytest.mark.parametrize(("answer", "stored"), [("", None), ("no", False), ("yes", True)])
def test_saving_only_the_status_keeps_the_answer(
    live: Live, answer: str, stored: bool | None
) -> None:
    with signed_in(live, "alice") as alice:
        rid = file_report(alice, title="tri-state", methods=["access_probe"], targets="imap",
                          actual_damage=answer)  # fmt: skip
    with signed_in(live, "ana") as ana:
        page = ana.get(f"/reports/{rid}").text
        values = form_of(page, f"/reports/{rid}/triage")
        # preselected as it is: unknown is the empty choice, not "no"
        assert [v for k, v in values if k == "actual_damage"] == [answer]
        changed = [(k, "triaged" if k == "status" else v) for k, v in values]
        assert ana.post(f"/reports/{rid}/triage", data=as_data(changed)).status_code == 303
    sr = live.store.get_report(rid)
    assert (sr.triage.status, sr.effective_actual_damage(), column(live, rid)) == (
        "triaged", stored, stored
    )  # fmt: skip


def test_unknown_is_shown_filtered_and_never_told_as_no_damage(live: Live) -> None:
    with signed_in(live, "alice") as alice:
        rid = file_report(alice, title="unknown damage", methods=["intrusion"], targets="telnet")
    month = backdate.move(live.store, [rid], backdate.last_month())
    token = live.store.new_token("ana")
    with signed_in(live, "ana") as ana:
        page = ana.get(f"/reports/{rid}").text
        assert "<dt>Actual damage</dt><dd>Unknown</dd>" in page
        listed = {a: ana.get("/inbox", params={"actual": a}).text for a in ("unknown", "no")}
        assert f'href="/reports/{rid}"' in listed["unknown"]
        assert f'href="/reports/{rid}"' not in listed["no"]
        # the API's status change keeps it unknown too
        changed = ana.post(f"/api/reports/{rid}/status", json={"status": "triaged"},
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert changed.status_code == 200 and changed.json()["triage"]["actual_damage"] is None
        listed_api = ana.get("/api/reports", params={"month": month},
                             headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
        assert [i["actual_damage"] for i in listed_api["items"] if i["id"] == rid] == [None]
        # published as an analyst does: the preview, then its confirmation
        publish_month(ana, month)
        stats = ana.get("/dashboard", params={"month": month}).text
        assert "Actual damage unknown" in stats
    public = httpx.get(f"{live.url}/api/public/months/{month}", timeout=30).json()
    case = next(c for c in public["reports"] if c["id"] == rid)
    assert case["actual_damage"] is None and public["actual_damage_unknown"] >= 1
    assert "no actual damage" not in case["narrative_en"].lower()
    assert "unknown" in case["narrative_en"]
    # the published month's frozen statistics keep the three answers apart
    frozen = httpx.get(f"{live.url}/statistics", params={"month": month},
                       headers={"Accept-Language": "en"}, timeout=60).text  # fmt: skip
    assert "Actual damage unknown" in frozen
    for lang, no in (("en", "no actual damage"), ("ja", "実害は無かった")):
        for path in (f"/published/{month}", f"/published/{month}/report.md"):
            text = httpx.get(f"{live.url}{path}", params={"lang": lang},
                             headers={"Accept-Language": lang}, timeout=60).text  # fmt: skip
            assert no not in text, path


def test_classification_previews_and_approves_the_drafted_text(live: Live) -> None:
    with signed_in(live, "alice") as alice:
        rid = file_report(alice, title="Yamada's own title", methods=["access_probe"],
                          targets="imapd, 経理サーバ", attempts="9", actual_damage="no",
                          narrative="Yamada's own words")  # fmt: skip
    with signed_in(live, "ana") as ana:
        page = ana.get(f"/reports/{rid}").text
        # the draft (codes and counts) is previewed; public now: the labels alone
        assert "Access probe (attempt)" in page and "9 attempts" in page
        assert 'name="public_draft_approved"' in page
        values = [(k, v) for k, v in form_of(page, f"/reports/{rid}/triage")]
        assert sorted(v for k, v in values if k == "targets") == ["imap", "other"]
        values.append(("public_draft_approved", "on"))
        assert ana.post(f"/reports/{rid}/triage", data=as_data(values)).status_code == 303
        assert live.store.get_triage(rid).public_draft_approved is True
        again = form_of(ana.get(f"/reports/{rid}").text, f"/reports/{rid}/triage")
        assert ("public_draft_approved", "on") in again
        # unticked again: saved as not approved
        without = [(k, v) for k, v in again if k != "public_draft_approved"]
        assert ana.post(f"/reports/{rid}/triage", data=as_data(without)).status_code == 303
        assert live.store.get_triage(rid).public_draft_approved is False

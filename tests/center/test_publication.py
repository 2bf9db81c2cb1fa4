"""Published months stay fixed: a snapshot per revision, on SQLite and PostgreSQL.

Every public view of a published month (the month page and statistics in Japanese and
English, the charts, the public API, the publication in HTML, Markdown and PDF, and
``todokede monthly``) is read before and after the things that used to change it —
backdating through the API and drafts, late triage, new reports in the month — and must
be byte-identical until the month is published again (revision 2, audited). Withdrawal,
the months that cannot be published, and the preview's digest are checked too.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import need
from todokede.center.intake.schema import Report, Triage
from todokede.center.publication import snapshot
from todokede.center.store import Store
from todokede.cli import cli
from todokede.errors import InputError, Withdrawn

MONTH = "1997-09"
LANGS = ("ja", "en")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fill(store: Store) -> dict[str, int]:
    """A small September 1997 and one earlier month, classified as an analyst would."""
    store.add_report(
        Report(received=date(1997, 4, 2), methods=["mail_bombing"], targets=["smtp"],
               damage=["service_lowering"], actual_damage=True),
        triage=Triage(status="published"),
    )  # fmt: skip
    probe = store.add_report(
        Report(received=date(1997, 9, 17), methods=["access_probe"], targets=["imap"],
               damage=["none"], actual_damage=False, attempts=9),
        owner="alice",
        triage=Triage(status="triaged", published_title="IMAPサーバへのアクセス形跡",
                      published_title_en="Access attempts on an IMAP server"),
    )  # fmt: skip
    bomb = store.add_report(
        Report(received=date(1997, 9, 21), methods=["mail_bombing"], targets=["smtp"],
               damage=["service_lowering"], actual_damage=True, attempts=3200),
        owner="bob",
        triage=Triage(status="triaged"),
    )  # fmt: skip
    pending = store.add_report(
        Report(received=date(1997, 9, 25), methods=["mail_relay"], targets=["smtp"]),
        owner="alice",
    )
    return {"probe": probe.id, "bomb": bomb.id, "pending": pending.id}


def views(client: Any) -> dict[str, bytes]:
    """Every public view of MONTH, as bytes."""
    out: dict[str, bytes] = {}
    for lang in LANGS:
        h = {"Accept-Language": lang}
        out[f"page.{lang}"] = client.get(f"/published/{MONTH}", headers=h).content
        out[f"stats.{lang}"] = client.get("/statistics", params={"month": MONTH}, headers=h).content
        out[f"home.{lang}"] = client.get("/", headers=h).content
        for kind in ("monthly", "methods"):
            out[f"{kind}.{lang}"] = client.get(f"/statistics/{MONTH}/{kind}.svg", headers=h).content
        for fmt in ("html", "md", "pdf"):
            got = client.get(f"/published/{MONTH}/report.{fmt}", params={"lang": lang})
            assert got.status_code == 200, got.text[:300]
            out[f"report.{lang}.{fmt}"] = got.content
    out["api.months"] = client.get("/api/public/months").content
    out["api.month"] = client.get(f"/api/public/months/{MONTH}").content
    for name, body in out.items():
        assert body, name
    return out


def monthly_md(url: str, *extra: str) -> Any:
    """``todokede monthly MONTH --format md -o -`` on the center's database."""
    return CliRunner().invoke(cli, ["monthly", MONTH, "--format", "md", "-o", "-", "--db", url,
                                    *extra])  # fmt: skip


def pdf_text(data: bytes, tmp_path: Any) -> str:
    need("pdftotext")
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                          check=True, timeout=60)  # fmt: skip
    return done.stdout.decode()


@pytest.mark.slow
def test_published_month_stays_fixed_until_republished(
    client: Any, store: Store, store_url: str, tokens: dict[str, str], tmp_path: Any
) -> None:
    ids = fill(store)
    ana, alice = bearer(tokens["analyst"]), bearer(tokens["alice"])
    preview = client.get(f"/api/months/{MONTH}/preview", headers=ana).json()
    assert preview["revision"] == 1 and [r["id"] for r in preview["reports"]] == [
        ids["probe"], ids["bomb"]
    ]  # fmt: skip
    done = client.post(f"/api/months/{MONTH}/publish", json={"digest": preview["digest"]},
                       headers=ana)  # fmt: skip
    assert done.status_code == 200 and done.json()["revision"] == 1, done.text
    before = views(client)
    text_before = {lang: pdf_text(before[f"report.{lang}.pdf"], tmp_path) for lang in LANGS}
    assert "IMAP" in text_before["en"]
    api = json.loads(before["api.month"])
    assert (api["total"], api["with_actual_damage"], api["without_actual_damage"],
            api["actual_damage_unknown"], api["revision"]) == (2, 1, 1, 0, 1)  # fmt: skip
    cli_md = monthly_md(store_url)
    assert cli_md.exit_code == 0, cli_md.output
    assert cli_md.stdout_bytes == before["report.ja.md"]

    # Backdating: a submission, a draft and a sent draft cannot carry a received date.
    late = {"methods": ["intrusion"], "damage": ["file_alteration"], "actual_damage": True}
    for body in ({**late, "received": "1997-09-05"}, {**late, "received": None}):
        r = client.post("/api/reports", json=body, headers=alice)
        if body["received"] is None:
            assert r.status_code == 201 and r.json()["received"] != "1997-09-05"
            backdated = r.json()["id"]
        else:
            assert (r.status_code, r.json()["field"]) == (422, "received")
    draft = client.post("/api/reports?draft=true", json=late, headers=alice).json()["id"]
    r = client.put(f"/api/reports/{draft}", json={**late, "received": "1997-09-05"}, headers=alice)
    assert (r.status_code, r.json()["field"]) == (422, "received")
    store.update_report(draft, Report(**late, received=date(1997, 9, 5)), actor="alice")
    assert store.get_report(draft).report.received != date(1997, 9, 5)
    client.post(f"/api/reports/{draft}/send", headers=alice)
    # Late triage: the analyst classifies everything, even what a reporter sent today.
    for rid in (backdated, draft, ids["pending"]):
        store.set_triage(rid, Triage(status="triaged", actual_damage=True), actor="ana")
    store.update_triage(ids["probe"], {"published_title_en": "Changed later"}, actor="ana")
    store.update_triage(ids["bomb"], {"duplicate_of": ids["probe"]}, actor="ana")
    # A new report in the month, stored by the center itself (as a history import would).
    store.add_report(
        Report(received=date(1997, 9, 30), methods=["intrusion"], actual_damage=True),
        triage=Triage(status="triaged"),
    )
    after = views(client)
    changed = [name for name in before if before[name] != after[name]]
    assert changed == [], changed
    assert {lang: pdf_text(after[f"report.{lang}.pdf"], tmp_path) for lang in LANGS} == text_before
    assert monthly_md(store_url).stdout_bytes == cli_md.stdout_bytes
    assert monthly_md(store_url, "--draft").stdout_bytes != cli_md.stdout_bytes  # the live month

    # Publishing again makes revision 2, which shows the changes; both are audited.
    second = client.get(f"/api/months/{MONTH}/preview", headers=ana).json()
    assert second["revision"] == 2 and second["digest"] != preview["digest"]
    assert second["current"]["revision"] == 1
    r = client.post(f"/api/months/{MONTH}/publish", json={"digest": second["digest"]}, headers=ana)
    assert r.json()["revision"] == 2
    republished = views(client)
    data = json.loads(republished["api.month"])
    # The bomb is now a duplicate; the pending report and the new one were triaged; the
    # "backdated" reports were received today, not in September 1997.
    assert data["revision"] == 2 and data["total"] == 3
    assert data["reports"][0]["title_en"] == "Changed later"
    assert republished["report.en.md"] != before["report.en.md"]
    assert "Changed later" in pdf_text(republished["report.en.pdf"], tmp_path)
    entries = [e for e in store.audit_log() if e.action == "publish"]
    assert [(json.loads(e.detail or "{}")["revision"], e.actor) for e in entries] == [
        (1, "ana"), (2, "ana")
    ]  # fmt: skip
    assert [r.revision for r in store.revisions(MONTH)] == [1, 2]


def test_pdf_is_rendered_once_per_revision(store: Store) -> None:
    fill(store)
    rev = store.publish_month(MONTH, actor="ana")
    assert store.publication_file(MONTH, rev.revision, "en.pdf") is None  # not yet rendered
    first = snapshot.document(store, rev, "en", "pdf")
    assert first.startswith(b"%PDF")
    assert store.publication_file(MONTH, rev.revision, "en.pdf") == first  # kept
    assert snapshot.document(store, rev, "en", "pdf") == first
    assert store.publication_file(MONTH, rev.revision, "ja.pdf") is None  # per language


def test_withdrawal_is_a_notice_and_audited(
    client: Any, store: Store, tokens: dict[str, str]
) -> None:
    fill(store)
    ana = bearer(tokens["analyst"])
    store.publish_month(MONTH, actor="ana")
    r = client.post(f"/api/months/{MONTH}/withdraw", json={"reason": "counted twice"},
                    headers=bearer(tokens["alice"]))  # fmt: skip
    assert r.status_code == 403
    r = client.post(f"/api/months/{MONTH}/withdraw", json={"reason": "counted twice"}, headers=ana)
    assert r.status_code == 200 and r.json()["published"] is False
    assert client.get("/api/public/months").json() == {"months": [], "withdrawn": [MONTH]}
    gone = client.get(f"/api/public/months/{MONTH}")
    assert gone.status_code == 410 and gone.json()["reason"] == "counted twice"
    page = client.get(f"/published/{MONTH}", headers={"Accept-Language": "en"})
    assert page.status_code == 410 and "withdrawn" in page.text and "counted twice" in page.text
    assert client.get(f"/published/{MONTH}/report.md").status_code == 410
    assert client.get(f"/statistics/{MONTH}/monthly.svg").status_code == 410
    listed = client.get("/published", headers={"Accept-Language": "en"}).text
    assert "Withdrawn months" in listed and "counted twice" in listed
    assert MONTH not in client.get("/", headers={"Accept-Language": "en"}).text
    with pytest.raises(Withdrawn):
        snapshot.published(store, MONTH)
    with pytest.raises(InputError):
        store.withdraw_month(MONTH, actor="ana")  # withdrawn already
    again = client.post(f"/api/months/{MONTH}/withdraw", json={}, headers=ana)
    assert again.status_code == 409
    withdrawals = [e for e in store.audit_log() if e.action == "withdraw"]
    assert len(withdrawals) == 1 and withdrawals[0].actor == "ana"
    assert json.loads(withdrawals[0].detail or "{}")["reason"] == "counted twice"
    # Withdrawn months are not "published before" for novelty; publishing again revives it.
    assert store.published_months() == []
    assert store.publish_month(MONTH, actor="ana").revision == 2
    assert client.get(f"/api/public/months/{MONTH}").json()["revision"] == 2


def _this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def _next_month() -> str:
    return (datetime.now(UTC).date().replace(day=1) + timedelta(days=32)).strftime("%Y-%m")


@pytest.mark.parametrize(
    ("month", "why"),
    [(_this_month(), "still in progress"), (_next_month(), "in the future"),
     ("2999-12", "in the future"), ("0001-01", "before the reporting scheme"),
     ("1996-07", "before the reporting scheme"), ("September", "YYYY-MM")],
)  # fmt: skip
def test_only_closed_past_months_can_be_published(
    client: Any, store: Store, tokens: dict[str, str], month: str, why: str
) -> None:
    with pytest.raises(InputError) as err:
        store.publish_month(month, actor="ana")
    assert err.value.field == "month" and why in err.value.message
    ana = bearer(tokens["analyst"])
    if month != "September":  # the path itself refuses anything but YYYY-MM
        r = client.get(f"/api/months/{month}/preview", headers=ana)
        assert (r.status_code, r.json()["field"]) == (409, "month") and why in r.json()["error"]
        r = client.post(f"/api/months/{month}/publish", json={"digest": "0" * 64}, headers=ana)
        assert (r.status_code, r.json()["field"]) == (409, "month")
    assert store.revisions() == [] and client.get("/api/public/months").json()["months"] == []


def test_changed_since_the_preview_is_not_published(
    client: Any, store: Store, tokens: dict[str, str]
) -> None:
    ids = fill(store)
    ana = bearer(tokens["analyst"])
    preview = client.get(f"/api/months/{MONTH}/preview", headers=ana).json()
    assert client.get(f"/api/months/{MONTH}/preview", headers=ana).json() == preview  # stable
    store.update_triage(ids["pending"], {"status": "triaged"}, actor="ana")
    r = client.post(f"/api/months/{MONTH}/publish", json={"digest": preview["digest"]}, headers=ana)
    assert (r.status_code, r.json()["field"]) == (409, "digest")
    assert store.revisions(MONTH) == []
    r = client.post(f"/api/months/{MONTH}/publish", json={"digest": "nope"}, headers=ana)
    assert r.status_code == 422


def test_a_month_published_before_snapshots_is_frozen_on_first_sight(store_url: str) -> None:
    """The migration keeps an old published month as revision 1 without a snapshot; its
    first public view freezes it (audited), and later changes no longer show."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from todokede.center.store.database import MIGRATIONS, normalise_url

    engine = create_engine(normalise_url(store_url))
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(text("INSERT INTO published_months VALUES ('1997-09', :at, 'old-ana')"),
                     {"at": datetime(1997, 10, 1, tzinfo=UTC)})  # fmt: skip
    engine.dispose()
    with Store.open(store_url) as store:
        ids = fill(store)
        (old,) = store.revisions()
        assert (old.month, old.revision, old.published_by, old.digest) == (
            MONTH,
            1,
            "old-ana",
            None,
        )
        frozen = snapshot.published(store, MONTH)
        assert [r.id for r in frozen.snapshot.reports] == [ids["probe"], ids["bomb"]]
        assert [e.action for e in store.audit_log()].count("freeze") == 1
        store.update_triage(ids["pending"], {"status": "triaged"}, actor="ana")
        assert snapshot.published(store, MONTH).snapshot == frozen.snapshot
        assert [e.action for e in store.audit_log()].count("freeze") == 1


def test_cli_preview_confirm_withdraw_list(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'center.db'}"
    with Store.open(url) as store:
        fill(store)
    runner = CliRunner()
    preview = runner.invoke(cli, ["publish", "preview", MONTH, "--db", url])
    assert preview.exit_code == 0, preview.output
    assert (
        f"{MONTH}: 2 public cases" in preview.output
        and "IMAPサーバへのアクセス形跡" in preview.output
        and "3 counted reports (actual damage: 1 yes, 1 no, 1 unknown)" in preview.output
    )
    command = preview.output.strip().splitlines()[-1].split(": ", 1)[1]
    assert command.startswith(f"todokede publish confirm {MONTH} ")
    digest = command.rsplit(" ", 1)[1]
    wrong = runner.invoke(cli, ["publish", "confirm", MONTH, "0" * 64, "--db", url])
    assert wrong.exit_code == 2 and "changed since the preview" in wrong.output
    done = runner.invoke(cli, ["publish", "confirm", MONTH, digest, "--actor", "ana", "--db", url])
    assert done.exit_code == 0 and f"{MONTH}: revision 1 published" in done.output
    again = runner.invoke(cli, ["publish", "preview", MONTH, "--db", url])
    assert "now: revision 1, published (the same content)" in again.output
    gone = runner.invoke(cli, ["publish", "withdraw", MONTH, "--reason", "twice", "--db", url])
    assert gone.exit_code == 0 and "revision 1 withdrawn" in gone.output
    listed = runner.invoke(cli, ["publish", "list", "--db", url])
    assert listed.output.startswith(f"{MONTH}\t1\t") and listed.output.rstrip().endswith(
        "withdrawn " + datetime.now(UTC).strftime("%Y-%m-%d")
    )  # fmt: skip
    refused = runner.invoke(cli, ["publish", "preview", "2999-12", "--db", url])
    assert refused.exit_code == 2 and "in the future" in refused.output
    with Store.open(url) as store:
        assert [e.actor for e in store.audit_log() if e.action in ("publish", "withdraw")] == [
            "ana", "admin"
        ]  # fmt: skip

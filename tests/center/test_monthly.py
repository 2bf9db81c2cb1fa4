"""The monthly publication, on a small center built here (the demo's is in test_demo)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from todokede.center.intake.schema import Discovery, Report, Reporter, StoredReport, Triage
from todokede.center.publication.monthly import Segment, build, era, render, to_html, to_markdown
from todokede.center.publication.monthly.content import _annotate
from todokede.center.store import Store
from todokede.cli import cli
from todokede.errors import InputError

HOSTILE = "<script>alert(1)</script> | **bold** [x](http://evil.example/) tcp_wrapper"


@pytest.fixture
def center(tmp_path: Path) -> Iterator[tuple[Store, str]]:
    url = f"sqlite:///{tmp_path / 'center.db'}"
    store = Store.open(url)
    published = Triage(status="published")
    store.add_report(
        Report(received=date(1997, 4, 2), methods=["mail_bombing"], targets=["smtp"],
               damage=["service_lowering"], actual_damage=True),
        triage=published,
    )  # fmt: skip
    store.publish_month("1997-04", actor="analyst")
    reporter = Reporter(name="佐藤 一郎", email="ichiro@secret.example.jp", organisation="北都大学")
    store.add_report(
        Report(received=date(1997, 9, 17), methods=["access_probe"], targets=["imap"],
               damage=["none"], actual_damage=False, attempts=9, reporter=reporter,
               sources=["198.51.100.77"], narrative="佐藤 一郎 が見つけた"),
        triage=Triage(status="triaged", published_narrative=HOSTILE,
                      published_narrative_en=HOSTILE, published_title="<b>IMAP</b>"),
    )  # fmt: skip
    bomb = store.add_report(
        Report(received=date(1997, 9, 21), methods=["mail_bombing"], targets=["smtp"],
               damage=["service_lowering"], actual_damage=True, attempts=3200, reporter=reporter),
        triage=Triage(status="triaged"),
    )  # fmt: skip
    store.add_report(Report(received=date(1997, 9, 22), methods=["dos"]),
                     triage=Triage(is_test=True))  # fmt: skip
    store.add_report(bomb.report, triage=Triage(duplicate_of=bomb.id))
    store.publish_month("1997-09", actor="analyst")
    try:
        yield store, url
    finally:
        store.close()


SECRETS = ("佐藤", "ichiro@secret.example.jp", "北都大学", "198.51.100.77")


def test_build_counts_cases_and_rows(center: tuple[Store, str]) -> None:
    store, _ = center
    pub = build(store, "1997-09", "ja")
    assert pub.count == 2  # the test report and the duplicate are left out
    assert [c.heading for c in pub.cases] == ["<b>IMAP</b>"]
    assert [r.day for r in pub.rows] == ["9/17", "9/21"]
    assert [r.new for r in pub.rows] == [True, False]
    # drafted from the codes alone until the analyst approves the draft with its counts
    assert pub.rows[1].summary == "電子メール爆撃"
    assert pub.stats.this.reports.n == 2 and pub.stats.this.reports.actual == 1
    assert pub.published
    bomb = next(r for r in store.iter_reports() if r.report.attempts == 3200)
    store.update_triage(bomb.id, {"public_draft_approved": True}, actor="analyst")
    assert build(store, "1997-09", "ja").rows[1].summary == "電子メール爆撃(3,200通)"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_html_escapes_report_text_and_is_self_contained(
    center: tuple[Store, str], lang: str
) -> None:
    store, _ = center
    html = render(store, "1997-09", lang=lang, fmt="html").decode()  # type: ignore[arg-type]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>IMAP</b>" not in html
    if lang == "ja":
        assert "&lt;b&gt;IMAP&lt;/b&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html
    assert not re.search(r"url\((?!#)", html)  # only in-document references (SVG clip paths)
    for secret in SECRETS:
        assert secret not in html
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 3  # the case's figure and two charts
    for svg in svgs:
        ET.fromstring(svg)
    if lang == "ja":
        assert "届け出が<strong>2件</strong>" in html and "<strong>1件</strong>" in html
    else:
        assert "<strong>2 reports</strong>" in html and "the <strong>1</strong> whose" in html


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_markdown_escapes_and_keeps_tables(center: tuple[Store, str], lang: str) -> None:
    store, _ = center
    md = render(store, "1997-09", lang=lang, fmt="md").decode()  # type: ignore[arg-type]
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert r"\| \*\*bold\*\* \[x\]" in md  # no table break, no emphasis, no link
    for secret in SECRETS:
        assert secret not in md
    rows = [line for line in md.splitlines() if line.startswith("| 9/")]
    assert [r.split("|")[1].strip() for r in rows] == ["9/17", "9/21"]
    assert all(line.count("|") == rows[0].count("|") for line in rows)
    assert "2 (実被害 1)" in md or "2 (damage 1)" in md


def test_an_unpublished_month_is_marked_draft(center: tuple[Store, str]) -> None:
    store, _ = center
    html = render(store, "1997-10", lang="ja", fmt="html").decode()
    assert "下書き" in html and "届け出が<strong>0件</strong>" in html
    assert "概要を報告する" not in html


def test_bad_month_format_and_language(center: tuple[Store, str]) -> None:
    store, _ = center
    with pytest.raises(InputError, match="YYYY-MM"):
        render(store, "1997-9")
    with pytest.raises(InputError, match="format"):
        render(store, "1997-09", fmt="docx")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="language"):
        render(store, "1997-09", lang="fr")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("year", "month", "name"),
    [(1997, 9, "平成9年"), (1989, 1, "平成元年"), (2019, 4, "平成31年"), (2019, 5, "令和元年"),
     (2024, 1, "令和6年"), (1988, 12, "昭和63年")],
)  # fmt: skip
def test_era(year: int, month: int, name: str) -> None:
    assert era(year, month) == name


def test_glossary_notes_follow_the_first_use_and_its_gloss() -> None:
    text = ["tcp_wrapperのログにIMAP(Internet Message Access Protocol)サーバへのtcp_wrapper"]
    paragraphs, notes = _annotate(text, "ja", {})
    assert paragraphs[0] == [
        Segment("tcp_wrapper", 1),
        Segment("のログにIMAP(Internet Message Access Protocol)", 2),
        Segment("サーバへのtcp_wrapper"),
    ]
    assert [n for n, _ in notes] == [1, 2] and "接続を監視" in notes[0][1]
    # IMAP4rev1 is not the term IMAP
    assert _annotate(["IMAP4rev1 only"], "en", {})[1] == []


def test_cli_monthly_writes_a_file_and_stdout(center: tuple[Store, str], tmp_path: Path) -> None:
    _, url = center
    runner = CliRunner()
    out = tmp_path / "p.md"
    result = runner.invoke(
        cli, ["monthly", "1997-09", "--format", "md", "-o", str(out), "--db", url]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# コンピュータ不正アクセス被害の届出状況")
    result = runner.invoke(cli, ["monthly", "1997-09", "--lang", "en", "--format", "md", "-o", "-",
                                 "--db", url])  # fmt: skip
    assert result.exit_code == 0 and "# Reports of unauthorized computer access" in result.output
    result = runner.invoke(cli, ["monthly", "97-09", "--db", url])
    assert result.exit_code == 2 and "todokede: error:" in result.output
    result = runner.invoke(cli, ["monthly", "1997-09", "--db", str(tmp_path / "typo.db")])
    assert result.exit_code == 2 and "no center database" in result.output
    assert not (tmp_path / "typo.db").exists()


def _stored(
    methods: list[str], targets: list[str], *, tool: str | None, actual: bool
) -> StoredReport:
    report = Report(methods=methods, targets=targets, actual_damage=actual, attempts=9,
                    discovery=Discovery(tool=tool) if tool else None)  # fmt: skip
    now = datetime(1997, 9, 17, tzinfo=UTC)
    return StoredReport(id=1, report=report, triage=Triage(), created_at=now, updated_at=now)


@pytest.mark.parametrize(
    ("methods", "targets", "tool", "actual", "flow"),
    [
        (["access_probe"], ["imap"], "tcp_wrapper", False,
         "外部ホスト → tcp_wrapper ✕ → IMAPサーバ"),
        (["intrusion"], ["telnet"], None, True, "外部ホスト → telnetサーバ"),
        (["mail_relay"], ["smtp"], None, True, "SPAM送信元 → 電子メールサーバ → 多数の受信者"),
        (["mail_bombing"], ["smtp"], None, True, "送信者 → 電子メールサーバ → 受信者(9通)"),
        # a service the taxonomy does not know is "other", never the reporter's words
        (["dos"], ["<img src=x>"], None, True, "外部ホスト → その他のサーバ"),
    ],
)  # fmt: skip
def test_figures_follow_the_case(
    methods: list[str], targets: list[str], tool: str | None, actual: bool, flow: str
) -> None:
    from todokede.center.publication.figures import figure_for

    figure = figure_for(_stored(methods, targets, tool=tool, actual=actual), "ja")
    assert figure.text.startswith(flow)
    root = ET.fromstring(figure.svg)  # well-formed: every label escaped
    assert root.tag.endswith("svg") and "<img" not in figure.svg
    assert ("#c00000" in figure.svg) == (not actual and tool is not None)


def test_a_long_month_lists_the_new_types_first(center: tuple[Store, str]) -> None:
    store, _ = center
    pub = build(store, "1997-09", "en", max_rows=1)
    assert pub.count == 2 and [r.day for r in pub.rows] == ["9/17"]  # the new IMAP case
    md = render(store, "1997-09", lang="ja", fmt="md").decode()
    assert "一覧を省略" not in md
    assert "1 more reports are not listed" in to_html(pub)
    assert "1 more reports are not listed" in to_markdown(pub)


@pytest.mark.parametrize(
    ("methods", "targets", "key"),
    [
        (["access_probe"], ["imap"], "imap_hole"),  # the specific advice beats the generic
        (["security_hole_attack"], ["imap", "smtp"], "imap_hole"),
        (["access_probe"], ["telnet"], "monitoring"),
        (["mail_relay"], ["smtp"], "mail_relay"),
        (["spam"], [], "mail_relay"),
        (["mail_bombing"], ["smtp"], "mail_bombing"),
        (["intrusion"], ["telnet"], "password"),
    ],
)
def test_advisory_for(methods: list[str], targets: list[str], key: str) -> None:
    from todokede.center.publication.advisories import advisory_for

    advisory = advisory_for(methods, targets)
    assert advisory is not None and advisory.key == key
    assert advisory.text("ja") and advisory.text("en") and advisory.short("en")


def test_no_advisory_without_a_method() -> None:
    from todokede.center.publication.advisories import JPCERT_97_0001, JPCERT_97_0004, advisory_for

    assert advisory_for([], ["imap"]) is None
    assert JPCERT_97_0004.id == "JPCERT/CC 97-0004" and "97-0001" in JPCERT_97_0001.url

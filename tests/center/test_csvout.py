"""CSV export: fixed columns, labels in Japanese or English, a BOM for Excel, cells that
a spreadsheet would run as formulas neutralised, personal columns only when asked."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.center.exchange.csvout import COLUMNS, PERSONAL_COLUMNS, iter_csv, safe_cell, to_csv
from todokede.center.intake.schema import Report, StoredReport, Triage

DATA = Path(__file__).parent / "data" / "exchange"


def reports() -> list[Report]:
    raw = json.loads((DATA / "reports.json").read_text(encoding="utf-8"))
    return [Report.model_validate(r) for r in raw]


def stored(report: Report, id: int = 1, triage: Triage | None = None) -> StoredReport:
    at = datetime(1997, 9, 22, 9, 0, tzinfo=UTC)
    return StoredReport(
        id=id, report=report, triage=triage or Triage(), created_at=at, updated_at=at
    )


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def all_stored() -> list[StoredReport]:
    return [stored(r, i) for i, r in enumerate(reports(), 1)]


@pytest.mark.parametrize(
    ("lang", "column", "methods", "actual"),
    [
        (None, "methods", "mail_relay; spam", "true"),
        ("ja", "手口", "メール不正中継; スパムメール", "有"),
        ("en", "Methods", "Unauthorized mail relay; Spam mail", "yes"),
    ],
)
def test_labels_follow_the_language(
    lang: str | None, column: str, methods: str, actual: str
) -> None:
    table = rows(to_csv(all_stored(), lang=lang))  # type: ignore[arg-type]
    assert len(table) == 3
    relay = table[1]
    assert relay[column] == methods
    heading = {None: "actual_damage", "ja": "実被害", "en": "Actual damage"}[lang]
    assert relay[heading] == actual
    assert len(relay) == len(COLUMNS)


def test_fixed_columns_in_order() -> None:
    header = to_csv([]).decode().splitlines()[0]
    assert header.split(",") == [c[0] for c in COLUMNS]


def test_bom_and_crlf() -> None:
    data = to_csv(all_stored(), bom=True)
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in data
    assert not to_csv(all_stored()).startswith(b"\xef\xbb\xbf")


def test_multi_line_narrative_stays_in_one_cell() -> None:
    table = rows(to_csv(all_stored(), personal=True))
    assert table[2]["narrative"] == reports()[2].narrative


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+81-3-1234", "'+81-3-1234"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("a=b", "a=b"),
        ("", ""),
        ("メール", "メール"),
    ],
)
def test_formula_cells_are_neutralised(value: str, expected: str) -> None:
    assert safe_cell(value) == expected


def test_formula_injection_in_a_report() -> None:
    table = rows(to_csv(all_stored(), personal=True))
    assert table[1]["narrative"].startswith("米国")  # '=' inside a cell is harmless
    evil = reports()[0].model_copy(update={"title": '=HYPERLINK("http://x")', "sources": ["-1"]})
    (row,) = rows(to_csv([stored(evil)], personal=True))
    assert row["title"] == '\'=HYPERLINK("http://x")'
    assert row["sources"] == "'-1"


def test_personal_columns_only_when_asked() -> None:
    plain = to_csv(all_stored()).decode()
    for r in reports():
        for secret in (r.reporter.name, r.reporter.email, r.reporter.phone):
            if secret:
                assert secret not in plain
    table = rows(to_csv(all_stored(), personal=True, lang="en"))
    assert len(table[0]) == len(COLUMNS) + len(PERSONAL_COLUMNS)
    assert table[0]["Reporter e-mail"] == "yamada@example.ac.jp"


def test_triage_decides_what_is_exported() -> None:
    triage = Triage(status="triaged", methods=["intrusion"], is_test=True)
    (row,) = rows(to_csv([stored(reports()[0], triage=triage)]))
    assert (row["methods"], row["status"], row["counted"]) == ("intrusion", "triaged", "false")


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=50))
def test_any_title_survives_and_never_starts_a_formula(title: str) -> None:
    report = Report(title=title or None)
    (row,) = rows(to_csv([stored(report)], personal=True))
    cell = row["title"]
    assert not cell.startswith(("=", "+", "-", "@"))
    assert cell.removeprefix("'") == (report.title or "") or cell == (report.title or "")


def test_streamed_in_chunks_with_one_bom() -> None:
    many = (stored(reports()[i % 3], i) for i in range(1, 2501))
    chunks = list(iter_csv(many, bom=True))
    assert len(chunks) == 3  # the header with 1000 rows, 1000 rows, the last 500
    data = b"".join(chunks)
    assert data.count(b"\xef\xbb\xbf") == 1
    table = rows(data)
    assert [int(r["id"]) for r in table] == list(range(1, 2501))


@pytest.mark.parametrize("lang", [None, "ja", "en"])
def test_partner_export_is_amber_public_text_and_target_codes(lang: str | None) -> None:
    table = rows(to_csv(all_stored(), lang=lang))  # type: ignore[arg-type]
    keys = [c[0] for c in COLUMNS]
    for row, report in zip(table, reports(), strict=True):
        cells = dict(zip(keys, row.values(), strict=True))
        assert cells["tlp"] == "TLP:AMBER"
        assert cells["countermeasures"] == ""
        for secret in (report.title, report.narrative, report.countermeasures):
            assert not secret or secret not in ",".join(row.values())
        assert cells["sources"] == "; ".join(report.sources)
    plain = rows(to_csv(all_stored()))
    assert {t for row in plain for t in row["targets"].split("; ") if t} <= {
        "imap", "smtp", "pop3", "telnet", "ftp", "http", "ssh", "other"
    }  # fmt: skip
    personal = rows(to_csv(all_stored(), personal=True))
    assert [row["tlp"] for row in personal] == ["TLP:RED"] * len(personal)
    assert personal[0]["title"] == reports()[0].title


def test_unknown_actual_damage_is_its_own_answer() -> None:
    report = Report(actual_damage=None)
    cells = {lang: rows(to_csv([stored(report)], lang=lang))[0] for lang in (None, "ja", "en")}
    assert cells[None]["actual_damage"] == ""
    assert cells["ja"]["実被害"] == "不明" and cells["en"]["Actual damage"] == "unknown"

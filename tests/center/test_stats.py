"""Statistics: SQL GROUP BYs checked against a count done by hand over every report."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date

import pytest

from todokede.center.intake.schema import Report, Reporter, Triage
from todokede.center.months import months_between, parse_month, shift
from todokede.center.publication.stats import (
    Count,
    methods_chart_svg,
    month_stats,
    monthly_chart_svg,
)
from todokede.center.store import Store
from todokede.errors import InputError


@pytest.mark.parametrize(
    ("month", "n", "expected"),
    [("1997-09", -1, "1997-08"), ("1997-01", -1, "1996-12"), ("1996-12", 1, "1997-01"),
     ("1997-09", -12, "1996-09"), ("2000-02", 0, "2000-02")],
)  # fmt: skip
def test_shift(month: str, n: int, expected: str) -> None:
    assert shift(month, n) == expected


@pytest.mark.parametrize("bad", ["1997-13", "97-09", "1997-9", "", "1997-09-01", "x"])
def test_bad_month_is_an_input_error(bad: str) -> None:
    with pytest.raises(InputError, match="YYYY-MM"):
        parse_month(bad)


def test_count_text() -> None:
    assert Count(3, 2).text("ja") == "3 (実被害 2)"
    assert Count(1200, 0).text("en") == "1,200 (damage 0)"


METHODS = ["access_probe", "intrusion", "mail_bombing", "mail_relay", "dos"]
DAMAGE = ["none", "file_alteration", "service_lowering", "mail_relay"]
CAUSES = ["unknown", "old_version", "misconfiguration"]
TYPES = ["system_admin", "end_user", "network_provider"]


def _random_reports(store: Store, seed: int) -> list[tuple[Report, Triage]]:
    rng = random.Random(seed)
    made = []
    for _ in range(60):
        received = date(rng.choice([1996, 1997]), rng.randint(1, 12), rng.randint(1, 28))
        report = Report(
            received=received,
            reporter=Reporter(type=rng.choice(TYPES), name="Secret Name"),
            methods=rng.sample(METHODS, rng.randint(1, 2)),
            damage=rng.sample(DAMAGE, rng.randint(1, 2)),
            causes=rng.sample(CAUSES, 1),
            actual_damage=rng.choice([True, False, None]),  # None: unknown
            targets=rng.sample(["imap", "smtp", "telnet"], 1),
        )
        triage = Triage(
            status=rng.choice(["received", "triaged", "published", "draft", "rejected"]),
            is_test=rng.random() < 0.1,
            actual_damage=rng.choice([None, None, True, False]),
        )
        made.append((report, triage))
    first = store.add_report(made[0][0], triage=made[0][1])
    for report, triage in made[1:]:
        store.add_report(report, triage=triage)
    # a duplicate of the first: never counted
    store.add_report(made[0][0], triage=Triage(duplicate_of=first.id))
    return made


def _by_hand(
    store: Store, first: str, last: str
) -> tuple[Count, Counter[tuple[str, str, bool | None]]]:
    n = actual = no = 0
    terms: Counter[tuple[str, str, bool | None]] = Counter()
    for r in store.iter_reports():
        month = r.report.received.strftime("%Y-%m") if r.report.received else ""
        if not (first <= month <= last) or not r.counted:
            continue
        hit = r.effective_actual_damage()
        n += 1
        actual += hit is True
        no += hit is False
        for code in r.effective_methods():
            terms[("method", code, hit)] += 1
        for code in r.effective_damage():
            terms[("damage", code, hit)] += 1
        if r.report.reporter.type:
            terms[("reporter_type", r.report.reporter.type, hit)] += 1
    return Count(n, actual, no), terms


def test_month_stats_match_a_count_by_hand(store: Store) -> None:
    _random_reports(store, 1997)
    stats = month_stats(store, "1997-09")
    assert [p.key for p in stats.quarters] == [
        "1996-Q3",
        "1996-Q4",
        "1997-Q1",
        "1997-Q2",
        "1997-Q3",
    ]
    assert stats.previous.key == "1997-08" and stats.year.first == "1997-01"
    assert [m for m, _ in stats.series] == months_between("1996-09", "1997-09")
    for period in stats.periods:
        reports, terms = _by_hand(store, period.first, period.last)
        assert period.reports == reports, period.key
        for vocabulary in ("method", "damage", "reporter_type"):
            for code in {c for v, c, _ in terms if v == vocabulary}:
                yes, no = terms[(vocabulary, code, True)], terms[(vocabulary, code, False)]
                expected = Count(yes + no + terms[(vocabulary, code, None)], yes, no)
                assert period.term(vocabulary, code) == expected, (period.key, vocabulary, code)
    for month, count in stats.series:
        assert count == _by_hand(store, month, month)[0]
    # unknown is its own answer: some of the random reports have it, and it is neither
    assert any(p.reports.unknown for p in stats.periods)
    assert all(p.reports.unknown == p.reports.n - p.reports.actual - p.reports.no
               for p in stats.periods)  # fmt: skip


def test_methods_are_counted_apart_from_reports(store: Store) -> None:
    store.add_report(
        Report(received=date(1997, 9, 1), methods=["mail_relay", "spam"], actual_damage=True)
    )
    stats = month_stats(store, "1997-09")
    assert stats.this.reports == Count(1, 1)
    assert stats.this.term("method", "mail_relay") == Count(1, 1)
    assert stats.this.term("method", "spam") == Count(1, 1)
    assert stats.codes("method") == ["mail_relay", "spam"]  # taxonomy order


def test_the_current_quarter_stops_at_the_month(store: Store) -> None:
    store.add_report(Report(received=date(1997, 8, 3), methods=["dos"]))
    store.add_report(Report(received=date(1997, 9, 30), methods=["dos"]))
    later = store.add_report(Report(received=date(1997, 10, 1), methods=["dos"]))
    stats = month_stats(store, "1997-08")
    assert stats.quarters[-1].last == "1997-08"
    assert stats.quarters[-1].reports.n == 1 and stats.year.reports.n == 1
    assert later.report.received == date(1997, 10, 1)


def test_empty_center_has_zero_everywhere(store: Store) -> None:
    stats = month_stats(store, "2001-01")
    assert all(p.reports == Count() for p in stats.periods)
    assert stats.codes("method") == []
    ET.fromstring(methods_chart_svg(stats, "en"))  # still a chart, saying "No reports"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_charts_are_inline_svg_without_external_references(store: Store, lang: str) -> None:
    _random_reports(store, 7)
    stats = month_stats(store, "1997-09")
    for svg in (monthly_chart_svg(stats, lang), methods_chart_svg(stats, lang)):  # type: ignore[arg-type]
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
        assert "<!--" not in svg and "http://" not in svg.replace("http://www.w3.org/", "")

"""The counts the statistics are made of, and the history novelty compares with."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select, true

from todokede.center.store.database import Database
from todokede.center.store.tables import report_terms, reports

Tally = tuple[int, int, int]  # reports, of which with actual damage, of which without


def _yes(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.sum(case((column.is_(True), 1), else_=0))


def _no(column: ColumnElement[Any]) -> ColumnElement[Any]:
    # NULL (unknown) is neither: it is counted by neither sum.
    return func.sum(case((column.is_(False), 1), else_=0))


class Statistics(Database):
    """Counts of counted reports by month, and the (method, target, damage) triples of
    published months."""

    def month_tallies(
        self, months: Sequence[str]
    ) -> tuple[dict[str, Tally], dict[str, dict[tuple[str, str], Tally]]]:
        """Per month: the counted reports, and per (vocabulary, code) their terms."""
        # ``month IN (...)`` rather than a range: each month is then an equality seek on
        # the covering index, read in GROUP BY order (a range makes SQLite sort).
        r, t = reports.c, report_terms.c
        report_q = (
            select(r.month, func.count(), _yes(r.actual_damage), _no(r.actual_damage))
            .where(r.month.in_(list(months)), r.counted == true())
            .group_by(r.month)
        )
        term_q = (
            select(t.month, t.vocabulary, t.code, func.count(), _yes(t.actual_damage),
                   _no(t.actual_damage))
            .where(t.month.in_(list(months)), t.counted == true())
            .group_by(t.month, t.vocabulary, t.code)
        )  # fmt: skip
        by_month: dict[str, Tally] = {}
        terms: dict[str, dict[tuple[str, str], Tally]] = defaultdict(dict)
        with self._read() as conn:
            for month, n, actual, no in conn.execute(report_q):
                by_month[month] = (int(n), int(actual or 0), int(no or 0))
            for month, vocabulary, code, n, actual, no in conn.execute(term_q):
                terms[month][(vocabulary, code)] = (int(n), int(actual or 0), int(no or 0))
        return by_month, terms

    def term_triples(self, months: Sequence[str]) -> set[tuple[str, str | None, str | None]]:
        """Every (method, target, damage) of a counted report of ``months``; a report
        without targets or damage gives None in that place."""
        m = report_terms.alias("m")
        t = report_terms.alias("t")
        d = report_terms.alias("d")
        query = (
            select(m.c.code, t.c.code, d.c.code)
            .distinct()
            .select_from(
                m.outerjoin(
                    t, and_(t.c.report_id == m.c.report_id, t.c.vocabulary == "target")
                ).outerjoin(d, and_(d.c.report_id == m.c.report_id, d.c.vocabulary == "damage"))
            )
            .where(m.c.vocabulary == "method", m.c.counted.is_(True), m.c.month.in_(list(months)))
        )
        with self._read() as conn:
            return {(a, b, c) for a, b, c in conn.execute(query)}

"""Statistics for the monthly publication: reports per period as ``N (実被害 M)`` and the
counts by method, damage, cause, reporter type and target service.

Everything is two SQL GROUP BYs on the store's denormalised columns (``reports.month``,
``counted``, ``actual_damage`` and ``report_terms``), over the fifteen months the
publication shows (five quarters back from the month's quarter, which also cover the
previous month, the year to date and the thirteen-month chart). Periods are then summed
in Python from those few rows, so a month over a million reports stays well under the
two seconds the center allows. Duplicates, test reports, drafts and rejects are not
counted (the ``counted`` column).

A report may carry several methods (or damages, causes): term counts are counted apart
from report counts and need not add up to them.
"""

from __future__ import annotations

import io
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from todokede.center import taxonomy
from todokede.center.months import months_between, parse_month, shift
from todokede.center.taxonomy import Lang

if TYPE_CHECKING:
    from todokede.center.store import Store

VOCABULARIES = ("method", "damage", "cause", "reporter_type", "target")


@dataclass(frozen=True)
class Count:
    n: int = 0
    actual: int = 0  # of those, with actual damage (実被害 yes)
    no: int = 0  # of those, without (実被害 no); the rest are unknown

    @property
    def unknown(self) -> int:
        """Reports whose actual damage nobody has stated."""
        return self.n - self.actual - self.no

    def __add__(self, other: Count) -> Count:
        return Count(self.n + other.n, self.actual + other.actual, self.no + other.no)

    def text(self, lang: Lang) -> str:
        """``3 (実被害 1)``: the way IPA's tables print a count."""
        word = "実被害" if lang == "ja" else "damage"
        return f"{self.n:,} ({word} {self.actual:,})"


@dataclass
class PeriodStats:
    key: str  # "1997-09", "1997-Q3", "1997"
    first: str  # first month, "YYYY-MM"
    last: str
    label_ja: str
    label_en: str
    reports: Count = field(default_factory=Count)
    terms: dict[str, dict[str, Count]] = field(default_factory=dict)

    def label(self, lang: Lang) -> str:
        return self.label_ja if lang == "ja" else self.label_en

    def term(self, vocabulary: str, code: str) -> Count:
        return self.terms.get(vocabulary, {}).get(code, Count())


@dataclass
class MonthStats:
    month: str
    this: PeriodStats
    previous: PeriodStats
    quarters: list[PeriodStats]  # five, oldest first, the last holding ``month``
    year: PeriodStats  # January to ``month``
    series: list[tuple[str, Count]]  # thirteen months ending with ``month`` (the chart)

    @property
    def periods(self) -> list[PeriodStats]:
        """The columns of the publication's tables, in order."""
        return [self.this, self.previous, *self.quarters, self.year]

    def codes(self, vocabulary: str) -> list[str]:
        """The codes of a vocabulary that appear in any period, in taxonomy order."""
        seen = {code for p in self.periods for code in p.terms.get(vocabulary, {})}
        return [c for c in taxonomy.codes(vocabulary) if c in seen] + sorted(
            seen - set(taxonomy.codes(vocabulary))
        )


def _month_label(month: str) -> tuple[str, str]:
    year, mon = parse_month(month)
    return f"{year}年{mon}月", f"{_EN_MONTHS[mon - 1]} {year}"


_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _quarter(year: int, q: int) -> tuple[str, str, str, str, str]:
    first = f"{year:04d}-{3 * q - 2:02d}"
    last = f"{year:04d}-{3 * q:02d}"
    ja = f"{year}年{3 * q - 2}-{3 * q}月"
    en = f"{_EN_MONTHS[3 * q - 3]}-{_EN_MONTHS[3 * q - 1]} {year}"
    return f"{year}-Q{q}", first, last, ja, en


def _sum(key: str, first: str, last: str, ja: str, en: str, rows: _Rows) -> PeriodStats:
    period = PeriodStats(key=key, first=first, last=last, label_ja=ja, label_en=en)
    terms: dict[str, dict[str, Count]] = defaultdict(dict)
    for month in months_between(first, last):
        period.reports = period.reports + rows.reports.get(month, Count())
        for (vocabulary, code), count in rows.terms.get(month, {}).items():
            terms[vocabulary][code] = terms[vocabulary].get(code, Count()) + count
    period.terms = dict(terms)
    return period


@dataclass
class _Rows:
    reports: dict[str, Count]
    terms: dict[str, dict[tuple[str, str], Count]]


def _query(store: Store, first: str, last: str) -> _Rows:
    by_month, by_term = store.month_tallies(months_between(first, last))
    rows = _Rows(reports={}, terms=defaultdict(dict))
    for month, tally in by_month.items():
        rows.reports[month] = Count(*tally)
    for month, terms in by_term.items():
        rows.terms[month] = {key: Count(*tally) for key, tally in terms.items()}
    return rows


def month_stats(store: Store, month: str) -> MonthStats:
    """The statistics the publication of ``month`` shows."""
    year, mon = parse_month(month)
    q = (mon - 1) // 3 + 1
    quarter_keys = []
    y, qq = year, q
    for _ in range(5):
        quarter_keys.append((y, qq))
        y, qq = (y, qq - 1) if qq > 1 else (y - 1, 4)
    quarter_keys.reverse()
    first = _quarter(*quarter_keys[0])[1]
    rows = _query(store, min(first, shift(month, -12)), month)

    ja, en = _month_label(month)
    this = _sum(month, month, month, ja, en, rows)
    prev = shift(month, -1)
    pja, pen = _month_label(prev)
    previous = _sum(prev, prev, prev, f"前月({pja})", f"Previous month ({pen})", rows)
    quarters = []
    for yq in quarter_keys:
        key, qfirst, qlast, qja, qen = _quarter(*yq)
        quarters.append(_sum(key, qfirst, min(qlast, month), qja, qen, rows))
    ytd = _sum(
        str(year),
        f"{year:04d}-01",
        month,
        f"{year}年1-{mon}月累計",
        f"{year} to {_EN_MONTHS[mon - 1]}",
        rows,
    )
    series = [(m, rows.reports.get(m, Count())) for m in months_between(shift(month, -12), month)]
    return MonthStats(month, this, previous, quarters, ytd, series)


# -- charts -------------------------------------------------------------------------------

# Matplotlib's settings (rc_context: the CJK font) are process-global, so two charts drawn
# at once in two threads would swap fonts under each other: callers draw one at a time
# under this lock (reentrant: taking a snapshot draws the publication's charts under it).
CHARTS = threading.RLock()

# Japanese labels need a CJK font: the first of these that is installed is used.
CJK_FONTS = ["Noto Sans CJK JP", "IPAexGothic", "IPAGothic", "IPAPGothic", "DejaVu Sans"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # imported late: the CLI starts faster without it

    return Figure(figsize=(width, height), dpi=100)


def _svg(fig: Any, salt: str) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    # Inline in HTML: drop the XML prologue and the comments (they repeat the labels);
    # ids stay unique through the salt.
    text = re.sub(
        r"<!--.*?-->|<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S
    )
    return text


def _rc() -> Any:
    import matplotlib

    return matplotlib.rc_context(
        {
            "font.family": "sans-serif",
            "font.sans-serif": CJK_FONTS,
            "font.size": 9,
            "axes.unicode_minus": False,
        }
    )


def monthly_chart_svg(stats: MonthStats, lang: Lang) -> str:
    """Bars of reports per month for the thirteen months, the damaged part darker."""
    with _rc():
        fig = _figure(6.4, 2.6)
        ax = fig.add_subplot()
        labels = [
            f"{int(m[5:])}月" if lang == "ja" else _EN_MONTHS[int(m[5:]) - 1]
            for m, _ in stats.series
        ]
        labels = [
            f"{lab}\n{m[:4]}" if (i == 0 or m.endswith("-01")) else lab
            for i, (lab, (m, _)) in enumerate(zip(labels, stats.series, strict=True))
        ]
        totals = [c.n for _, c in stats.series]
        damaged = [c.actual for _, c in stats.series]
        x = list(range(len(totals)))
        ax.bar(x, totals, color="#8fb3d9", label="届出件数" if lang == "ja" else "Reports")
        ax.bar(
            x,
            damaged,
            color="#1f4e79",
            label="うち実被害あり" if lang == "ja" else "With actual damage",
        )
        ax.set_xticks(x, labels)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, loc="upper left")
        return _svg(fig, "monthly")


def methods_chart_svg(stats: MonthStats, lang: Lang, period: PeriodStats | None = None) -> str:
    """Horizontal bars of the methods reported in a period (default: the year to date)."""
    period = period or stats.year
    codes = [c for c in stats.codes("method") if period.term("method", c).n]
    with _rc():
        fig = _figure(6.4, max(1.4, 0.32 * len(codes) + 0.9))
        ax = fig.add_subplot()
        names = [taxonomy.label("method", c, lang) if c in taxonomy.METHODS else c for c in codes]
        values = [period.term("method", c).n for c in codes]
        ax.barh(list(range(len(codes))), values, color="#1f4e79")
        ax.set_yticks(list(range(len(codes))), names)
        ax.invert_yaxis()
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.spines[["top", "right"]].set_visible(False)
        if not codes:
            ax.text(
                0.5,
                0.5,
                "届出なし" if lang == "ja" else "No reports",
                ha="center",
                transform=ax.transAxes,
            )
        return _svg(fig, "methods")

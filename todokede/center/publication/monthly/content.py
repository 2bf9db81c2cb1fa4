"""What a month's publication says: its new-type cases with notes, its table, its statistics."""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

from todokede.center import taxonomy
from todokede.center.intake.schema import StoredReport
from todokede.center.months import parse_month
from todokede.center.publication import published as published_month
from todokede.center.publication.advisories import advisory_for
from todokede.center.publication.figures import figure_for
from todokede.center.publication.monthly.model import (
    LABELS,
    LANGS,
    Case,
    Publication,
    Publisher,
    Row,
    Segment,
)
from todokede.center.publication.novelty import Novelty, month_novelty
from todokede.center.publication.stats import (
    MonthStats,
    methods_chart_svg,
    month_stats,
    monthly_chart_svg,
)
from todokede.center.publication.titles import public_narrative, public_title
from todokede.center.taxonomy import Lang
from todokede.errors import InputError

if TYPE_CHECKING:
    from todokede.center.store import Store

# Glossary notes (注1, 注2, ...): a term is explained where a case's narrative first uses it.
# (ja pattern, ja text, en pattern, en text)
GLOSSARY: tuple[tuple[str, str, str, str], ...] = (
    (
        r"tcp_wrappers?",
        "外部ホストからサーバプログラムへの接続を監視したり規制するソフトウェア。",
        r"tcp_wrappers?",
        "Software that monitors and restricts connections from outside hosts to server programs.",
    ),
    (
        r"IMAP",
        "電子メールサーバとPC間とで電子メールを転送するプロトコル。",
        r"IMAP",
        "The protocol that transfers e-mail between a mail server and a PC.",
    ),
    (
        r"swap領域",
        "コンピュータが使用するディスク上の作業領域。",
        r"swap area",
        "The working area on disk used by a computer.",
    ),
    (
        r"sendmail",
        "広く使われている電子メール配送プログラム。",
        r"sendmail",
        "A widely used mail delivery program.",
    ),
    (
        r"電子メール爆撃",
        "同一の宛先に大量の電子メールを送りつける行為。",
        r"mail bomb(?:ing)?",
        "Sending a flood of e-mail to one address.",
    ),
)


def era(year: int, month: int) -> str:
    """The Japanese era name of a month: 1997-09 -> 平成9年."""
    if (year, month) >= (2019, 5):
        name, first = "令和", 2019
    elif year >= 1989:
        name, first = "平成", 1989
    else:
        name, first = "昭和", 1926
    n = year - first + 1
    return f"{name}{'元' if n == 1 else n}年"


_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _annotate(
    paragraphs: list[str], lang: Lang, used: dict[str, int]
) -> tuple[list[list[Segment]], list[tuple[int, str]]]:
    """Split paragraphs into segments with note markers after each term's first use."""
    notes: list[tuple[int, str]] = []
    out: list[list[Segment]] = []
    for paragraph in paragraphs:
        segments: list[Segment] = []
        rest = paragraph
        while True:
            best: tuple[int, int, str, str] | None = None
            for pat_ja, text_ja, pat_en, text_en in GLOSSARY:
                pattern, text = (pat_ja, text_ja) if lang == "ja" else (pat_en, text_en)
                if pattern in used:
                    continue
                m = re.search(rf"(?<![A-Za-z0-9_]){pattern}(?![A-Za-z0-9_])", rest)
                if m and (best is None or m.start() < best[0]):
                    best = (m.start(), m.end(), pattern, text)
            if best is None:
                break
            end = best[1]
            # "IMAP(Internet Message Access Protocol)注2)": the note follows the gloss.
            start = end + (len(rest[end:]) - len(rest[end:].lstrip(" ")))
            if start < len(rest) and rest[start] in "(（":
                close = min(
                    (i for i in (rest.find(")", start), rest.find("）", start)) if i >= 0),
                    default=-1,
                )
                if close >= 0:
                    end = close + 1
            number = len(used) + 1
            used[best[2]] = number
            notes.append((number, best[3]))
            segments.append(Segment(rest[:end], number))
            rest = rest[end:]
        segments.append(Segment(rest))
        out.append(segments)
    return out, notes


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n|\n", text) if p.strip()]


def _damage_text(report: StoredReport, lang: Lang) -> str:
    ja = lang == "ja"
    actual = report.effective_actual_damage()
    if actual is False:
        return "実被害なし(未遂)" if ja else "No actual damage (attempt)"
    codes = [c for c in report.effective_damage() if c != "none"]
    sep = "、" if ja else ", "
    if actual is None:
        # Unknown is never "no damage": the kinds reported, and that it is not known.
        known = sep.join(taxonomy.label("damage", c, lang) for c in codes)
        if not known:
            return "実被害不明" if ja else "Actual damage unknown"
        return f"{known}(実被害不明)" if ja else f"{known} (actual damage unknown)"
    if not codes:
        return "実被害あり" if ja else "Actual damage"
    return sep.join(taxonomy.label("damage", c, lang) for c in codes)


ACTUAL_LABELS = {"yes": ("あり", "Yes"), "no": ("なし", "No"), "unknown": ("不明", "Unknown")}


def _actual_lines(stats: MonthStats, lang: Lang) -> list[tuple[str, list[str]]]:
    """The reports of each period by 実被害: yes, no, unknown."""
    pick = 0 if lang == "ja" else 1
    return [
        (ACTUAL_LABELS[key][pick], [f"{getattr(p.reports, attr):,}" for p in stats.periods])
        for key, attr in (("yes", "actual"), ("no", "no"), ("unknown", "unknown"))
    ]


MAX_ROWS = 500  # the attachment lists at most this many reports, the new types first


def build(
    store: Store,
    month: str,
    lang: Lang,
    *,
    publisher: Publisher | None = None,
    max_rows: int = MAX_ROWS,
    published: bool | None = None,
) -> Publication:
    """Everything the publication of ``month`` says, in ``lang``. ``published`` says
    whether it is marked as a draft (default: unless the month is published)."""
    if lang not in LANGS:
        raise InputError(f"unknown language {lang!r} (allowed: ja, en)", field="lang")
    year, mon = parse_month(month)
    month_reports = published_month.month_reports(store, month)
    novelty = month_novelty(store, month, month_reports)
    stats = month_stats(store, month)
    period = (
        f"{era(year, mon)}({year}年){mon}月" if lang == "ja" else f"{_EN_MONTHS[mon - 1]} {year}"
    )
    title = (
        f"コンピュータ不正アクセス被害の届出状況 — {period}"
        if lang == "ja"
        else f"Reports of unauthorized computer access — {period}"
    )
    return Publication(
        month=month,
        lang=lang,
        published=month in store.published_months() if published is None else published,
        title=title,
        period=period,
        publisher=publisher or Publisher(),
        count=stats.this.reports.n,  # every counted report; the rows list the accepted
        cases=_cases(month_reports, novelty, lang),
        rows=_rows(month_reports, novelty, lang, max_rows),
        stats=stats,
        charts=_charts(stats, lang),
        vocabularies=_vocabularies(stats, lang),
        labels=LABELS[lang],
    )


def _cases(reports: list[StoredReport], novelty: dict[int, Novelty], lang: Lang) -> list[Case]:
    """The month's reports of a new type, each told with its figure, notes and advisory."""
    used: dict[str, int] = {}
    cases: list[Case] = []
    for report in reports:
        nov = novelty[report.id]
        if not nov.new:
            continue
        methods, targets = report.effective_methods(), report.effective_targets()
        advisory = advisory_for(methods, targets)
        heading = advisory.case(lang) if advisory else public_title(report, lang)
        chosen = report.triage.published_title if lang == "ja" else report.triage.published_title_en
        paragraphs, notes = _annotate(_paragraphs(public_narrative(report, lang)), lang, used)
        number = len(cases) + 1
        cases.append(
            Case(
                number=number,
                report_id=report.id,
                heading=chosen or heading,
                paragraphs=paragraphs,
                figure=figure_for(report, lang),
                figure_number=number,
                notes=notes,
                advisory=advisory,
                countermeasure=list(advisory.text(lang)) if advisory else [],
                references=list(advisory.references) if advisory else [],
                novelty=nov,
                reason=nov.reason(lang),
            )
        )
    return cases


def _rows(
    reports: list[StoredReport], novelty: dict[int, Novelty], lang: Lang, max_rows: int
) -> list[Row]:
    # A huge month cannot be listed whole: keep the new types, then the earliest others.
    shown = sorted(reports, key=lambda r: not novelty[r.id].new)[:max_rows]
    shown.sort(key=lambda r: (r.report.received or date.min, r.id))
    rows = []
    for report in shown:
        received = report.report.received or date.min
        advisory = advisory_for(report.effective_methods(), report.effective_targets())
        rows.append(
            Row(
                received=received,
                day=f"{received.month}/{received.day}",
                summary=public_title(report, lang),
                damage=_damage_text(report, lang),
                measures=advisory.short(lang) if advisory else "",
                new=novelty[report.id].new,
            )
        )
    return rows


def _vocabularies(
    stats: MonthStats, lang: Lang
) -> list[tuple[str, str, list[tuple[str, list[str]]]]]:
    """The statistics tables, one per vocabulary: (vocabulary, title, lines)."""
    ja = lang == "ja"
    vocabularies = []
    for vocabulary in ("method", "damage", "cause", "reporter_type"):
        lines = [
            (
                taxonomy.label(vocabulary, code, lang)
                if code in taxonomy.VOCABULARIES[vocabulary]
                else code,
                [p.term(vocabulary, code).text(lang) for p in stats.periods],
            )
            for code in stats.codes(vocabulary)
        ]
        ja_name, en_name = taxonomy.VOCABULARY_LABELS[vocabulary]
        title = (
            (ja_name if ja_name.endswith("別") else f"{ja_name}別")
            if ja
            else f"By {en_name.lower()}"
        )
        vocabularies.append((vocabulary, title, lines))
    vocabularies.append(
        (
            "actual_damage",
            "実被害の有無別" if ja else "By actual damage",
            _actual_lines(stats, lang),
        )
    )
    return vocabularies


def _charts(stats: MonthStats, lang: Lang) -> list[tuple[str, str]]:
    ja = lang == "ja"
    return [
        (
            "月別届出件数(過去13か月)" if ja else "Reports per month (13 months)",
            monthly_chart_svg(stats, lang),
        ),
        (
            f"手口別件数({stats.year.label(lang)})"
            if ja
            else f"Reports by method ({stats.year.label(lang)})",
            methods_chart_svg(stats, lang),
        ),
    ]

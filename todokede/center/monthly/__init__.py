"""The monthly publication (月次の届出状況): what came in, which cases were of a new type,
what happened in each and what everyone should do, then the attachment (別紙) with the
month's table and the statistics.

``build(store, month, lang)`` gathers a ``Publication`` (plain values); ``render`` turns it
into HTML (one self-contained file: inline CSS, inline SVG), PDF (WeasyPrint, Japanese
fonts from the system) or Markdown (text and tables; the figures become one-line text
flows and the charts are left out: their numbers are in the tables).

Only public material goes in: classification codes, counts, dates, the analyst's edited
text and narratives drafted from codes. Never the reporter's name, organisation, e-mail,
addresses of hosts, or the reporter's own free text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import jinja2

from todokede.center import taxonomy
from todokede.center.advisories import Advisory, Reference, advisory_for
from todokede.center.draft import public_narrative, public_title
from todokede.center.figures import Figure, figure_for
from todokede.center.novelty import Novelty, month_novelty
from todokede.center.schema import StoredReport
from todokede.center.stats import (
    MonthStats,
    methods_chart_svg,
    month_stats,
    monthly_chart_svg,
    parse_month,
    shift,
)
from todokede.center.taxonomy import Lang
from todokede.errors import InputError

if TYPE_CHECKING:
    from todokede.center.store import Store

Format = Literal["html", "pdf", "md"]
FORMATS: tuple[str, ...] = ("html", "pdf", "md")
LANGS: tuple[str, ...] = ("ja", "en")
HERE = Path(__file__).parent


@dataclass(frozen=True)
class Publisher:
    """Who publishes: the scheme paragraph, the closing paragraph and the contact."""

    name_ja: str = "IPA(情報処理振興事業協会)"
    name_en: str = "IPA (Information-technology Promotion Agency, Japan)"
    office_ja: str = "セキュリティセンター不正アクセス対策室"
    office_en: str = "Security Center, Office of Countermeasures against Unauthorized Access"
    email: str = "isec-info@ipa.go.jp"
    scheme_ja: str = (
        "コンピュータ不正アクセス被害の届出制度は、通商産業省のコンピュータ不正アクセス対策基準"
        "(平成8年8月8日付通商産業省告示第362号)に基づき、平成8年8月にスタートした制度であり、"
        "同基準において、コンピュータ不正アクセスの被害を受けた者は、被害の拡大と再発を防ぐために"
        "必要な情報をIPAに届出ることとされている。"
    )
    scheme_en: str = (
        "The reporting scheme started in August 1996 under MITI's Standards for "
        "Countermeasures against Unauthorized Computer Access (MITI Notice No. 362 of 8 August "
        "1996). Under those standards, anyone damaged by unauthorized computer access is to "
        "report to IPA the information needed to prevent the damage from spreading and recurring."
    )
    closing_ja: str = (
        "IPAでは皆様方から届け出された不正アクセス被害について原因分析を行い、当協会内に設置した"
        "コンピュータ不正アクセス対策委員会の協力のもと対策を策定していきます。策定した対策は"
        "マスメディア等の協力を得て皆様方に広報するとともに今後の国の施策に反映して行きます。"
        "これからもコンピュータ不正アクセス被害の届け出にご協力をお願いします。"
    )
    closing_en: str = (
        "IPA analyses the causes of the reported damage and, with the cooperation of its "
        "committee on countermeasures against unauthorized computer access, draws up "
        "countermeasures. These are published with the cooperation of the mass media and "
        "reflected in national policy. Please continue to report damage from unauthorized "
        "computer access."
    )


# Glossary notes (注1, 注2, ...): a term is explained where a case's narrative first uses it.
# (pattern, ja term, ja text, en pattern, en text)
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


@dataclass(frozen=True)
class Segment:
    text: str
    note: int | None = None  # a glossary note marker follows the text


@dataclass
class Case:
    number: int
    report_id: int
    heading: str
    paragraphs: list[list[Segment]]
    figure: Figure
    figure_number: int
    notes: list[tuple[int, str]]  # (number, explanation)
    advisory: Advisory | None
    countermeasure: list[str]
    references: list[Reference]
    novelty: Novelty
    reason: str


@dataclass
class Row:
    received: date
    day: str  # "9/17"
    summary: str
    damage: str
    measures: str
    new: bool


@dataclass
class Publication:
    month: str
    lang: Lang
    published: bool
    title: str
    period: str  # "平成9年(1997年)9月" / "September 1997"
    publisher: Publisher
    count: int
    cases: list[Case]
    rows: list[Row]  # at most ``max_rows``: ``count - len(rows)`` are not listed
    stats: MonthStats
    charts: list[tuple[str, str]] = field(default_factory=list)  # (caption, svg)
    vocabularies: list[tuple[str, str, list[tuple[str, list[str]]]]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


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
    if not report.effective_actual_damage():
        return "実被害なし(未遂)" if ja else "No actual damage (attempt)"
    codes = [c for c in report.effective_damage() if c != "none"]
    sep = "、" if ja else ", "
    if not codes:
        return "実被害あり" if ja else "Actual damage"
    return sep.join(taxonomy.label("damage", c, lang) for c in codes)


def _month_reports(store: Store, month: str) -> list[StoredReport]:
    year, mon = parse_month(month)
    nyear, nmon = parse_month(shift(month, 1))
    found = store.iter_reports(
        received_from=date(year, mon, 1), received_before=date(nyear, nmon, 1)
    )
    return sorted(
        (r for r in found if r.counted), key=lambda r: (r.report.received or date.min, r.id)
    )


LABELS = {
    "ja": {
        "attachment": "別紙",
        "received": "届出年月日",
        "summary": "届出概要",
        "damage": "被害内容",
        "measures": "対策",
        "countermeasures": "対策",
        "figure": "図",
        "see_figure": "参照",
        "note": "注",
        "references": "参照",
        "why_new": "新しいタイプと判断した理由",
        "new_mark": "* 過去の事例とタイプの異なるもの",
        "stats": "届出の統計",
        "reports": "届出件数",
        "contact": "問い合わせ先",
        "draft": "下書き(この月はまだ公表されていません)",
        "stats_note": (
            "テスト・重複の届出は含まない。一つの届出が複数の手口・被害に該当する場合は"
            "それぞれに計上するため、内訳の合計は届出件数と一致しない。"
        ),
        "charts": "グラフ",
        "charts_md": "(グラフはHTML版・PDF版に掲載。数値は上の表のとおり。)",
        "no_new": "過去の事例とタイプの異なる届出はなかった。",
        "none": "なし",
        "more": "ほか{n:,}件の届出は一覧を省略した(統計には含む)。",
    },
    "en": {
        "attachment": "Attachment",
        "received": "Received",
        "summary": "Summary",
        "damage": "Damage",
        "measures": "Countermeasures",
        "countermeasures": "Countermeasures",
        "figure": "Figure",
        "see_figure": "see",
        "note": "Note",
        "references": "See",
        "why_new": "Why this is a new type",
        "new_mark": "* of a type different from past cases",
        "stats": "Statistics",
        "reports": "Reports",
        "contact": "Contact",
        "draft": "Draft (this month has not been published yet)",
        "stats_note": (
            "Test and duplicate reports are not counted. A report with several methods or "
            "kinds of damage counts under each, so the breakdowns need not add up to the "
            "number of reports."
        ),
        "charts": "Charts",
        "charts_md": (
            "(The charts are in the HTML and PDF editions; their numbers are in the tables above.)"
        ),
        "no_new": "None of them was of a type different from past cases.",
        "none": "None",
        "more": "{n:,} more reports are not listed (the statistics include them).",
    },
}


MAX_ROWS = 500  # the attachment lists at most this many reports, the new types first


def build(
    store: Store,
    month: str,
    lang: Lang,
    *,
    publisher: Publisher | None = None,
    max_rows: int = MAX_ROWS,
) -> Publication:
    """Everything the publication of ``month`` says, in ``lang``."""
    if lang not in LANGS:
        raise InputError(f"unknown language {lang!r} (allowed: ja, en)", field="lang")
    year, mon = parse_month(month)
    publisher = publisher or Publisher()
    ja = lang == "ja"
    month_reports = _month_reports(store, month)
    novelty = month_novelty(store, month, month_reports)
    used: dict[str, int] = {}
    cases: list[Case] = []
    for report in month_reports:
        nov = novelty[report.id]
        if not nov.new:
            continue
        methods, targets = report.effective_methods(), report.report.targets
        advisory = advisory_for(methods, targets)
        heading = advisory.case(lang) if advisory else public_title(report, lang)
        chosen = report.triage.published_title if ja else report.triage.published_title_en
        heading = chosen or heading
        paragraphs, notes = _annotate(_paragraphs(public_narrative(report, lang)), lang, used)
        number = len(cases) + 1
        cases.append(
            Case(
                number=number,
                report_id=report.id,
                heading=heading,
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
    rows = []
    # A huge month cannot be listed whole: keep the new types, then the earliest others.
    shown = sorted(month_reports, key=lambda r: not novelty[r.id].new)[:max_rows]
    shown.sort(key=lambda r: (r.report.received or date.min, r.id))
    for report in shown:
        received = report.report.received or date.min
        advisory = advisory_for(report.effective_methods(), report.report.targets)
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
    stats = month_stats(store, month)
    vocabularies = []
    for vocabulary in ("method", "damage", "cause", "reporter_type"):
        codes = stats.codes(vocabulary)
        lines = [
            (
                taxonomy.label(vocabulary, code, lang)
                if code in taxonomy.VOCABULARIES[vocabulary]
                else code,
                [p.term(vocabulary, code).text(lang) for p in stats.periods],
            )
            for code in codes
        ]
        ja_name, en_name = taxonomy.VOCABULARY_LABELS[vocabulary]
        title = (
            (ja_name if ja_name.endswith("別") else f"{ja_name}別")
            if ja
            else f"By {en_name.lower()}"
        )
        vocabularies.append((vocabulary, title, lines))
    charts = [
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
    period = f"{era(year, mon)}({year}年){mon}月" if ja else f"{_EN_MONTHS[mon - 1]} {year}"
    title = (
        f"コンピュータ不正アクセス被害の届出状況 — {period}"
        if ja
        else f"Reports of unauthorized computer access — {period}"
    )
    return Publication(
        month=month,
        lang=lang,
        published=month in store.published_months(),
        title=title,
        period=period,
        publisher=publisher,
        count=len(month_reports),
        cases=cases,
        rows=rows,
        stats=stats,
        charts=charts,
        vocabularies=vocabularies,
        labels=LABELS[lang],
    )


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True, default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


def _md_cell(value: object) -> str:
    """Markdown-safe text: pipes, markup and line breaks from report data cannot break out."""
    text = (
        str(value)
        .replace("\n", " ")
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )
    return re.sub(r"([\\`*\[\]|])", r"\\\1", text)


_MD_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    # Markdown, not HTML: report text is escaped for Markdown by the ``md`` filter instead.
    autoescape=False,  # noqa: S701
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
_MD_ENV.filters["md"] = _md_cell


def to_html(pub: Publication, *, for_pdf: bool = False) -> str:
    css = (HERE / "templates" / "style.css").read_text(encoding="utf-8")
    return _ENV.get_template("publication.html.j2").render(pub=pub, css=css, for_pdf=for_pdf)


def to_markdown(pub: Publication) -> str:
    return _MD_ENV.get_template("publication.md.j2").render(pub=pub)


def to_pdf(pub: Publication) -> bytes:
    import logging

    from weasyprint import HTML  # imported late: slow to import, only the PDF needs it

    # WeasyPrint logs every unsupported CSS property at WARNING; the publication's CSS is ours.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    data: bytes = HTML(string=to_html(pub, for_pdf=True), base_url=str(HERE)).write_pdf()
    return data


def render(
    store: Store,
    month: str,
    *,
    lang: Lang = "ja",
    fmt: Format = "html",
    publisher: Publisher | None = None,
) -> bytes:
    """The publication of ``month`` as bytes (UTF-8 for HTML and Markdown)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (allowed: html, pdf, md)", field="format")
    return encode(build(store, month, lang, publisher=publisher), fmt)


def encode(pub: Publication, fmt: Format) -> bytes:
    """A built publication in one format (build once, encode in several)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (allowed: html, pdf, md)", field="format")
    if fmt == "pdf":
        return to_pdf(pub)
    if fmt == "md":
        return to_markdown(pub).encode("utf-8")
    return to_html(pub).encode("utf-8")

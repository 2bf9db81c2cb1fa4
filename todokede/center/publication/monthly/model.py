"""The publication as plain values: who publishes, the cases, the table rows, the labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from todokede.center.publication.advisories import Advisory, Reference
from todokede.center.publication.figures import Figure
from todokede.center.publication.novelty import Novelty
from todokede.center.publication.stats import MonthStats
from todokede.center.taxonomy import Lang

Format = Literal["html", "pdf", "md"]
FORMATS: tuple[str, ...] = ("html", "pdf", "md")
LANGS: tuple[str, ...] = ("ja", "en")


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

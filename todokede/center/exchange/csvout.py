"""CSV export: one row per report, fixed columns (documented in docs/exchange.md).

``lang=None`` writes machine-readable column keys and taxonomy codes; ``"ja"`` or
``"en"`` writes the column headings and the category values as labels. Spreadsheets
run cells that begin with ``= + - @`` (or a tab or carriage return) as formulas, so such
cells get a leading ``'`` (OWASP's CSV-injection advice). ``bom=True`` starts the file
with a UTF-8 byte-order mark so Excel reads the Japanese text right.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

from todokede.center import taxonomy
from todokede.center.intake.schema import StoredReport
from todokede.center.publication.titles import public_narrative, public_title

Lang = Literal["ja", "en"]

# key, Japanese heading, English heading. Order is part of the format: add at the end.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("id", "番号", "ID"),
    ("received", "届出年月日", "Received"),
    ("status", "状態", "Status"),
    ("language", "言語", "Language"),
    ("title", "届出概要", "Summary"),
    ("discovered", "発見年月日", "Discovered"),
    ("period_start", "発生期間(開始)", "Period start"),
    ("period_end", "発生期間(終了)", "Period end"),
    ("methods", "手口", "Methods"),
    ("damage", "被害内容", "Damage"),
    ("actual_damage", "実被害", "Actual damage"),
    ("causes", "原因", "Causes"),
    ("reporter_type", "届出者種別", "Reporter type"),
    ("discovery", "発見契機", "How it was found"),
    ("devices", "被害を受けた機器", "Affected devices"),
    ("sources", "攻撃元", "Sources"),
    ("targets", "対象サービス", "Target services"),
    ("attempts", "回数", "Attempts"),
    ("narrative", "被害の状況", "Narrative"),
    ("countermeasures", "対策", "Countermeasures"),
    ("counted", "統計対象", "Counted"),
    ("tlp", "TLP", "TLP"),
)
# Only with personal=True (an admin's export): the reporter's contact details.
PERSONAL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("reporter_organisation", "届出者(組織)", "Reporter organisation"),
    ("reporter_name", "届出者(氏名)", "Reporter name"),
    ("reporter_email", "届出者(E-mail)", "Reporter e-mail"),
    ("reporter_phone", "届出者(TEL)", "Reporter phone"),
    ("reporter_address", "届出者(住所)", "Reporter address"),
)
SEPARATOR = "; "
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """The cell as text a spreadsheet will not evaluate."""
    return "'" + value if value.startswith(_FORMULA) else value


def _yes_no(value: bool | None, lang: Lang | None) -> str:
    if value is None:  # unknown: an empty cell for machines, the word for people
        return {None: "", "ja": "不明", "en": "unknown"}[lang]
    if lang == "ja":
        return "有" if value else "無"
    if lang == "en":
        return "yes" if value else "no"
    return "true" if value else "false"


def row(stored: StoredReport, *, lang: Lang | None = None, personal: bool = False) -> list[str]:
    """The report's cells, in the order of ``COLUMNS`` (+ ``PERSONAL_COLUMNS``)."""
    rep = stored.report

    def terms(vocabulary: str, codes: Iterable[str]) -> str:
        if lang is None:
            return SEPARATOR.join(codes)
        return SEPARATOR.join(taxonomy.label(vocabulary, c, lang) for c in codes)

    def one(vocabulary: str, code: str | None) -> str:
        return terms(vocabulary, [code] if code else [])

    # Without personal data the file goes to partner centers (TLP:AMBER): public text only,
    # target services as target codes; the reporter's own words stay in the center.
    public: Lang = lang or ("en" if rep.language == "en" else "ja")
    title = rep.title if personal else public_title(stored, public)
    narrative = rep.narrative if personal else public_narrative(stored, public)
    targets = (
        SEPARATOR.join(rep.targets) if personal else terms("target", stored.effective_targets())
    )
    values: dict[str, str] = {
        "id": str(stored.id),
        "received": rep.received.isoformat() if rep.received else "",
        "status": stored.triage.status,
        "language": rep.language,
        "title": title or "",
        "discovered": rep.discovered.isoformat() if rep.discovered else "",
        "period_start": rep.period.start.isoformat() if rep.period and rep.period.start else "",
        "period_end": rep.period.end.isoformat() if rep.period and rep.period.end else "",
        "methods": terms("method", stored.effective_methods()),
        "damage": terms("damage", stored.effective_damage()),
        "actual_damage": _yes_no(stored.effective_actual_damage(), lang),
        "causes": terms("cause", stored.effective_causes()),
        "reporter_type": one("reporter_type", rep.reporter.type),
        "discovery": one("discovery", rep.discovery.how if rep.discovery else None),
        "devices": terms("device", [s.device for s in rep.systems if s.device]),
        "sources": SEPARATOR.join(rep.sources),
        "targets": targets,
        "attempts": "" if rep.attempts is None else str(rep.attempts),
        "narrative": narrative or "",
        "countermeasures": (rep.countermeasures or "") if personal else "",
        "counted": _yes_no(stored.counted, lang),
        "tlp": "TLP:RED" if personal else "TLP:AMBER",
    }
    if personal:
        r = rep.reporter
        values |= {
            "reporter_organisation": r.organisation or "",
            "reporter_name": r.name or "",
            "reporter_email": r.email or "",
            "reporter_phone": r.phone or "",
            "reporter_address": r.address or "",
        }
    return [safe_cell(values[key]) for key, _, _ in _columns(personal)]


def _columns(personal: bool) -> tuple[tuple[str, str, str], ...]:
    return COLUMNS + PERSONAL_COLUMNS if personal else COLUMNS


def header(*, lang: Lang | None = None, personal: bool = False) -> list[str]:
    pick: Callable[[tuple[str, str, str]], str] = {
        None: lambda c: c[0],
        "ja": lambda c: c[1],
        "en": lambda c: c[2],
    }[lang]
    return [pick(c) for c in _columns(personal)]


def iter_csv(
    reports: Iterable[StoredReport],
    *,
    lang: Lang | None = None,
    personal: bool = False,
    bom: bool = False,
) -> Iterator[bytes]:
    """The CSV in chunks (the header, then a chunk per 1,000 rows): exports of any size
    run in bounded memory."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header(lang=lang, personal=personal))
    pending = 0
    for stored in reports:
        writer.writerow(row(stored, lang=lang, personal=personal))
        pending += 1
        if pending == 1000:
            yield _take(out, bom)
            bom, pending = False, 0
    yield _take(out, bom)


def _take(out: io.StringIO, bom: bool) -> bytes:
    data = out.getvalue().encode("utf-8")
    out.seek(0)
    out.truncate()
    return b"\xef\xbb\xbf" + data if bom else data


def to_csv(
    reports: Iterable[StoredReport],
    *,
    lang: Lang | None = None,
    personal: bool = False,
    bom: bool = False,
) -> bytes:
    """The reports as CSV (RFC 4180, UTF-8, CRLF), with a header row."""
    return b"".join(iter_csv(reports, lang=lang, personal=personal, bom=bom))


def column_keys(personal: bool = False) -> Sequence[str]:
    return [c[0] for c in _columns(personal)]

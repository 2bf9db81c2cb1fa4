"""Novelty: which of a month's reports are "of a type different from past cases"
(過去の事例とタイプの異なるもの).

The rule. A report's *type* is the set of its (method, target service, damage) triples:
every effective method crossed with every target service (its target code, never the
service as the reporter wrote it) and every effective damage; a
missing target or damage is written ``-``. A report is of a **new type** when at least one
of its triples appears in no counted report of an earlier *published* month. So a
3,200-message mail bomb on an SMTP server that caused service lowering is not new when
April's mail bombs were classified the same way, while the first attack on an IMAP
server is new even though access probes on telnet were seen before. Reports of the same
month do not make each other old: the month's publication is the first to describe them.
A report without any method is not judged (not new) until an analyst classifies it.

Analysts can override: ``Triage.new_type`` True or False wins, with
``Triage.new_type_reason`` shown as the reason. The computed reason names the triples seen
for the first time.

The earlier triples come from one SQL query on ``report_terms`` (indexed by month).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import product
from typing import TYPE_CHECKING

from todokede.center import taxonomy
from todokede.center.intake.schema import StoredReport
from todokede.center.taxonomy import Lang

if TYPE_CHECKING:
    from todokede.center.store import Store

Triple = tuple[str, str, str]  # (method, target, damage)
NONE = "-"


def triples(report: StoredReport) -> set[Triple]:
    """The (method, target, damage) triples that make up a report's type."""
    methods = report.effective_methods()
    targets = report.effective_targets() or [NONE]
    damage = report.effective_damage() or [NONE]
    return set(product(methods, targets, damage))


def seen_before(store: Store, month: str) -> set[Triple]:
    """Every triple of a counted report in a published month before ``month`` (a
    withdrawn month is not published)."""
    months = [p for p in store.published_months() if p < month]
    return {
        (method, target or NONE, damage or NONE)
        for method, target, damage in store.term_triples(months)
    }


@dataclass(frozen=True)
class Novelty:
    report_id: int
    new: bool
    overridden: bool  # an analyst decided, not the rule
    first_time: list[Triple] = field(default_factory=list)  # sorted
    note: str | None = None  # the analyst's reason

    def reason(self, lang: Lang) -> str:
        """Why the report is (or is not) of a new type, in words."""
        ja = lang == "ja"
        if self.overridden:
            decided = "分析者の判断" if ja else "Analyst's decision"
            return f"{decided}: {self.note}" if self.note else decided
        if not self.first_time:
            return "過去の事例と同じタイプ" if ja else "A type seen in earlier reports"
        shown = [describe_triple(t, lang) for t in self.first_time[:3]]
        if len(self.first_time) > 3:
            more = len(self.first_time) - 3
            shown.append(f"ほか{more}件" if ja else f"and {more} more")
        combos = ("、" if ja else "; ").join(shown)
        return f"初めての組み合わせ: {combos}" if ja else f"First time: {combos}"


def describe_triple(triple: Triple, lang: Lang) -> str:
    method, target, damage = triple

    def name(vocabulary: str, code: str) -> str:
        if code == NONE:
            return "不明" if lang == "ja" else "unknown"
        terms = taxonomy.VOCABULARIES[vocabulary]
        if code in terms:
            return terms[code].label(lang)
        return "その他" if lang == "ja" else "other"  # never a code nobody vetted

    m, t, d = name("method", method), name("target", target), name("damage", damage)
    if lang == "ja":
        return f"手口「{m}」× 対象「{t}」× 被害「{d}」"
    return f"method “{m}” × target “{t}” × damage “{d}”"


def judge(report: StoredReport, earlier: set[Triple]) -> Novelty:
    """Novelty of one report against the triples seen in earlier published months."""
    t = report.triage
    first = sorted(triples(report) - earlier)
    if t.new_type is not None:
        return Novelty(report.id, t.new_type, True, first, t.new_type_reason)
    return Novelty(report.id, bool(report.effective_methods()) and bool(first), False, first)


def month_novelty(store: Store, month: str, reports: Iterable[StoredReport]) -> dict[int, Novelty]:
    """Novelty of each of ``reports`` (the month's counted reports), by report id."""
    earlier = seen_before(store, month)
    return {r.id: judge(r, earlier) for r in reports}

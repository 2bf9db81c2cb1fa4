"""A published month stays as it was published.

Publishing a month freezes a snapshot of it: its public rows (``published.contents``,
the one definition of what a published month lists), the cases as the public page shows
them (heading and summary in Japanese and English), its statistics, and the publication's
documents (HTML and Markdown in both languages, the HTML the PDF is made from, the two
charts). Every public view of the
month serves that snapshot, so late triage, new reports and backdating leave it unchanged
until an analyst publishes the month again: revision 2, 3, ... Withdrawing a month keeps
its record and shows a withdrawal notice instead.

Only a closed month can be published: not the current month, not a future one, and not
one before the scheme began (August 1996). ``take`` is the preview (exactly what would be
published, with its digest); ``publish`` with that digest refuses if anything changed
since.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from todokede.center.intake.schema import StoredReport
from todokede.center.months import parse_month
from todokede.center.publication.published import PublicReport, month_reports, public_report
from todokede.center.publication.stats import CHARTS, MonthStats, month_stats
from todokede.center.publication.titles import public_narrative, public_title
from todokede.center.store.publications import Revision
from todokede.center.taxonomy import Lang
from todokede.errors import Conflict, NotFound, Withdrawn

if TYPE_CHECKING:
    from todokede.center.store import Store

FIRST_MONTH = "1996-08"  # the reporting scheme started in August 1996
LANGS: tuple[Lang, ...] = ("ja", "en")
CHART_KINDS = ("monthly", "methods")


class PageCase(BaseModel):
    """A case as the public month page shows it."""

    received: date | None
    title: str
    title_en: str
    narrative: str
    narrative_en: str
    methods: list[str]
    damage: list[str]
    actual: bool | None  # 実被害: None is unknown

    def text(self, lang: Lang) -> tuple[str, str]:
        """(heading, summary) in ``lang``."""
        return (self.title, self.narrative) if lang == "ja" else (self.title_en, self.narrative_en)


class Snapshot(BaseModel):
    """What the public sees of a published month (stored as JSON)."""

    month: str
    reports: list[PublicReport]
    cases: list[PageCase]
    stats: MonthStats

    @property
    def with_actual_damage(self) -> int:
        return sum(r.actual_damage is True for r in self.reports)

    @property
    def without_actual_damage(self) -> int:
        return sum(r.actual_damage is False for r in self.reports)

    @property
    def actual_damage_unknown(self) -> int:
        return sum(r.actual_damage is None for r in self.reports)


@dataclass(frozen=True)
class Taken:
    """A snapshot taken now (the preview), ready to store."""

    snapshot: Snapshot
    text: str  # the snapshot as stored
    files: dict[str, bytes]
    digest: str


@dataclass(frozen=True)
class Frozen:
    """A month's publication as served: its latest revision and that revision's snapshot."""

    revision: Revision
    snapshot: Snapshot


def check_month(month: str, today: date | None = None) -> str:
    """``month`` if it may be published on ``today``: closed, past, not before the scheme.
    A well-formed month the calendar refuses is a Conflict (409 on the API)."""
    parse_month(month)
    day = today or datetime.now(UTC).date()
    current = f"{day.year:04d}-{day.month:02d}"
    if month < FIRST_MONTH:
        raise Conflict(
            f"{month} is before the reporting scheme began ({FIRST_MONTH})", field="month"
        )
    if month == current:
        raise Conflict(
            f"{month} is still in progress: a month is published once it has closed",
            field="month",
        )
    if month > current:
        raise Conflict(f"{month} is in the future (today is {day.isoformat()})", field="month")
    return month


def page_case(sr: StoredReport) -> PageCase:
    return PageCase(
        received=sr.report.received,
        title=public_title(sr, "ja"),
        title_en=public_title(sr, "en"),
        narrative=public_narrative(sr, "ja"),
        narrative_en=public_narrative(sr, "en"),
        methods=sr.effective_methods(),
        damage=sr.effective_damage(),
        actual=sr.effective_actual_damage(),
    )


def take(store: Store, month: str) -> Taken:
    """The snapshot of ``month`` as it would be published now, with its documents."""
    from todokede.center.publication import monthly  # WeasyPrint and matplotlib stay lazy

    parse_month(month)
    reports = month_reports(store, month)
    files: dict[str, bytes] = {}
    with CHARTS:  # matplotlib's settings are process-global: one drawing at a time
        stats = month_stats(store, month)
        for lang in LANGS:
            pub = monthly.build(store, month, lang, published=True)
            files[f"{lang}.html"] = monthly.to_html(pub).encode()
            files[f"{lang}.pdf.html"] = monthly.to_html(pub, for_pdf=True).encode()
            files[f"{lang}.md"] = monthly.to_markdown(pub).encode()
            # The publication's two charts are the statistics page's (same order).
            for kind, (_caption, svg) in zip(CHART_KINDS, pub.charts, strict=True):
                files[f"{lang}.{kind}.svg"] = svg.encode()
    snapshot = Snapshot(
        month=month,
        reports=[public_report(sr) for sr in reports],
        cases=[page_case(sr) for sr in reports],
        stats=stats,
    )
    text = snapshot.model_dump_json()
    digest = hashlib.sha256(text.encode())
    for name in sorted(files):
        digest.update(f"\n{name}\n".encode() + hashlib.sha256(files[name]).digest())
    return Taken(snapshot, text, files, digest.hexdigest())


def publish(
    store: Store,
    month: str,
    *,
    actor: str,
    today: date | None = None,
    digest: str | None = None,
) -> Revision:
    """Publish ``month`` as its next revision. With ``digest`` (the preview's), refuse
    when what would be published now is not what was previewed."""
    check_month(month, today)
    taken = take(store, month)
    if digest is not None and digest != taken.digest:
        raise Conflict(
            f"{month} has changed since the preview: look at the preview again", field="digest"
        )
    return store.add_revision(
        month, snapshot=taken.text, digest=taken.digest, files=taken.files, actor=actor
    )


_CACHE: dict[tuple[str, int, str], Snapshot] = {}  # revisions never change: parse once
_CACHE_MAX = 64


def current(store: Store, month: str) -> Frozen | None:
    """The publication of ``month`` as served now (perhaps withdrawn), None if it was
    never published. A revision from before snapshots is frozen on first sight."""
    rev = store.revision(month)
    if rev is None:
        return None
    key = (rev.month, rev.revision, rev.digest or "")
    cached = _CACHE.get(key) if rev.digest else None
    if cached is not None:
        return Frozen(rev, cached)
    text = store.snapshot_text(rev.month, rev.revision)
    if text is None:
        taken = take(store, month)
        store.freeze(month, rev.revision, snapshot=taken.text, digest=taken.digest,
                     files=taken.files, actor="-")  # fmt: skip
        return current(store, month)
    snapshot = Snapshot.model_validate_json(text)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = snapshot
    return Frozen(rev, snapshot)


def published(store: Store, month: str) -> Frozen:
    """The publication of a month that is published now: NotFound otherwise (never
    published, or withdrawn: ``Withdrawn``)."""
    frozen = current(store, month)
    if frozen is None:
        raise NotFound(f"{month} is not published")
    rev = frozen.revision
    if rev.withdrawn_at is not None:
        raise Withdrawn(
            f"{month} was withdrawn on {rev.withdrawn_at.date().isoformat()}",
            month=month,
            at=rev.withdrawn_at,
            reason=rev.withdrawn_reason,
        )
    return frozen


_PDF = threading.Lock()  # a PDF takes seconds and much memory: render one at a time


def document(store: Store, rev: Revision, lang: Lang, fmt: Literal["html", "md", "pdf"]) -> bytes:
    """A document of a published revision, as published. The PDF is rendered from the
    stored HTML on its first request and kept with the revision."""
    name = f"{lang}.{fmt}"
    body = store.publication_file(rev.month, rev.revision, name)
    if body is not None:
        return body
    source = store.publication_file(rev.month, rev.revision, f"{lang}.pdf.html")
    if fmt != "pdf" or source is None:
        raise NotFound(f"no {name} in revision {rev.revision} of {rev.month}")
    from todokede.center.publication.monthly import html_to_pdf

    with _PDF:
        body = store.publication_file(rev.month, rev.revision, name)  # rendered meanwhile?
        if body is None:
            body = store.add_publication_file(
                rev.month, rev.revision, name, html_to_pdf(source.decode())
            )
    return body


def chart(store: Store, frozen: Frozen, lang: Lang, kind: str) -> str:
    """One of the month's two charts (SVG), as published."""
    rev = frozen.revision
    body = store.publication_file(rev.month, rev.revision, f"{lang}.{kind}.svg")
    if body is None:
        raise NotFound(f"no {kind} chart in revision {rev.revision} of {rev.month}")
    return body.decode()

"""What a published month contains: the one definition every public view uses.

A month's publication lists the reports **received in that month that an analyst has
accepted for publication**:

- counted in the statistics (not a test report, not a duplicate), and
- reviewed: status ``triaged``, ``published`` or ``closed``. A report still ``received``
  (nobody has looked at it yet), a ``rejected`` one or a draft is not listed.

Each is shown by its public text only (the analyst's title and narrative, else the draft
the analyst approved, else the labels of its codes) with its dates and codes: never
anything the reporter wrote. The statistics still count every counted report of the
month (a count says nothing of a report), so a publication may say "n more reports are
not listed".

``month_reports`` is the selection, ``contents`` the plain values. The public month page
and its JSON twin, the public API, the monthly publication (HTML, PDF, Markdown) and the
published-month CSV export (``todokede export --published``) all list exactly these.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from todokede.center.intake.schema import StoredReport
from todokede.center.months import Month
from todokede.center.publication.titles import public_narrative, public_title

if TYPE_CHECKING:
    from todokede.center.store import Store

PUBLIC_STATUSES = ("triaged", "published", "closed")  # reviewed by an analyst


class PublicReport(BaseModel):
    """A published case: taxonomy codes, dates and the public text (the analyst's, else
    drafted from the codes): nothing the reporter wrote."""

    model_config = ConfigDict(extra="forbid")

    id: int
    received: date | None
    title: str
    title_en: str
    methods: list[str]
    damage: list[str]
    causes: list[str]
    actual_damage: bool | None = Field(description="実被害: true, false, or null (unknown)")
    targets: list[str] = Field(description="Target services as target codes (imap, smtp...)")
    narrative: str | None
    narrative_en: str | None


def accepted(sr: StoredReport) -> bool:
    """Whether an analyst has accepted the report for publication."""
    return sr.counted and sr.triage.status in PUBLIC_STATUSES


def month_reports(store: Store, month: str) -> list[StoredReport]:
    """The reports the publication of ``month`` lists, by day received, then id."""
    first, after = Month.parse(month).days()
    found = store.iter_reports(received_from=first, received_before=after)
    return sorted(
        (sr for sr in found if accepted(sr)), key=lambda sr: (sr.report.received or date.min, sr.id)
    )


def public_report(sr: StoredReport) -> PublicReport:
    """The anonymised, public view of a report: the same public text as the pages."""
    return PublicReport(
        id=sr.id,
        received=sr.report.received,
        title=public_title(sr, "ja"),
        title_en=public_title(sr, "en"),
        methods=sr.effective_methods(),
        damage=sr.effective_damage(),
        causes=sr.effective_causes(),
        actual_damage=sr.effective_actual_damage(),
        targets=sr.effective_targets(),
        narrative=public_narrative(sr, "ja"),
        narrative_en=public_narrative(sr, "en"),
    )


def contents(store: Store, month: str) -> list[PublicReport]:
    """What the publication of ``month`` lists, as plain values."""
    return [public_report(sr) for sr in month_reports(store, month)]

"""The inbox's filters, for the inbox page and ``GET /api/reports`` alike: status, month,
method, damage, actual damage, incident and a free-text search, as SQL conditions on the
store's denormalised columns (``reports.month``, ``status``, ``actual_damage`` and the
effective codes in ``report_terms``), so a large center is paged through, not loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, String, cast, exists, func, or_

from todokede.center.intake.schema import ID_MAX
from todokede.center.store import tables
from todokede.errors import InputError

SEARCH_WORDS = 5  # words of a search that count (each must appear)

# 実被害 is tri-state: "unknown" (nobody has said) is a value of its own, not "no".
Actual = Literal["yes", "no", "unknown"]
ACTUAL: dict[str, bool | None] = {"yes": True, "no": False, "unknown": None}
_ACTUALS: dict[str, Actual] = {"yes": "yes", "no": "no", "unknown": "unknown"}


def actual_of(text: str) -> Actual | None:
    """A query string's yes/no/unknown; anything else is "any"."""
    return _ACTUALS.get(text)


@dataclass(frozen=True)
class ReportFilter:
    """What to show; None is "any". Drafts are left out unless ``status`` is "draft" or
    ``drafts`` is set."""

    status: str | None = None
    month: str | None = None
    method: str | None = None
    damage: str | None = None
    actual: Actual | None = None
    incident: int | None = None
    search: str | None = None
    drafts: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        r, t = tables.reports.c, tables.report_terms.c
        where: list[ColumnElement[bool]] = []
        if self.status is not None:
            where.append(r.status == self.status)
        elif not self.drafts:
            # A draft is the reporter's until sent: shown only when asked for.
            where.append(r.status != "draft")
        if self.month is not None:
            where.append(r.month == self.month)
        for vocabulary, code in (("method", self.method), ("damage", self.damage)):
            if code is not None:
                where.append(
                    exists().where(t.report_id == r.id, t.vocabulary == vocabulary, t.code == code)
                )
        if self.actual is not None:
            where.append(r.actual_damage.is_(ACTUAL[self.actual]))
        if self.incident is not None:
            if not 1 <= self.incident <= ID_MAX:
                raise InputError(f"must be between 1 and {ID_MAX}", field="incident")
            where.append(r.incident_id == self.incident)
        for word in (self.search or "").split()[:SEARCH_WORDS]:
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(
                or_(
                    func.lower(r.body).like(pattern.lower(), escape="\\"),
                    cast(r.id, String) == word.lstrip("#"),
                )
            )
        return where

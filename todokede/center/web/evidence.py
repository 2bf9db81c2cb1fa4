"""A report's evidence as its page shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from todokede.center.intake.schema import Report
from todokede.center.web import i18n


def finding_rows(report: Report, lang: i18n.Lang) -> list[dict[str, str]]:
    """The evidence that is a scan finding, as table rows of plain text (the data is the
    reporter's JSON: any shape may arrive, so each cell is made a string here)."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            items = [str(v) for v in value[:10]]
            return ", ".join(items) + (" …" if len(value) > 10 else "")
        return str(value)[:300]

    def when(value: Any) -> str:
        try:
            return i18n.format_date(datetime.fromisoformat(str(value)), lang)
        except ValueError:
            return cell(value)

    rows = []
    for e in report.evidence:
        if e.kind == "finding" and isinstance(e.data, dict):
            row = {key: cell(e.data.get(key)) for key in ("kind", "service", "sources", "count")}
            row["outcome"] = cell(e.data.get("outcome"))
            row["first_seen"] = when(e.data.get("first_seen"))
            row["last_seen"] = when(e.data.get("last_seen"))
            rows.append(row)
    return rows

"""The analyst's pages: the inbox (filters and search), the classification form on the
report page, duplicate and incident links, the audit trail and the statistics dashboard
(publishing a month is ``publishing.py``).

The inbox filters in SQL (``center.filters``, which ``GET /api/reports`` shares), so it
pages through a large center without loading it. Novelty ("new type") depends on the published
history, so that one filter is applied to one month at a time.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from todokede.center import months
from todokede.center.intake.schema import ID_MAX, STATUSES, StoredReport
from todokede.center.publication import novelty, stats, titles
from todokede.center.store.audit import AUDIT_SHOWN
from todokede.center.store.filters import ReportFilter, actual_of
from todokede.center.taxonomy import Lang
from todokede.center.web import triage as triage_form
from todokede.center.web.evidence import finding_rows
from todokede.center.web.public import chart_response
from todokede.center.web.shapes import Summary
from todokede.center.web.site import Ctx
from todokede.errors import InputError

if TYPE_CHECKING:
    from todokede.center.store import Store

PAGE = 50
NEW_TYPE_SCAN = 5_000  # reports examined at most when filtering by novelty


def inbox(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    filters = {
        k: (q.get(k) or "").strip()[:200]
        for k in ("status", "month", "method", "damage", "actual", "new", "q", "incident")
    }
    offset = min(max(0, _int(q.get("offset")) or 0), ID_MAX)
    reports, total = _inbox_page(ctx.store, filters, offset)
    data = {
        "reports": [Summary.of(sr) for sr in reports],
        "total": total,
        "offset": offset,
        "page": PAGE,
        "filters": filters,
        "months": ctx.store.report_months(),
        "new": _novelty(ctx.store, reports),
    }
    return ctx.answer("inbox.html", data, reports=reports, f=filters, query=_query(filters))


def _inbox_page(
    store: Store, filters: dict[str, str], offset: int
) -> tuple[list[StoredReport], int]:
    """One page of the inbox and how many reports match in all."""
    selected = _filter(filters)
    if filters["new"] not in ("yes", "no"):
        return store.list_reports(limit=PAGE, offset=offset, newest_first=True, filters=selected)
    if not filters["month"]:
        raise InputError("choose a month to filter by new type")
    candidates, _ = store.list_reports(limit=NEW_TYPE_SCAN, newest_first=True, filters=selected)
    judged = novelty.month_novelty(store, filters["month"], candidates)
    want = filters["new"] == "yes"
    matching = [sr for sr in candidates if judged[sr.id].new == want]
    return matching[offset : offset + PAGE], len(matching)


def triage(ctx: Ctx, report_id: int) -> Response:
    user = ctx.need_analyst()
    form = ctx.form()
    stored = ctx.store.get_report(report_id, actor=user.name)
    result, errors = triage_form.to_triage(form, form.getlist, stored)
    if result is None:
        return _report_again(ctx, stored, errors)
    try:
        ctx.store.set_triage(report_id, result, actor=user.name)
    except InputError as exc:
        return _report_again(ctx, stored, {exc.field or "form": exc.message})
    ctx.flash("saved")
    return ctx.redirect(f"/reports/{report_id}")


def _report_again(ctx: Ctx, stored: StoredReport, errors: dict[str, str]) -> Response:
    return ctx.render(
        "report.html",
        status=422,
        sr=stored,
        findings=finding_rows(stored.report, ctx.lang),
        mine=False,
        triage_errors=errors,
        **report_context(ctx, stored),
    )


def new_incident(ctx: Ctx, report_id: int) -> Response:
    """Open an incident (what happened) with this report as its first."""
    user = ctx.need_analyst()
    form = ctx.form()
    store = ctx.store
    store.report_owner(report_id)  # NotFound before anything is created
    incident = store.add_incident(str(form.get("title") or ""), actor=user.name)
    store.update_triage(report_id, {"incident_id": incident.id}, actor=user.name)
    ctx.flash("saved")
    return ctx.redirect(f"/reports/{report_id}")


def dashboard(ctx: Ctx) -> Response:
    store = ctx.store
    months = store.report_months(counted=True, limit=10_000)
    month = ctx.request.query_params.get("month") or (months[0] if months else None)
    data = {
        "stats": stats.month_stats(store, month) if month else None,
        "months": months,
        "month": month,
        "published": store.published_months(),
    }
    return ctx.answer("dashboard.html", data, chart_base=f"/dashboard/{month}")


def dashboard_chart(ctx: Ctx, month: str, kind: str) -> Response:
    months.check(month)
    return chart_response(ctx, month, kind)


def _filter(f: dict[str, str]) -> ReportFilter:
    """The inbox's query string as a filter: an unknown status or yes/no is "any"."""
    if f["month"]:
        months.check(f["month"])
    incident = None
    if f["incident"]:
        incident = _int(f["incident"])
        if incident is None:
            raise InputError("not a number", field="incident")
    return ReportFilter(
        status=f["status"] if f["status"] in STATUSES else None,
        month=f["month"] or None,
        method=f["method"] or None,
        damage=f["damage"] or None,
        actual=actual_of(f["actual"]),
        incident=incident,
        search=f["q"] or None,
    )


def _novelty(store: Store, reports: list[StoredReport]) -> dict[int, bool]:
    """Whether each listed report is of a new type, judged month by month."""
    by_month: dict[str, list[StoredReport]] = defaultdict(list)
    for sr in reports:
        if sr.report.received is not None:
            by_month[sr.report.received.strftime("%Y-%m")].append(sr)
    out: dict[int, bool] = {}
    for month, group in by_month.items():
        for rid, judged in novelty.month_novelty(store, month, group).items():
            out[rid] = judged.new
    return out


def report_context(ctx: Ctx, stored: StoredReport) -> dict[str, Any]:
    """What the report page adds for analysts: links, novelty, audit trail."""
    store = ctx.store
    duplicates = store.duplicate_ids(stored.id)
    incident_reports: list[int] = []
    if stored.triage.incident_id is not None:
        incident_reports = store.incident_report_ids(stored.triage.incident_id, besides=stored.id)
    incident = store.get_incident(stored.triage.incident_id) if stored.triage.incident_id else None
    judged = None
    if stored.report.received is not None:
        month = stored.report.received.strftime("%Y-%m")
        judged = novelty.month_novelty(store, month, [stored])[stored.id]
    return {
        "analyst": True,
        "public": public_text(stored),
        "duplicates": duplicates,
        "incident_reports": incident_reports,
        "incident": incident,
        "novelty": judged,
        "audit": store.audit_log(stored.id, limit=AUDIT_SHOWN),
    }


def public_text(stored: StoredReport) -> dict[str, dict[str, str]]:
    """What the classification form previews: the drafted text and the public text now."""
    langs: tuple[Lang, ...] = ("ja", "en")
    return {
        "drafted_title": {lg: titles.drafted_title(stored, lg) for lg in langs},
        "drafted_narrative": {lg: titles.drafted_narrative(stored, lg) for lg in langs},
        "title": {lg: titles.public_title(stored, lg) for lg in langs},
        "narrative": {lg: titles.public_narrative(stored, lg) for lg in langs},
    }


def _query(f: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in f.items() if v})


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value and len(value) < 40 else None
    except ValueError:
        return None

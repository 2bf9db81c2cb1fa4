"""The analyst's pages: the inbox (filters and search), the classification form on the
report page, duplicate and incident links, the audit trail and the statistics dashboard
(publishing a month is ``publishing.py``).

The inbox filters in SQL (``center.filters``, which ``GET /api/reports`` shares), so it
pages through a large center without loading it. Novelty ("new type") depends on the published
history, so that one filter is applied to one month at a time.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import and_, func, select
from starlette.applications import Starlette
from starlette.responses import Response

from todokede.center import draft, months, novelty, stats, tables
from todokede.center import rows as rows_
from todokede.center.audit import AUDIT_SHOWN
from todokede.center.filters import ReportFilter, actual_of
from todokede.center.schema import ID_MAX, STATUSES, StoredReport
from todokede.center.taxonomy import Lang
from todokede.center.web import forms
from todokede.center.web.public import chart_response
from todokede.center.web.site import Ctx, Site, page
from todokede.errors import InputError

PAGE = 50
NEW_TYPE_SCAN = 5_000  # reports examined at most when filtering by novelty


def install(app: Starlette, site: Site) -> None:
    on = page(site)
    store = site.store

    @on
    def inbox(ctx: Ctx) -> Response:
        ctx.need_analyst()
        q = ctx.request.query_params
        filters = {
            k: (q.get(k) or "").strip()[:200]
            for k in ("status", "month", "method", "damage", "actual", "new", "q", "incident")
        }
        offset = min(max(0, _int(q.get("offset")) or 0), ID_MAX)
        where = _filter(filters).conditions()
        r = tables.reports.c
        with store.engine.connect() as conn:
            if filters["new"] in ("yes", "no"):
                if not filters["month"]:
                    raise InputError("choose a month to filter by new type")
                rows = conn.execute(
                    select(*rows_.REPORT_COLS)
                    .where(*where)
                    .order_by(r.id.desc())
                    .limit(NEW_TYPE_SCAN)
                ).mappings()
                candidates = [rows_.stored(row) for row in rows]
                judged = novelty.month_novelty(store, filters["month"], candidates)
                want = filters["new"] == "yes"
                matching = [sr for sr in candidates if judged[sr.id].new == want]
                total = len(matching)
                reports = matching[offset : offset + PAGE]
            else:
                total = conn.execute(
                    select(func.count()).select_from(tables.reports).where(*where)
                ).scalar_one()
                rows = conn.execute(
                    select(*rows_.REPORT_COLS)
                    .where(*where)
                    .order_by(r.id.desc())
                    .limit(PAGE)
                    .offset(offset)
                ).mappings()
                reports = [rows_.stored(row) for row in rows]
            months = list(
                conn.execute(
                    select(r.month).distinct().order_by(r.month.desc()).limit(240)
                ).scalars()
            )
        new = _novelty(store, reports)
        return ctx.render(
            "inbox.html",
            reports=reports,
            total=total,
            offset=offset,
            page=PAGE,
            f=filters,
            months=months,
            new=new,
            query=_query(filters),
        )

    @on
    def triage(ctx: Ctx, report_id: int) -> Response:
        user = ctx.need_analyst()
        form = ctx.form()
        stored = store.get_report(report_id, actor=user.name)
        result, errors = forms.to_triage(form, form.getlist, stored)
        if result is None:
            return _report_again(ctx, stored, errors)
        try:
            store.set_triage(report_id, result, actor=user.name)
        except InputError as exc:
            return _report_again(ctx, stored, {exc.field or "form": exc.message})
        ctx.flash("saved")
        return ctx.redirect(f"/reports/{report_id}")

    def _report_again(ctx: Ctx, stored: StoredReport, errors: dict[str, str]) -> Response:
        from todokede.center.web.reporting import finding_rows

        return ctx.render(
            "report.html",
            status=422,
            sr=stored,
            findings=finding_rows(stored.report, ctx.lang),
            mine=False,
            triage_errors=errors,
            **report_context(ctx, stored),
        )

    @on
    def new_incident(ctx: Ctx, report_id: int) -> Response:
        """Open an incident (what happened) with this report as its first."""
        user = ctx.need_analyst()
        form = ctx.form()
        store.report_owner(report_id)  # NotFound before anything is created
        incident = store.add_incident(str(form.get("title") or ""), actor=user.name)
        store.update_triage(report_id, {"incident_id": incident.id}, actor=user.name)
        ctx.flash("saved")
        return ctx.redirect(f"/reports/{report_id}")

    @on
    def dashboard(ctx: Ctx) -> Response:
        ctx.need_analyst()
        r = tables.reports.c
        with store.engine.connect() as conn:
            months = list(
                conn.execute(
                    select(r.month).where(r.counted.is_(True)).distinct().order_by(r.month.desc())
                ).scalars()
            )
        month = ctx.request.query_params.get("month") or (months[0] if months else None)
        month_stats = stats.month_stats(store, month) if month else None
        return ctx.render(
            "dashboard.html",
            stats=month_stats,
            months=months,
            month=month,
            published=store.published_months(),
            chart_base=f"/dashboard/{month}",
        )

    @on
    def dashboard_chart(ctx: Ctx, month: str, kind: str) -> Response:
        ctx.need_analyst()
        months.check(month)
        return chart_response(ctx, month, kind)

    app.add_route("/inbox", inbox, methods=["GET"], include_in_schema=False)
    app.add_route(
        "/reports/{report_id:int}/triage", triage, methods=["POST"], include_in_schema=False
    )
    app.add_route(
        "/reports/{report_id:int}/incident",
        new_incident,
        methods=["POST"],
        include_in_schema=False,
    )
    app.add_route("/dashboard", dashboard, methods=["GET"], include_in_schema=False)
    app.add_route(
        "/dashboard/{month}/{kind}.svg", dashboard_chart, methods=["GET"], include_in_schema=False
    )


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


def _novelty(store: Any, reports: list[StoredReport]) -> dict[int, bool]:
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
    r = tables.reports.c
    with store.engine.connect() as conn:
        duplicates = list(
            conn.execute(select(r.id).where(r.duplicate_of == stored.id).order_by(r.id)).scalars()
        )
        incident_reports: list[int] = []
        if stored.triage.incident_id is not None:
            incident_reports = list(
                conn.execute(
                    select(r.id)
                    .where(and_(r.incident_id == stored.triage.incident_id, r.id != stored.id))
                    .order_by(r.id)
                ).scalars()
            )
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
        "drafted_title": {lg: draft.drafted_title(stored, lg) for lg in langs},
        "drafted_narrative": {lg: draft.drafted_narrative(stored, lg) for lg in langs},
        "title": {lg: draft.public_title(stored, lg) for lg in langs},
        "narrative": {lg: draft.public_narrative(stored, lg) for lg in langs},
    }


def _query(f: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in f.items() if v})


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value and len(value) < 40 else None
    except ValueError:
        return None

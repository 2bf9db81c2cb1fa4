"""Pages for everyone: home, the published monthly reports (HTML, PDF, Markdown) and the
statistics of published months. Only published months are shown, and only what the
publication shows: the analyst's (or drafted) public title and narrative, dates and codes,
never the reporter, the evidence or the reporter's own words.
"""

from __future__ import annotations

import threading
from typing import Literal

from starlette.applications import Starlette
from starlette.responses import Response

from todokede.center import stats
from todokede.center.draft import public_narrative, public_title
from todokede.center.taxonomy import Lang
from todokede.center.web.api import PUBLIC_STATUSES
from todokede.center.web.site import SECURITY_HEADERS, Ctx, PageError, Site, page

_FMT: dict[str, Literal["html", "pdf", "md"]] = {"html": "html", "pdf": "pdf", "md": "md"}
FORMATS = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "md": "text/markdown; charset=utf-8",
}
# The publication's own HTML carries its own inline styles (it must also stand alone as a
# file): it may style itself, but still never run a script.
PUBLICATION_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


def install(app: Starlette, site: Site) -> None:
    on = page(site)
    store = site.store

    def published_or_404(month: str) -> str:
        if month not in store.published_months():
            raise PageError(404, "not_found")
        return month

    @on
    def home(ctx: Ctx) -> Response:
        months = list(reversed(store.published_months()))
        return ctx.render("home.html", months=months[:6])

    @on
    def published_list(ctx: Ctx) -> Response:
        months = list(reversed(store.published_months()))
        return ctx.render("published.html", months=months)

    @on
    def published_month(ctx: Ctx, month: str) -> Response:
        published_or_404(month)
        reports, _ = store.list_reports(month=month, limit=10_000)
        cases = [
            {
                "received": sr.report.received,
                "title": public_title(sr, ctx.lang),
                "narrative": public_narrative(sr, ctx.lang),
                "methods": sr.effective_methods(),
                "damage": sr.effective_damage(),
                "actual": sr.effective_actual_damage(),
            }
            for sr in reports
            if sr.counted and sr.triage.status in PUBLIC_STATUSES
        ]
        month_stats = stats.month_stats(store, month)
        return ctx.render(
            "published_month.html",
            month=month,
            cases=cases,
            stats=month_stats,
            formats=_formats(),
        )

    @on
    def published_file(ctx: Ctx, month: str, fmt: str) -> Response:
        published_or_404(month)
        if fmt not in FORMATS:
            raise PageError(404, "not_found")
        try:
            from todokede.center import monthly
        except ImportError as exc:
            raise PageError(404, "not_available") from exc
        lang: Lang = "en" if ctx.request.query_params.get("lang", ctx.lang) == "en" else "ja"
        with _CHARTS:  # the publication draws its charts with matplotlib too
            body = monthly.render(store, month, lang=lang, fmt=_FMT[fmt])
        response = Response(body, media_type=FORMATS[fmt])
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        response.headers["Content-Security-Policy"] = PUBLICATION_CSP
        response.headers["Cache-Control"] = "public, max-age=300"
        if fmt != "html":
            name = f"todokede-{month}-{lang}.{fmt}"
            response.headers["Content-Disposition"] = f'inline; filename="{name}"'
        return response

    @on
    def statistics(ctx: Ctx) -> Response:
        months = store.published_months()
        if not months:
            return ctx.render("statistics.html", stats=None, months=[], month=None)
        month = ctx.request.query_params.get("month") or months[-1]
        published_or_404(month)
        return ctx.render(
            "statistics.html",
            stats=stats.month_stats(store, month),
            months=list(reversed(months)),
            month=month,
            chart_base=f"/statistics/{month}",
        )

    @on
    def chart(ctx: Ctx, month: str, kind: str) -> Response:
        published_or_404(month)
        return chart_response(ctx, month, kind)

    app.add_route("/", home, methods=["GET"], include_in_schema=False)
    app.add_route("/published", published_list, methods=["GET"], include_in_schema=False)
    app.add_route("/published/{month}", published_month, methods=["GET"], include_in_schema=False)
    app.add_route(
        "/published/{month}/report.{fmt}", published_file, methods=["GET"], include_in_schema=False
    )
    app.add_route("/statistics", statistics, methods=["GET"], include_in_schema=False)
    app.add_route("/statistics/{month}/{kind}.svg", chart, methods=["GET"], include_in_schema=False)


def _formats() -> list[str]:
    try:
        from todokede.center import monthly  # noqa: F401
    except ImportError:
        return []
    return list(FORMATS)


# Matplotlib's settings (rc_context: the CJK font) are process-global, so two charts drawn
# at once in two worker threads would swap fonts under each other: draw one at a time.
_CHARTS = threading.Lock()


def chart_response(ctx: Ctx, month: str, kind: str) -> Response:
    """A chart as an SVG image of its own (so the page's CSP can forbid inline styles)."""
    if kind not in ("monthly", "methods"):
        raise PageError(404, "not_found")
    month_stats = stats.month_stats(ctx.store, month)
    with _CHARTS:
        if kind == "monthly":
            text = stats.monthly_chart_svg(month_stats, ctx.lang)
        else:
            text = stats.methods_chart_svg(month_stats, ctx.lang)
    body = '<?xml version="1.0" encoding="utf-8"?>\n' + text
    response = Response(body, media_type="image/svg+xml")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response

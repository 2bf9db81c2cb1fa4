"""Pages for everyone: home, the published monthly reports (HTML, PDF, Markdown) and the
statistics of published months. Only published months are shown, and only what the
publication shows: the analyst's (or drafted) public title and narrative, dates and codes,
never the reporter, the evidence or the reporter's own words.

Every page of a month serves the snapshot frozen when it was published (its current
revision, ``todokede.center.publication.snapshot``), never the live reports: triage, new reports and
backdating change nothing until the month is published again. A withdrawn month shows
its withdrawal notice (410).
"""

from __future__ import annotations

from typing import Any, Literal

from starlette.responses import Response

from todokede.center import months
from todokede.center.publication import snapshot, stats
from todokede.center.taxonomy import Lang
from todokede.center.web import i18n
from todokede.center.web.site import SECURITY_HEADERS, Ctx, error_page
from todokede.errors import NotFound, PageError, Withdrawn

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


def published_or_gone(ctx: Ctx, month: str) -> snapshot.Frozen:
    """The month as published (its current revision's snapshot); 404 if never
    published, 410 with the withdrawal notice if withdrawn."""
    months.check(month)
    try:
        return snapshot.published(ctx.store, month)
    except Withdrawn as exc:
        raise PageError(410, "withdrawn_text", _withdrawn_detail(exc, ctx.lang)) from exc
    except NotFound as exc:
        raise PageError(404, "not_found") from exc


def home(ctx: Ctx) -> Response:
    months = list(reversed(ctx.store.published_months()))
    return ctx.answer("home.html", {"months": months[:6]})


def published_list(ctx: Ctx) -> Response:
    states = list(reversed(ctx.store.latest_revisions()))
    withdrawn = [r for r in states if r.withdrawn]
    data = {
        "months": [r.month for r in states if not r.withdrawn],
        # Publicly: when and why, not who.
        "withdrawn": [
            {"month": r.month, "withdrawn_at": r.withdrawn_at, "reason": r.withdrawn_reason}
            for r in withdrawn
        ],
    }
    return ctx.answer("published.html", data, withdrawn=withdrawn)


def published_month(ctx: Ctx, month: str) -> Response:
    try:
        months.check(month)
        frozen = snapshot.published(ctx.store, month)
    except Withdrawn as exc:
        # What a bulletin does: the notice stays where the month was.
        detail = _withdrawn_detail(exc, ctx.lang)
        return error_page(ctx, 410, "withdrawn_text", detail, heading="withdrawn_heading")
    except NotFound as exc:
        raise PageError(404, "not_found") from exc
    return ctx.answer(
        "published_month.html",
        month_data(frozen, ctx.lang),
        formats=available_formats(),
        revision=frozen.revision,
    )


def published_file(ctx: Ctx, month: str, fmt: str) -> Response:
    if fmt not in FORMATS or not available_formats():
        raise PageError(404, "not_found")
    frozen = published_or_gone(ctx, month)
    lang = document_lang(ctx)
    # The PDF is rendered once per revision and kept; HTML and Markdown are stored.
    body = snapshot.document(ctx.store, frozen.revision, lang, _FMT[fmt])
    return document_response(body, fmt, f"{month}-{lang}", cache="public, max-age=300")


def statistics(ctx: Ctx) -> Response:
    months = ctx.store.published_months()
    if not months:
        return ctx.answer("statistics.html", {"stats": None, "months": [], "month": None})
    month = ctx.request.query_params.get("month") or months[-1]
    frozen = published_or_gone(ctx, month)
    data = {"stats": frozen.snapshot.stats, "months": list(reversed(months)), "month": month}
    return ctx.answer("statistics.html", data, chart_base=f"/statistics/{month}")


def chart(ctx: Ctx, month: str, kind: str) -> Response:
    if kind not in snapshot.CHART_KINDS:
        raise PageError(404, "not_found")
    frozen = published_or_gone(ctx, month)
    return svg_response(snapshot.chart(ctx.store, frozen, ctx.lang, kind))


def document_lang(ctx: Ctx) -> Lang:
    """A document's language: ``?lang=``, else the reader's."""
    return "en" if ctx.request.query_params.get("lang", ctx.lang) == "en" else "ja"


def _withdrawn_detail(exc: Withdrawn, lang: Lang) -> str:
    when = i18n.format_date(exc.at, lang)
    return f"{when}: {exc.reason}" if exc.reason else when


def month_page(snap: snapshot.Snapshot, lang: Lang) -> dict[str, Any]:
    """What the month page shows of a snapshot (published, or a preview)."""
    cases = []
    for c in snap.cases:
        title, narrative = c.text(lang)
        cases.append({"received": c.received, "title": title, "narrative": narrative,
                      "methods": c.methods, "damage": c.damage, "actual": c.actual})  # fmt: skip
    return {"month": snap.month, "cases": cases, "stats": snap.stats}


def month_data(frozen: snapshot.Frozen, lang: Lang) -> dict[str, Any]:
    """The public month page's data: the month as published, its revision and the
    reports it lists (``published.contents``, frozen with the revision)."""
    return {
        **month_page(frozen.snapshot, lang),
        "revision_number": frozen.revision.revision,
        "published_at": frozen.revision.published_at,
        "reports": frozen.snapshot.reports,
    }


def document_response(body: bytes, fmt: str, name: str, *, cache: str) -> Response:
    """A publication document, under the publication's own CSP."""
    response = Response(body, media_type=FORMATS[fmt])
    for header, value in SECURITY_HEADERS.items():
        response.headers[header] = value
    response.headers["Content-Security-Policy"] = PUBLICATION_CSP
    response.headers["Cache-Control"] = cache
    if fmt != "html":
        response.headers["Content-Disposition"] = f'inline; filename="todokede-{name}.{fmt}"'
    return response


def available_formats() -> list[str]:
    try:
        from todokede.center.publication import monthly  # noqa: F401
    except ImportError:
        return []
    return list(FORMATS)


_CHARTS = stats.CHARTS  # matplotlib draws one chart at a time (process-global settings)


def chart_response(ctx: Ctx, month: str, kind: str) -> Response:
    """A chart of the live statistics (the dashboard's) as an SVG image of its own."""
    if kind not in snapshot.CHART_KINDS:
        raise PageError(404, "not_found")
    month_stats = stats.month_stats(ctx.store, month)
    with _CHARTS:
        if kind == "monthly":
            text = stats.monthly_chart_svg(month_stats, ctx.lang)
        else:
            text = stats.methods_chart_svg(month_stats, ctx.lang)
    return svg_response(text)


def svg_response(text: str) -> Response:
    """An SVG image of its own (so the page's CSP can forbid inline styles)."""
    body = '<?xml version="1.0" encoding="utf-8"?>\n' + text
    response = Response(body, media_type="image/svg+xml")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response

"""Publishing a month from the web, in two steps, and withdrawing it.

1. ``GET /publish?month=YYYY-MM`` — the preview: exactly what would be published now (the
   month page as the public will see it, the documents under ``/publish/report.FMT``),
   with the month's current revision, if any, and the form to withdraw it.
2. ``POST /publish`` — the confirmation: the preview's digest and an explicit tick. If the
   month changed since the preview (a late triage, a new report), nothing is published
   and the new preview is shown.

Only closed months in the past can be published (``snapshot.check_month``). Both steps,
like withdrawal, are for analysts and go through the site's CSRF checks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from starlette.responses import Response

from todokede.center import months
from todokede.center.publication import snapshot
from todokede.center.store.auth import User
from todokede.center.web import status as http_status
from todokede.center.web.public import (
    FORMATS,
    available_formats,
    document_lang,
    document_response,
    month_page,
)
from todokede.center.web.site import Ctx
from todokede.errors import InputError, PageError


def _today(ctx: Ctx) -> date:
    today: Callable[[], date] = ctx.request.app.state.today
    return today()


def preview_page(ctx: Ctx, month: str, problem: str | None = None, status: int = 200) -> Response:
    """The preview of ``month`` (or why it cannot be published); its JSON twin is the
    preview's data: what would be published, the current revision and the digest."""
    current = ctx.store.revision(month) if _valid(month) else None
    try:
        snapshot.check_month(month, _today(ctx))
    except InputError as exc:
        refused: dict[str, Any] = {
            "month": month, "refused": exc.message, "current": current, "cases": [],
            "stats": None, "formats": [], "digest": "", "problem": None,
        }  # fmt: skip
        return ctx.answer("publish_preview.html", refused, status=http_status.answer(exc)[0])
    taken = snapshot.take(ctx.store, month)
    data = {
        **month_page(taken.snapshot, ctx.lang),
        "refused": None,
        "current": current,
        "unchanged": current is not None and current.digest == taken.digest,
        "next_revision": (current.revision if current else 0) + 1,
        "digest": taken.digest,
        "formats": available_formats(),
        "problem": problem,
    }
    return ctx.answer("publish_preview.html", data, status=status)


def preview(ctx: Ctx) -> Response:
    month = ctx.request.query_params.get("month") or ""
    if not _valid(month):
        raise InputError(f"month must be YYYY-MM, not {month[:20]!r}", field="month")
    return preview_page(ctx, month)


def preview_file(ctx: Ctx, fmt: str) -> Response:
    month = ctx.request.query_params.get("month") or ""
    if fmt not in FORMATS or not available_formats() or not _valid(month):
        raise PageError(404, "not_found")
    snapshot.check_month(month, _today(ctx))
    lang = document_lang(ctx)
    taken = snapshot.take(ctx.store, month)
    if fmt == "pdf":
        from todokede.center.publication.monthly import html_to_pdf

        body = html_to_pdf(taken.files[f"{lang}.pdf.html"].decode())
    else:
        body = taken.files[f"{lang}.{fmt}"]
    return document_response(body, fmt, f"{month}-{lang}-preview", cache="no-store")


def confirm(ctx: Ctx) -> Response:
    user, month, confirmed = _confirmed(ctx)
    digest = str(ctx.form().get("digest") or "")
    if not confirmed or not digest:
        # Publishing is a second, explicit step after the preview.
        return preview_page(ctx, month, "confirm_needed", status=422)
    try:
        rev = ctx.store.publish_month(month, actor=user.name, today=_today(ctx), digest=digest)
    except InputError as exc:
        if exc.field != "digest":
            raise
        return preview_page(ctx, month, "preview_changed", status=409)
    ctx.flash("published_ok" if rev.revision == 1 else "republished_ok")
    return ctx.redirect(f"/published/{month}")


def withdraw(ctx: Ctx) -> Response:
    user, month, confirmed = _confirmed(ctx)
    if not confirmed:
        return preview_page(ctx, month, "confirm_needed", status=422)
    reason = str(ctx.form().get("reason") or "").strip() or None
    if reason is not None and len(reason) > 2000:
        raise InputError("the reason is longer than 2,000 characters")
    ctx.store.withdraw_month(month, actor=user.name, reason=reason)
    ctx.flash("withdrawn_ok")
    return ctx.redirect(f"/publish?month={month}")


def _confirmed(ctx: Ctx) -> tuple[User, str, bool]:
    """The analyst, the posted month and whether the confirmation box was ticked."""
    user = ctx.need_analyst()
    form = ctx.form()
    month = str(form.get("month") or "")
    if not _valid(month):
        raise InputError(f"month must be YYYY-MM, not {month[:20]!r}", field="month")
    return user, month, form.get("confirm") == "yes"


def _valid(month: str) -> bool:
    try:
        months.check(month)
    except InputError:
        return False
    return True

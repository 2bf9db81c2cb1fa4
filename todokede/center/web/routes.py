"""Every page of the center, in one table: its path, methods, handler, who may open it and
whether it has a JSON twin. The JSON API (``/api``) is ``api.py``'s router.

A handler is ``def f(ctx, **path_params) -> Response`` (``site.page`` builds the context,
checks the form's CSRF token and the role, and turns errors into pages); one that is a
coroutine ``f(request)`` is served as it is (files from the package). A page with a JSON
twin is served at ``PATH.json`` too, or at its path with ``Accept: application/json``: the
same handler answers the page's data (``Ctx.answer``) behind the same sign-in and role.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from todokede.center.store import Store
from todokede.center.web import analysis, pages, public, publishing, reporting
from todokede.center.web.site import Role, Site, page

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Page:
    path: str
    handler: Callable[..., Any]
    methods: tuple[str, ...] = ("GET",)
    role: Role = "anyone"
    twin: bool = False  # also served as JSON at ``path + ".json"``


GET, POST = ("GET",), ("POST",)
REPORT = "/reports/{report_id:int}"

ROUTES: tuple[Page, ...] = (
    # For everyone: the published months, their documents and statistics.
    Page("/", public.home, twin=True),
    Page("/published", public.published_list, twin=True),
    Page("/published/{month}", public.published_month, twin=True),
    Page("/published/{month}/report.{fmt}", public.published_file),
    Page("/statistics", public.statistics, twin=True),
    Page("/statistics/{month}/{kind}.svg", public.chart),
    # Signing in and out, the language, the API's documentation.
    Page("/login", pages.sign_in_form),
    Page("/login", pages.sign_in_post, POST),
    Page("/logout", pages.sign_out_post, POST),
    Page("/lang/{code}", pages.language),
    Page("/api/docs", pages.api_docs),
    Page("/static/swagger/{name}", pages.swagger_file),
    # Reporters (and analysts): the form, their reports, additions.
    Page("/my", reporting.my_reports, role="user", twin=True),
    Page("/reports/new", reporting.new_form, role="user", twin=True),
    Page("/reports/new", reporting.new_post, POST, role="user"),
    Page(REPORT, reporting.view, role="user", twin=True),
    Page(f"{REPORT}/edit", reporting.edit_form, role="user"),
    Page(f"{REPORT}/edit", reporting.edit_post, POST, role="user"),
    Page(f"{REPORT}/addition", reporting.add_addition, POST, role="user"),
    # Analysts: the inbox, classification, incidents, the dashboard.
    Page("/inbox", analysis.inbox, role="analyst", twin=True),
    Page(f"{REPORT}/triage", analysis.triage, POST, role="analyst"),
    Page(f"{REPORT}/incident", analysis.new_incident, POST, role="analyst"),
    Page("/dashboard", analysis.dashboard, role="analyst", twin=True),
    Page("/dashboard/{month}/{kind}.svg", analysis.dashboard_chart, role="analyst"),
    # Analysts: publishing a month (preview, confirmation) and withdrawing it.
    Page("/publish", publishing.preview, role="analyst", twin=True),
    Page("/publish", publishing.confirm, POST, role="analyst"),
    Page("/publish/report.{fmt}", publishing.preview_file, role="analyst"),
    Page("/withdraw", publishing.withdraw, POST, role="analyst"),
)


def install(app: Starlette, store: Store, *, secret: str | None = None) -> Site:
    """Add the pages of ``ROUTES`` (and the static files) to ``app``. ``secret`` keys the
    CSRF tokens of visitors not signed in (default: ``TODOKEDE_SECRET``, else a random
    one per process)."""
    from todokede.center.web.session import Sessions

    site = Site(store, sessions=Sessions(store, secret))
    for route in ROUTES:
        if inspect.iscoroutinefunction(route.handler):
            endpoint = route.handler
        else:
            endpoint = page(site, route.role)(route.handler)
        methods = list(route.methods)
        # The twin first: ``/published/{month}`` would take ``2024-01.json`` as a month.
        if route.twin:
            app.add_route(f"{route.path}.json", endpoint, methods=methods, include_in_schema=False)
        app.add_route(route.path, endpoint, methods=methods, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return site

"""The center's HTML pages, for reporters, analysts and the public, in Japanese and English.

``install(app, store)`` adds them to the center's app: the public pages (home, published
monthly reports, statistics), sign-in, the reporter's form and list (``reporting.py``) and
the analyst's inbox, report page, classification and dashboard (``analysis.py``),
publishing a month (``publishing.py``) and the API's documentation page (Swagger UI,
served from the package). The JSON API stays the app's own; the pages share only the
store with it.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from todokede.center.store import Store
from todokede.center.web import analysis, i18n, public, publishing, reporting
from todokede.center.web.site import Ctx, Site, local_path, page
from todokede.errors import PageError

STATIC = Path(__file__).parent / "static"


def install(app: Starlette, store: Store, *, secret: str | None = None) -> Site:
    """Add the HTML pages to ``app``. ``secret`` keys the CSRF tokens of visitors not
    signed in (default: ``TODOKEDE_SECRET``, else a random one per process)."""
    from todokede.center.web.session import Sessions

    site = Site(store, sessions=Sessions(store, secret))
    on = page(site)

    @on
    def sign_in_form(ctx: Ctx) -> Response:
        if ctx.user is not None:
            return ctx.redirect(_start(ctx))
        return ctx.render("login.html", next=local_path(ctx.request.query_params.get("next"), ""))

    @on
    def sign_in_post(ctx: Ctx) -> Response:
        form = ctx.form()
        name = str(form.get("username") or "").strip()[:100]
        password = str(form.get("password") or "")[:1000]
        target = local_path(str(form.get("next") or ""), "")
        addr = ctx.request.client.host if ctx.request.client else "-"
        if site.limiter.blocked(name, addr):
            return ctx.render(
                "login.html", status=429, next=target, error="login_limited", username=name
            )
        user = store.authenticate(name, password) if name and password else None
        if user is None:
            site.limiter.failed(name, addr)
            return ctx.render(
                "login.html", status=401, next=target, error="login_failed", username=name
            )
        site.limiter.succeeded(name, addr)
        site.sessions.sign_in(ctx.session, user.name)
        return ctx.redirect(target or _start(ctx))

    @on
    def sign_out_post(ctx: Ctx) -> Response:
        ctx.form()
        site.sessions.sign_out(ctx.session)
        return ctx.redirect("/")

    @on
    def language(ctx: Ctx, code: str) -> Response:
        if code not in i18n.LANGS:
            raise PageError(404, "not_found")
        response = ctx.redirect(local_path(ctx.request.query_params.get("next")))
        response.set_cookie(
            i18n.COOKIE,
            code,
            max_age=365 * 86400,
            path="/",
            secure=ctx.request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
        return response

    app.add_route("/login", sign_in_form, methods=["GET"], include_in_schema=False)
    app.add_route("/login", sign_in_post, methods=["POST"], include_in_schema=False)
    app.add_route("/logout", sign_out_post, methods=["POST"], include_in_schema=False)

    @on
    def api_docs(ctx: Ctx) -> Response:
        """Swagger UI over /openapi.json, from the package's own copy (no CDN), under the
        pages' CSP: its start-up is a script file, not an inline one."""
        return ctx.render("api_docs.html")

    app.add_route("/lang/{code}", language, methods=["GET"], include_in_schema=False)
    app.add_route("/api/docs", api_docs, methods=["GET"], include_in_schema=False)
    app.add_route("/static/swagger/{name}", swagger_file, methods=["GET"], include_in_schema=False)
    public.install(app, site)
    reporting.install(app, site)
    analysis.install(app, site)
    publishing.install(app, site)
    add_twins(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return site


# Pages served as JSON too, at the page's path + ``.json`` (or with ``Accept:
# application/json``): the same data function, the same sign-in and role.
TWINS = (
    "/published",
    "/statistics",
    "/my",
    "/reports/{report_id:int}",
    "/inbox",
    "/dashboard",
)


def add_twins(app: Starlette) -> None:
    """Route each page of ``TWINS`` at ``PATH.json`` to the page's own handler."""
    pages = {
        route.path: route.endpoint
        for route in app.router.routes
        if isinstance(route, Route) and route.methods and "GET" in route.methods
    }
    for path in TWINS:
        app.add_route(f"{path}.json", pages[path], methods=["GET"], include_in_schema=False)


# Swagger UI's files, as the fastapi-offline package ships them (only these two are served).
SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}


async def swagger_file(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in SWAGGER_FILES:
        raise HTTPException(404)
    folder = Path(importlib.resources.files("fastapi_offline") / "static")  # type: ignore[arg-type]
    response = FileResponse(folder / name, media_type=SWAGGER_FILES[name])
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def _start(ctx: Ctx) -> str:
    user = ctx.user
    if user is None:
        return "/"
    return "/inbox" if user.is_analyst else "/my"

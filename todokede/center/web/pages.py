"""The pages that belong to no stage: signing in and out, the language switch and the API's
documentation page (Swagger UI, served from the package). The route table of every page
is ``routes.py``.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from todokede.center.web import i18n
from todokede.center.web.site import Ctx, local_path
from todokede.errors import PageError


def sign_in_form(ctx: Ctx) -> Response:
    if ctx.user is not None:
        return ctx.redirect(_start(ctx))
    return ctx.render("login.html", next=local_path(ctx.request.query_params.get("next"), ""))


def sign_in_post(ctx: Ctx) -> Response:
    form = ctx.form()
    site = ctx.site
    name = str(form.get("username") or "").strip()[:100]
    password = str(form.get("password") or "")[:1000]
    target = local_path(str(form.get("next") or ""), "")
    addr = ctx.request.client.host if ctx.request.client else "-"
    if site.limiter.blocked(name, addr):
        return ctx.render(
            "login.html", status=429, next=target, error="login_limited", username=name
        )
    user = ctx.store.authenticate(name, password) if name and password else None
    if user is None:
        site.limiter.failed(name, addr)
        return ctx.render(
            "login.html", status=401, next=target, error="login_failed", username=name
        )
    site.limiter.succeeded(name, addr)
    site.sessions.sign_in(ctx.session, user.name)
    return ctx.redirect(target or _start(ctx))


def sign_out_post(ctx: Ctx) -> Response:
    ctx.form()
    ctx.site.sessions.sign_out(ctx.session)
    return ctx.redirect("/")


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


def api_docs(ctx: Ctx) -> Response:
    """Swagger UI over /openapi.json, from the package's own copy (no CDN), under the
    pages' CSP: its start-up is a script file, not an inline one."""
    return ctx.render("api_docs.html")


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

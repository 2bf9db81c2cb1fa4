"""What every HTML page shares: the Jinja environment, the per-request context (language,
session, user), rendering with the security headers, and the errors pages show.

Templates are autoescaped (every value an attacker could have written is text), and each
page is served with a Content-Security-Policy that allows no inline script at all, so even
a missed escape could not run code.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic_core import to_jsonable_python
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from todokede.center import taxonomy
from todokede.center.intake.schema import STATUSES
from todokede.center.store import Store
from todokede.center.store.auth import User
from todokede.center.web import i18n, status
from todokede.center.web.ratelimit import LoginLimiter
from todokede.center.web.session import Session, Sessions, csrf_ok
from todokede.errors import (
    AccessDenied,
    LoginRequired,
    NotFound,
    PageError,
    StoreError,
    TodokedeError,
)

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
MAX_FORM_BYTES = 2_000_000  # a report with log excerpts; more is refused, not truncated


@dataclass
class Site:
    """The pages' shared state: one per app."""

    store: Store
    sessions: Sessions
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html", "j2"], default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            vocab=taxonomy.VOCABULARIES,
            vocab_labels=taxonomy.VOCABULARY_LABELS,
            statuses=STATUSES,
            yesno=yesno,
        )


def yesno(value: bool | None, unknown: str = "unknown") -> str:
    """A tri-state answer (実被害) as the form's value or message key: None is unknown."""
    return unknown if value is None else ("yes" if value else "no")


@dataclass
class Ctx:
    """One request as the pages see it."""

    site: Site
    request: Request
    session: Session
    lang: i18n.Lang
    forms: list[FormData] = field(default_factory=list)  # closed when the request ends
    as_json: bool = False  # the page's JSON twin was asked for (``.json`` or Accept)

    @property
    def user(self) -> User | None:
        """The signed-in user, as the store says now (role, enabled)."""
        return self.session.user

    @property
    def store(self) -> Store:
        return self.site.store

    def t(self, key: str) -> str:
        return i18n.t(key, self.lang)

    def need_user(self) -> User:
        user = self.user
        if user is None:
            raise LoginRequired
        return user

    def need_analyst(self) -> User:
        user = self.need_user()
        if not user.is_analyst:
            raise AccessDenied("analysts and admins only")
        return user

    def flash(self, key: str) -> None:
        self.session.flash.append(key)
        self.session.dirty = True

    async def read_form(self) -> None:
        """Read the posted form, after the size, CSRF and Origin checks."""
        length = self.request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_FORM_BYTES:
            raise PageError(413, "bad_input", f"more than {MAX_FORM_BYTES:,} bytes")
        form = await self.request.form(max_part_size=MAX_FORM_BYTES)
        self.forms.append(form)
        if not csrf_ok(self.request, self.session, form.get("csrf")):
            raise PageError(403, "csrf_failed")

    def form(self) -> FormData:
        """The posted form (read and checked before the handler runs)."""
        if not self.forms:
            raise PageError(405, "bad_input")
        return self.forms[-1]

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        lang = self.lang
        flashes = self.session.flash
        if flashes:
            self.session.flash = []
            self.session.dirty = True

        def label(vocabulary: str, code: str) -> str:
            known = taxonomy.VOCABULARIES.get(vocabulary, {}).get(code)
            return known.label(lang) if known else code

        html = self.site.env.get_template(template).render(
            t=self.t,
            lang=lang,
            other_lang="en" if lang == "ja" else "ja",
            user=self.user,
            csrf=self.session.csrf,
            path=self.request.url.path,
            here=quote(self.here(), safe="/"),
            date=lambda d: i18n.format_date(d, lang),
            month_name=lambda m: i18n.format_month(m, lang),
            label=label,
            flashes=flashes,
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        self.finish(response)
        return response

    def answer(
        self, template: str, data: dict[str, Any], *, status: int = 200, **extra: Any
    ) -> Response:
        """The page: ``data`` (plain values) rendered by ``template`` with ``extra`` (what
        only the template needs; a key of both is the template's), or ``data`` alone as
        JSON for the page's JSON twin, which needs the same sign-in and role."""
        if self.as_json:
            return self.json(data, status)
        return self.render(template, status, **{**data, **extra})

    def json(self, data: Any, status: int = 200) -> Response:
        body = json.dumps(to_jsonable_python(data), ensure_ascii=False, separators=(",", ":"))
        response = Response(body, status_code=status, media_type="application/json")
        self.finish(response)
        return response

    def here(self) -> str:
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query else "")

    def redirect(self, url: str) -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        self.finish(response)
        return response

    def finish(self, response: Response) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers["Content-Language"] = self.lang
        response.headers["Vary"] = "Accept-Language, Cookie"
        self.site.sessions.save(response, self.request, self.session)


Handler = Callable[[Request], Awaitable[Response]]
# Who may open a page: anyone, a signed-in user (reporter or analyst), an analyst (or admin).
Role = Literal["anyone", "user", "analyst"]


def page(site: Site, role: Role = "anyone") -> Callable[[Callable[..., Response]], Handler]:
    """Decorate a route ``def f(ctx, **path_params)``: builds the Ctx, reads and checks a
    posted form, checks ``role`` (a sign-in redirect, or 403), runs the handler in a worker
    thread (the store, argon2 and the chart and PDF renderers block; the event loop must
    not), and turns errors into pages (403, 404, 422...) instead of tracebacks."""

    def decorate(func: Callable[..., Response]) -> Handler:
        @functools.wraps(func)
        async def route(request: Request) -> Response:
            session = await run_in_threadpool(site.sessions.load, request)
            ctx = Ctx(site, request, session, i18n.negotiate(request), as_json=wants_json(request))
            try:
                if request.method == "POST":
                    try:
                        await ctx.read_form()
                    except PageError as exc:
                        return await run_in_threadpool(
                            error_page, ctx, exc.status, exc.key, exc.detail
                        )
                return await run_in_threadpool(_answer, ctx, func, request.path_params, role)
            finally:
                for form in ctx.forms:
                    await form.close()

        return route

    return decorate


def wants_json(request: Request) -> bool:
    """Whether a page's JSON twin is asked for: ``/reports/7.json``, or an ``Accept``
    header whose first choice is ``application/json``."""
    if request.url.path.endswith(".json"):
        return True
    accept = request.headers.get("accept", "")
    return accept.split(",")[0].split(";")[0].strip().lower() == "application/json"


def _answer(
    ctx: Ctx, func: Callable[..., Response], params: dict[str, Any], role: Role
) -> Response:
    """Check the page's role, run its handler (in a worker thread) and turn its errors
    into pages."""
    try:
        if role == "user":
            ctx.need_user()
        elif role == "analyst":
            ctx.need_analyst()
        return func(ctx, **params)
    except LoginRequired:
        if ctx.as_json:  # a JSON client cannot follow a sign-in form
            return error_page(ctx, 401, "login_required")
        return ctx.redirect("/login?next=" + quote(ctx.here(), safe="/"))
    except TodokedeError as exc:
        return answer_error(ctx, exc)


def answer_error(ctx: Ctx, exc: TodokedeError) -> Response:
    """The error page (or its JSON) of ``exc``, by the one table of ``status``."""
    code, key = status.answer(exc)
    if isinstance(exc, PageError):
        detail = exc.detail
    elif isinstance(exc, StoreError) and not isinstance(exc, NotFound):
        detail = status.message(exc)
    else:
        detail = str(exc)
    return error_page(ctx, code, key, detail)


def error_page(
    ctx: Ctx, status: int, key: str, detail: str | None = None, heading: str | None = None
) -> Response:
    if ctx.as_json:
        return ctx.json({"error": ctx.t(key), "detail": detail}, status)
    return ctx.render(
        "error.html",
        status=status,
        message=ctx.t(key),
        detail=detail,
        heading=ctx.t(heading) if heading else None,
    )


# Errors that happen outside any page handler: no such path, a method the path does not
# take, an unexpected exception.
_BARE: dict[int, tuple[str, str | None]] = {
    404: ("page_not_found_text", "page_not_found"),
    405: ("method_not_allowed", None),
    500: ("internal_error", None),
}
_LAST_RESORT = (
    '<!doctype html><html><head><meta charset="utf-8"><title>Error</title></head>'
    '<body><h1>エラー / Error</h1><p><a href="/">todokede</a></p></body></html>'
)


def bare_error_page(
    site: Site, request: Request, status: int, headers: dict[str, str] | None = None
) -> Response:
    """The site's error page (in the reader's language, in the site's layout) for an
    error no page handler caught. Never raises: if even that fails, a static page."""
    key, heading = _BARE.get(status, ("error", None))
    try:
        ctx = Ctx(site, request, site.sessions.load(request), i18n.negotiate(request))
        response: Response = error_page(ctx, status, key, heading=heading)
    except Exception:  # the last line of defence must not fail
        response = HTMLResponse(_LAST_RESORT, status_code=status)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def local_path(target: str | None, default: str = "/") -> str:
    """A redirect target only if it is a path on this site (no //host, no scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target

"""The center's ASGI app: ``create_app(store)`` gives the JSON API (``/api``, OpenAPI at
``/openapi.json``) and the HTML pages.

Every error reaches the client as JSON with a status below 500 and, when it concerns one
field, that field's path: ``{"error": "...", "field": "reporter.email"}``. Bodies over
``max_body`` bytes are refused with 413 before anything parses them. Every API answer,
error or not, carries the pages' security headers, ``Cache-Control: no-store`` (reports
hold personal data) and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todokede import __version__
from todokede.center.store import Store
from todokede.center.web import api, api_months, status
from todokede.center.web.writer import BatchWriter
from todokede.errors import InputError, NotFound, StoreError, TodokedeError, Withdrawn

MAX_BODY = 4 * 1024 * 1024  # bytes: a report with long log excerpts fits many times over

log = logging.getLogger("todokede.center")


def create_app(
    store: Store, *, max_body: int = MAX_BODY, today: Callable[[], date] | None = None
) -> FastAPI:
    """The center's app over ``store``: API, OpenAPI, then the HTML pages. ``today``
    is the center's calendar (which months have closed and may be published)."""
    app = FastAPI(
        title="todokede center",
        version=__version__,
        description=(
            "Reports of unauthorized computer access (不正アクセス届出): submit, triage, "
            "publish. Authenticate with `Authorization: Bearer TOKEN`."
        ),
        openapi_url="/openapi.json",
        docs_url=None,  # served by the pages, from the package (see routes.ROUTES)
        redoc_url=None,
    )
    app.state.store = store
    app.state.today = today or (lambda: datetime.now(UTC).date())
    app.state.writer = BatchWriter(store)
    app.add_middleware(BodyLimit, max_body=max_body)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so it sees every answer
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(TodokedeError, _todokede_error)
    app.add_exception_handler(Exception, _internal_error)
    assert api_months.router is api.router  # its routes are on the one router
    app.include_router(api.router)

    from todokede.center.web import routes

    app.state.site = routes.install(app, store)
    return app


def from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` (several workers): the database from
    ``TODOKEDE_DB``."""
    from todokede.settings import database_url

    return create_app(Store.open(database_url()))


# -- errors ------------------------------------------------------------------------------


def error(status: int, message: str, field: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": message, "field": field, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def field_path(loc: Sequence[int | str]) -> str | None:
    """``("body", "systems", 0, "os")`` -> ``"systems[0].os"``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or None


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if errors and errors[0].get("type") == "json_invalid":
        detail = str((errors[0].get("ctx") or {}).get("error", "")) or "cannot parse"
        pos = errors[0]["loc"][-1] if errors[0].get("loc") else None
        at = f" (at byte {pos})" if isinstance(pos, int) else ""
        return error(400, f"malformed JSON: {detail}{at}", None)
    items = [{"field": field_path(e.get("loc", ())), "error": _message(e)} for e in errors[:50]]
    first = items[0] if items else {"field": None, "error": "invalid request"}
    # A path that names no possible record (/api/reports/None, an id past the largest)
    # names nothing that exists: 404, with the part of the path at fault.
    status = 404 if errors and all(e.get("loc", ("",))[0] == "path" for e in errors) else 422
    return error(status, str(first["error"]), first["field"], errors=items)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed(request) or headers.get("Allow", "")
    if not _is_api(request):
        return await _page_error(request, exc.status_code, headers)
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 400 and message == "There was an error parsing the body":
        message = "the body is not readable JSON (bad encoding or nested too deeply)"
    response = error(exc.status_code, message)
    response.headers.update(headers)
    return response


def _allowed(request: Request) -> str:
    """Every method the path takes. Starlette names only those of the first route whose
    path matches, and here each method is a route of its own: ask each route."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    methods = [
        m
        for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes)
    ]
    return ", ".join(methods)


async def _todokede_error(request: Request, exc: Exception) -> Response:
    """An error the product raised on purpose: the status of the one table (pages and
    API alike), as JSON under ``/api``, else as the site's error page."""
    assert isinstance(exc, TodokedeError)
    code, _key = status.answer(exc)
    if isinstance(exc, StoreError) and not isinstance(exc, NotFound):
        log.error("store error on %s %s: %s", request.method, request.url.path, exc)
    if not _is_api(request):
        return await _page_error(request, code)
    field = exc.field if isinstance(exc, InputError) else None
    if isinstance(exc, Withdrawn):
        return error(code, status.message(exc), field, reason=exc.reason)
    return error(code, status.message(exc), field)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    if not _is_api(request):
        return await _page_error(request, 500)
    return error(500, "internal error")


async def _page_error(
    request: Request, status: int, headers: Mapping[str, str] | None = None
) -> Response:
    """Pages get the site's HTML error page; the API keeps its JSON errors."""
    from todokede.center.web.site import bare_error_page

    site = getattr(request.app.state, "site", None)
    if site is None or status in (204, 304):
        return Response(status_code=status, headers=dict(headers or {}))
    return await run_in_threadpool(bare_error_page, site, request, status, dict(headers or {}))


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api") or path == "/openapi.json"


# -- headers ------------------------------------------------------------------------------


class SecurityHeaders:
    """Give every API answer (``/api``, ``/openapi.json``) the pages' security headers,
    and every other answer at least ``nosniff``; a header a handler set is kept."""

    def __init__(self, app: ASGIApp) -> None:
        from todokede.center.web.site import SECURITY_HEADERS

        self.app = app
        self.api = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        self.other = [(b"x-content-type-options", b"nosniff")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        extra = self.api if path.startswith("/api") or path == "/openapi.json" else self.other

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra if k not in have]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- body limit --------------------------------------------------------------------------


class BodyLimit:
    """Refuse request bodies over ``max_body`` bytes with 413, whether announced by
    Content-Length or streamed chunked, before the app reads them."""

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                too_big = False
            if too_big:
                await self._refuse(scope, receive, send)
                return
        # Read the body here (the app would read it whole anyway), counting as we go.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error(413, f"the body is larger than {self.max_body} bytes")
        await response(scope, receive, send)

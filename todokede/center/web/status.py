"""One table from exception to HTTP answer, for the pages and the API alike.

Each row: the exception class, the status, and the key of the message the error page
shows (``i18n``); the first row whose class the error is an instance of wins, so
subclasses come before their bases. The API answers ``{"error", "field"}`` with the same
status. A ``PageError`` carries its own status and key.
"""

from __future__ import annotations

from todokede.errors import (
    AccessDenied,
    ConfigError,
    Conflict,
    InputError,
    LoginRequired,
    NotDraft,
    NotFound,
    PageError,
    StoreError,
    TodokedeError,
    Unauthenticated,
    UnsupportedMedia,
    Withdrawn,
)

TABLE: tuple[tuple[type[TodokedeError], int, str], ...] = (
    (LoginRequired, 401, "login_required"),
    (Unauthenticated, 401, "login_required"),
    (AccessDenied, 403, "forbidden"),
    (Withdrawn, 410, "withdrawn_text"),
    (NotFound, 404, "not_found"),
    (NotDraft, 409, "not_draft"),
    (Conflict, 409, "conflict"),
    (UnsupportedMedia, 415, "bad_input"),
    (InputError, 422, "bad_input"),
    (StoreError, 503, "unavailable"),
    (ConfigError, 503, "unavailable"),
    (TodokedeError, 400, "error"),
)


def answer(exc: TodokedeError) -> tuple[int, str]:
    """The HTTP status and the page's message key for ``exc``."""
    if isinstance(exc, PageError):
        return exc.status, exc.key
    for cls, status, key in TABLE:
        if isinstance(exc, cls):
            return status, key
    return 400, "error"  # not reached: TodokedeError is the table's last row


def message(exc: TodokedeError) -> str:
    """What the answer says: an input error's own message (its field apart), else the
    error's text. A store failure says no more than that the store is unavailable."""
    if isinstance(exc, StoreError) and not isinstance(exc, NotFound):
        return "the center's database is unavailable; try again later"
    if isinstance(exc, InputError):
        return exc.message
    return str(exc)

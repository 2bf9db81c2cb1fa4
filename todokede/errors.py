"""The one exception tree of todokede.

    TodokedeError                 base: every error the product raises on purpose
    ├── InputError                bad input from a user or a file; knows where (source, line, field)
    │   ├── RuleError             a hosts.allow/hosts.deny problem
    │   ├── LogError              a log that cannot be read at all (bad lines are only counted)
    │   ├── ReportError           a report document that does not validate
    │   ├── UnsupportedMedia      a body in a media type the endpoint does not take
    │   └── Conflict              well-formed, but the stored records refuse it (a broken link)
    │       └── NotDraft          a report that was sent: its content can no longer change
    ├── ConfigError               bad settings or TOML configuration
    ├── MissingExtra              the command needs an optional part that is not installed
    ├── ProbeError                a probe could not check (network failure, timeout, garbage)
    ├── ActionError               a guard action (nft, a command hook) failed
    ├── StoreError                the database failed or is not reachable
    │   └── NotFound              no such record
    │       └── Withdrawn         a published month that was withdrawn (HTTP 410)
    ├── Unauthenticated           no valid credentials (an API token)
    │   └── LoginRequired         a page that needs a signed-in user
    ├── AccessDenied              the caller's role does not allow this
    └── PageError                 a page's own answer: an HTTP status and a message key

Errors become messages only at the CLI and HTTP boundaries: the CLI prints them
(``todokede.cli``), the center's pages and API answer them with the status of one table
(``todokede.center.web.status``).
"""

from __future__ import annotations

from datetime import datetime


class TodokedeError(Exception):
    """Base of every error todokede raises on purpose."""


class InputError(TodokedeError):
    """Bad input. ``source``/``line``/``field`` say where, when known."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.source is not None:
            where.append(self.source if self.line is None else f"{self.source}, line {self.line}")
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {self.field}")
        return f"{': '.join(where)}: {self.message}" if where else self.message


class RuleError(InputError):
    """A problem in hosts.allow / hosts.deny."""


class LogError(InputError):
    """A log that cannot be opened or decoded at all."""


class ReportError(InputError):
    """A report document that does not validate."""


class Conflict(InputError):
    """Well-formed input the stored records refuse: a link to a record that does not
    exist, or from a record to itself; withdrawing a month withdrawn already."""


class NotDraft(Conflict):
    """The report has been sent: its content can no longer be changed (add to it)."""


class UnsupportedMedia(InputError):
    """The body is not in a media type the endpoint takes (the API takes JSON)."""


class ConfigError(TodokedeError):
    """Bad settings."""


# import names of the ``report`` extra's libraries (the ``center`` extra includes it)
REPORT_MODULES = frozenset({"pydantic", "pydantic_core"})


class MissingExtra(TodokedeError):
    """An extra's dependencies are not installed: the ``center`` (web, store, publication) or
    ``report`` (drafting and submitting reports: pydantic).

    The core (rules, wrapper, scanner, probes, guard) installs with click and rich only, so a
    server that only guards and scans carries neither a web stack nor pydantic; ``module`` is
    the import that failed."""

    def __init__(self, module: str, extra: str = "center") -> None:
        self.module = module
        self.extra = extra
        what = "report drafting (pydantic)" if extra == "report" else "the center's dependencies"
        super().__init__(f"this command needs {what}: pip install 'todokede[{extra}]'")


class ProbeError(TodokedeError):
    """A probe could not check: the server could not be reached or answered nonsense."""


class ActionError(TodokedeError):
    """A guard action could not be carried out (nft refused, a command hook failed)."""


class StoreError(TodokedeError):
    """The database failed or could not be reached."""


class NotFound(StoreError):
    """No such record."""


class Withdrawn(NotFound):
    """A month whose publication was withdrawn: a notice is shown in its place."""

    def __init__(self, message: str, *, month: str, at: datetime, reason: str | None) -> None:
        super().__init__(message)
        self.month = month
        self.at = at
        self.reason = reason


class AccessDenied(TodokedeError):
    """The caller's role does not allow this."""


class Unauthenticated(TodokedeError):
    """No valid credentials: no bearer token, or an unknown or revoked one."""


class LoginRequired(Unauthenticated):
    """A page that needs a signed-in user: the pages answer with the sign-in form."""

    def __init__(self, message: str = "sign in first") -> None:
        super().__init__(message)


class PageError(TodokedeError):
    """A page's own answer where no other error says it: an HTTP status and the key of
    the message the error page shows (``center.web.i18n``), with an optional detail."""

    def __init__(self, status: int, key: str, detail: str | None = None) -> None:
        super().__init__(detail or key)
        self.status = status
        self.key = key
        self.detail = detail

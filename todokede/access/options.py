"""hosts_options(5): the option field of a matched rule, parsed, validated and %-expanded
as libwrap's process_options() does (Debian 7.6.q, which adds ``aclexec``).

Nothing is executed here: ``spawn``, ``twist``, ``setenv``, ``nice``, ``umask`` and friends
come back as :class:`Option` values for the caller (``todokede wrap``) to apply. Two options
act during matching and go through the source: ``aclexec`` (its command's exit status is
part of the verdict) and ``rfc931`` (which looks the user up at once).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
from dataclasses import dataclass
from typing import Literal, Protocol, cast

from todokede.access.patterns import fold
from todokede.access.table import WHITESPACE, split_at

NEED_ARG, USE_LAST, OPT_ARG, EXPAND_ARG = 2, 4, 8, 16
USE_ARG = NEED_ARG | OPT_ARG
RFC931_TIMEOUT = 10.0  # libwrap's default, seconds

OPTIONS: dict[str, int] = {
    "user": NEED_ARG,
    "group": NEED_ARG,
    "umask": NEED_ARG,
    "linger": NEED_ARG,
    "keepalive": 0,
    "spawn": NEED_ARG | EXPAND_ARG,
    "twist": NEED_ARG | EXPAND_ARG | USE_LAST,
    "rfc931": OPT_ARG,
    "setenv": NEED_ARG | EXPAND_ARG,
    "nice": OPT_ARG,
    "severity": NEED_ARG,
    "allow": USE_LAST,
    "deny": USE_LAST,
    "banners": NEED_ARG,
    "aclexec": NEED_ARG | EXPAND_ARG,
}

FACILITIES = {
    "kern": 0,
    "user": 8,
    "mail": 16,
    "daemon": 24,
    "auth": 32,
    "lpr": 48,
    "news": 56,
    "uucp": 64,
    "cron": 72,
    **{f"local{i}": 128 + 8 * i for i in range(8)},
}
SEVERITIES = {
    "emerg": 0,
    "alert": 1,
    "crit": 2,
    "err": 3,
    "warning": 4,
    "notice": 5,
    "info": 6,
    "debug": 7,
}

_OK = re.compile(r"[^0-9!@%\-_=+:,./a-zA-Z]")
_INT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+\Z")
_OCT = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-7]+)\Z")


@dataclass(frozen=True, slots=True)
class Option:
    """One option of the matched rule. ``name`` is lower case; ``value`` is %-expanded
    for the options that libwrap expands (spawn, twist, setenv, aclexec)."""

    name: str
    value: str | None
    spelled: str = ""  # the name as written in the file (tcpdmatch shows it so)

    def __str__(self) -> str:
        return f"{self.spelled or self.name} {self.value or ''}".rstrip()


class Expander(Protocol):
    """What %-expansion may ask about a request (see :func:`expand_percent`)."""

    def expansion(self, letter: str) -> str | None: ...


def percent_x(template: str, source: Expander, warn: list[str] | None = None) -> str:
    """libwrap's percent_x(): ``%a %A %c %d %h %H %n %N %p %r %R %s %u %%``.

    Expanded values have every character outside ``[A-Za-z0-9!@%-_=+:,./]`` replaced by
    ``_`` (they may come from DNS or ident). An unknown ``%x`` expands to nothing and adds
    a warning to ``warn``.
    """
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch == "%" and i + 1 < n:
            letter = template[i + 1]
            i += 2
            value = "%" if letter == "%" else source.expansion(letter)
            if value is None:
                if warn is not None:
                    warn.append(f"unrecognized %{letter}")
                value = ""
            out.append(_OK.sub("_", value))
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def fields(text: str) -> tuple[list[str], bool]:
    """get_field(): split at ':' with '\\:' as an escaped colon. Also: does the text end in
    a bare ':' (libwrap warns 'rule ends in ":"')."""
    out: list[str] = []
    cur: list[str] = []
    i, n = 0, len(text)
    ends_in_colon = False
    while i < n:
        ch = text[i]
        if ch == ":":
            out.append("".join(cur))
            cur = []
            i += 1
            if i == n:
                ends_in_colon = True
                return out, ends_in_colon
            continue
        if ch == "\\" and i + 1 < n and text[i + 1] == ":":
            i += 1
            ch = ":"
        cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out, ends_in_colon


def split_option(field: str) -> tuple[str, str | None]:
    """Name and value of one option field, one '=' between them being optional."""
    opt = field.strip(WHITESPACE)
    k = 0
    while k < len(opt) and opt[k] not in "= \t\r\n":
        k += 1
    key, value = opt[:k], opt[k:]
    if value and value[0] != "=":
        value = value[1:].lstrip(WHITESPACE)
    if value.startswith("="):
        value = value[1:].lstrip(WHITESPACE)
    return key, (value or None)


Verdict = Literal["allow", "deny", "twist", "error"]
Event = tuple[str, str]  # (kind, text): kind is option, warning, error or banner


@dataclass
class Outcome:
    options: list[Option]
    verdict: Verdict | None
    events: list[Event]


class OptionSource(Expander, Protocol):
    def daemon(self) -> str: ...

    def aclexec(self, command: str) -> None: ...

    def rfc931(self, timeout: float) -> None: ...


def process(text: str, source: OptionSource, *, dry_run: bool) -> Outcome:
    """Run libwrap's option processing for the option field ``text`` of a matched rule."""
    events: list[Event] = []
    options: list[Option] = []
    parts, ends_in_colon = fields(text)
    if ends_in_colon:
        events.append(("warning", 'rule ends in ":"'))

    def fail(message: str) -> Outcome:
        events.append(("error", message))
        return Outcome(options, "error", events)

    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        key, value = split_option(part)
        if not key:
            return fail("missing option name")
        name = fold(key)
        flags = OPTIONS.get(name)
        if flags is None:
            return fail(f'bad option name: "{key}"')
        if value is None and flags & NEED_ARG:
            return fail(f'option "{key}" requires value')
        if value is not None and not flags & USE_ARG:
            return fail(f'option "{key}" requires no value')
        if not last and flags & USE_LAST:
            return fail(f'option "{key}" must be at end')
        if value is not None and flags & EXPAND_ARG:
            warnings: list[str] = []
            value = percent_x(value, source, warnings).strip(WHITESPACE)
            events.extend(("warning", w) for w in warnings)
        events.append(("option", f"{key} {value or ''}"))
        option = Option(name, value, key)
        options.append(option)
        problem = check_value(option, dry_run=dry_run)
        if problem:
            return fail(problem)
        if name == "aclexec" and value is not None and not dry_run:
            source.aclexec(value)
        elif name == "rfc931":
            source.rfc931(float(int(value)) if value is not None else RFC931_TIMEOUT)
        if name == "banners" and value is not None:
            banner, warning = read_banner(value, source)
            if warning:
                events.append(("warning", warning))
            if banner:
                events.append(("banner", banner))
        if name in ("allow", "deny", "twist"):
            return Outcome(options, name, events)  # type: ignore[arg-type]
    return Outcome(options, None, events)


# Options whose processing depends on nothing but their text (not on the request, the
# dry run, or the system's users): a rule holding only these has the same outcome for
# every request it matches.
STATIC = frozenset({"allow", "deny", "severity", "keepalive", "linger", "umask", "nice"})


def static_outcome(text: str) -> Outcome | None:
    """The outcome of an option field that is the same for every request, else None."""
    for part in fields(text)[0]:
        key, _ = split_option(part)
        name = fold(key)
        if name in STATIC:
            continue
        if key and name in OPTIONS:
            return None
        break  # processing stops with an error here, whatever the request
    return process(text, cast(OptionSource, None), dry_run=False)  # never asked


def check_value(option: Option, *, dry_run: bool = False) -> str | None:
    """The error libwrap raises for an option's value, or None."""
    name, value = option.name, option.value
    if value is None:
        return None
    if name == "umask":
        m = _OCT.match(value)
        mask = (-1 if m and m.group(1) == "-" else 1) * int(m.group(2), 8) if m else 0
        if not m or (mask & 0xFFFFFFFF) & 0o777 != (mask & 0xFFFFFFFF):
            return f'bad umask value: "{value}"'
    elif name == "linger" and not _INT.match(value):
        return f'bad linger value: "{value}"'
    elif name == "rfc931" and (not _INT.match(value) or int(value) <= 0):
        return f'bad rfc931 timeout: "{value}"'
    elif name == "nice" and not _INT.match(value):
        return f'bad nice value: "{value}"'
    elif name == "severity":
        parts = split_at(value, ".")
        if parts is None:
            if fold(value) not in SEVERITIES:
                return f'bad syslog facility or severity: "{value}"'
        else:
            for word, table in ((parts[0], FACILITIES), (parts[1], SEVERITIES)):
                if fold(word) not in table:
                    return f'bad syslog facility or severity: "{word}"'
    elif name == "user":
        parts = split_at(value, ".")
        user, group = (value, None) if parts is None else parts
        if group is not None and _lookup_group(group) is None:
            return f'unknown group: "{group}"'
        if _lookup_user(user) is None:
            return f'unknown user: "{user}"'
        if group is None and dry_run:
            # Debian's libwrap calls setuid() before setgid() in a dry run, so the second
            # call always fails; tcpdmatch therefore denies every `user NAME` rule.
            return f"setgid({user}): Operation not permitted"
    elif name == "group" and _lookup_group(value) is None:
        return f'unknown group: "{value}"'
    return None


def _lookup_user(name: str) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid
    except (KeyError, ValueError):
        return None


def _lookup_group(name: str) -> int | None:
    try:
        return grp.getgrnam(name).gr_gid
    except (KeyError, ValueError):
        return None


def read_banner(directory: str, source: OptionSource) -> tuple[str | None, str | None]:
    """The banner text for the daemon (CRLF line ends, %-expanded), or a warning."""
    path = f"{directory}/{source.daemon()}"
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        try:
            os.stat(directory)
        except OSError as exc:
            return None, f"{directory}: {exc.strerror}"
        return None, None
    text = data.lstrip(b"\0").decode("latin-1")
    out: list[str] = []
    for line in re.split(r"(?<=\n)", text):
        if not line:
            continue
        line = line.split("\0", 1)[0]
        if line.endswith("\n"):
            line = line[:-1] + "\r\n"
        out.append(percent_x(line, source))
    return "".join(out), None

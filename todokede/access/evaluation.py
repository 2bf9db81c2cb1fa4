"""One request being evaluated: libwrap's request_info, with the client's name and the
RFC 931 user looked up lazily (only when a pattern, an expansion or an option needs them),
and the %-expansion of hosts_access(5).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from todokede.access import options as opts
from todokede.access.index import canonical4, plain6
from todokede.access.options import RFC931_TIMEOUT
from todokede.access.patterns import UNKNOWN, dot_quad, fold, known, parse_ip6
from todokede.access.resolve import Resolver, SystemResolver, verify_name

AclExec = Callable[[str], bool]
"""Runs an ``aclexec`` command (already %-expanded); True when it exited with status 0."""
Ident = Callable[[float], str | None]
"""Asks the client's RFC 931 server within the timeout; the user name, or None."""


@dataclass(frozen=True, slots=True)
class Request:
    """One connection to decide on. ``client_name=None`` means: look the name up (with
    the reverse+forward check) only if a rule needs it; ``"unknown"`` means it is unknown.
    ``client_user=None`` likewise: ask the ``ident`` callback of :meth:`Rules.decide`, if
    any, only when a rule needs the user. Ports are optional (Debian's numeric daemon
    patterns and ``%r``/``%R`` use them)."""

    daemon: str
    client_addr: str | None
    client_name: str | None = None
    client_user: str | None = None
    server_addr: str | None = None
    server_name: str | None = None
    pid: int | None = None
    client_port: int | None = None
    server_port: int | None = None


class HostInfo:
    """libwrap's host_info: address and name, the name looked up lazily."""

    __slots__ = ("_addr", "_c4", "_ip4", "_ip6", "_key", "_name", "_port", "_text", "ev")

    def __init__(
        self, ev: Evaluation, addr: str | None, name: str | None, port: int | None
    ) -> None:
        self.ev = ev
        self._text = UNKNOWN if addr is None or addr == "" else addr
        if addr is not None and addr[:7].lower() == "::ffff:" and "." in addr:
            # Debian matches IPv4-mapped addresses as IPv4; %a still shows them as given
            self._addr = addr[7:]
        else:
            self._addr = self._text
        self._name = name
        self._port = port
        self._key: str | None = None
        self._c4: int | bool | None = False
        self._ip4: int | bool | None = False
        self._ip6: int | bool | None = False

    def addr(self) -> str:
        return self._addr

    def key(self) -> str:
        """The address as the indexes compare it (case-folded)."""
        if self._key is None:
            self._key = self._addr.lower() if self._addr.isascii() else fold(self._addr)
        return self._key

    def canon4(self) -> int | None:
        """The address if it is a plain dotted quad (see index.canonical4)."""
        if self._c4 is False:
            self._c4 = canonical4(self._addr)
        return self._c4  # type: ignore[return-value,unused-ignore]

    def looked_up(self) -> str | None:
        """The name if it is known already (given, or looked up); never looks it up."""
        return self._name

    def name(self) -> str:
        if self._name is None:
            if fold(self._addr) == UNKNOWN:
                self._name = UNKNOWN
            else:
                self._name, warnings = verify_name(self.ev.resolver, self._addr)
                for w in warnings:
                    self.ev.warn(w)
        return self._name

    def text(self) -> str:
        """The address as given (what %a and %h show)."""
        return self._text

    def hostinfo(self) -> str:
        """eval_hostinfo(): the name if already known, else the address (no lookup)."""
        if self._name is None:
            return self._text
        return self._name if known(self._name) else self._text

    def ip4(self) -> int | None:
        if self._ip4 is False:
            plain = self.canon4()
            self._ip4 = plain if plain is not None else dot_quad(self._addr)
        return self._ip4  # type: ignore[return-value,unused-ignore]

    def ip6(self) -> int | None:
        if self._ip6 is False:
            plain = plain6(self._addr)
            self._ip6 = plain if plain is not None else parse_ip6(self._addr.split("%", 1)[0])
        return self._ip6  # type: ignore[return-value,unused-ignore]

    def port(self) -> int | None:
        if fold(self._addr) == UNKNOWN:
            return None
        return self._port if self._port is not None else None

    def warn(self, message: str) -> None:
        self.ev.warn(message)


class Evaluation:
    __slots__ = (
        "_aclexec",
        "_daemon",
        "_ident",
        "_server",
        "_user",
        "aclexec_failed",
        "client",
        "context",
        "events",
        "req",
        "resolver",
        "rfc931_timeout",
    )

    def __init__(
        self,
        req: Request,
        resolver: Resolver,
        aclexec: AclExec | None = None,
        ident: Ident | None = None,
    ) -> None:
        self.req = req
        self.resolver = resolver
        self._daemon = req.daemon
        self._aclexec = aclexec
        self._ident = ident
        self._user = req.client_user
        self.rfc931_timeout = RFC931_TIMEOUT
        # Debian's aclexec_matched: set by a failed aclexec, cleared by one that succeeds,
        # and (libwrap's bug, kept) looked at after every later rule that has options.
        self.aclexec_failed = False
        self.events: list[tuple[tuple[int, int, int], str, str]] = []
        # (table index, entry position, file label, line) of the rule being evaluated
        self.context: tuple[int, int, str, int] | None = None
        self.client = HostInfo(self, req.client_addr, req.client_name, req.client_port)
        self._server: HostInfo | None = None

    @property
    def server(self) -> HostInfo:
        if self._server is None:  # most rules never look at the server end
            r = self.req
            self._server = HostInfo(self, r.server_addr, r.server_name, r.server_port)
        return self._server

    def daemon(self) -> str:
        return self._daemon

    def user(self) -> str:
        """eval_user(): the RFC 931 user, asked for (once) on first use."""
        if self._user is None:
            found = self._ident(self.rfc931_timeout) if self._ident is not None else None
            self._user = found or UNKNOWN
        return self._user or UNKNOWN

    def known_user(self) -> str | None:
        """The user if already known; never asks (what eval_client() shows)."""
        user = self._user
        return user if user and fold(user) != UNKNOWN else None

    def rfc931(self, timeout: float) -> None:
        """The ``rfc931`` option: set the timeout, then look the user up."""
        self.rfc931_timeout = timeout
        self.user()

    def aclexec(self, command: str) -> None:
        """The ``aclexec`` option (only when the caller runs commands)."""
        if self._aclexec is not None:
            self.aclexec_failed = not self._aclexec(command)

    def label(self) -> str:
        """eval_client(): ``user@host`` or host, with what is known now."""
        user = self.known_user()
        host = self.client.hostinfo()
        return f"{user}@{host}" if user else host

    def warn(self, message: str) -> None:
        if self.context is None:
            self.events.append(((-1, 0, 0), "warning", message))
        else:
            t_index, pos, label, line = self.context
            self.events.append(((t_index, pos, 0), "warning", f"{label}, line {line}: {message}"))

    def expansion(self, letter: str) -> str | None:
        c, s = self.client, self.server
        if letter == "a":
            return c.text()
        if letter == "A":
            return s.text()
        if letter == "c":
            return self.label()
        if letter == "d":
            return self._daemon
        if letter == "h":
            return c.hostinfo()
        if letter == "H":
            return s.hostinfo()
        if letter == "n":
            return c.name()
        if letter == "N":
            return s.name()
        if letter == "p":
            return str(self.req.pid if self.req.pid is not None else os.getpid())
        if letter == "r":
            return str(self.req.client_port or 0)
        if letter == "R":
            return str(self.req.server_port or 0)
        if letter == "s":
            host = s.hostinfo()
            return f"{self._daemon}@{host}" if fold(host) != UNKNOWN else self._daemon
        if letter == "u":
            return self.user()
        return None


def expand_percent(
    template: str,
    request: Request,
    *,
    resolver: Resolver | None = None,
    warnings: list[str] | None = None,
) -> str:
    """libwrap's %-expansion of ``template`` for ``request`` (see hosts_access(5)).

    ``%n``/``%N`` look the name up (reverse+forward) through ``resolver``; unknown
    ``%x`` sequences expand to nothing and are reported in ``warnings``.
    """
    ev = Evaluation(request, resolver if resolver is not None else SystemResolver())
    return opts.percent_x(template, ev, warnings)

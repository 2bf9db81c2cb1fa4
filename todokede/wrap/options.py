"""hosts_options(5) on a live connection: what the matched rule asks the wrapper to do.

The engine hands over the matched rule's options, %-expanded for the request. This module
turns them into a :class:`Plan` (plain values) that the listener and the inetd mode carry
out. Shell commands (``spawn``, ``twist``) run only when the operator allowed commands;
otherwise the two harmless idioms that rule files use most are carried out without a
shell — ``twist /bin/echo MESSAGE`` sends the message, ``spawn /usr/bin/logger -t TAG MSG``
writes the log line — and anything else is logged as not run.
"""

from __future__ import annotations

import _socket
import contextlib
import shlex
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from todokede.errors import ConfigError
from todokede.wrap.tcpdlog import (
    ALLOW_PRIORITY,
    DENY_PRIORITY,
    FACILITIES,
    LEVELS,
    parse_severity,
)

RFC931_TIMEOUT = 10.0  # libwrap's default
_SHELL_SPECIALS = set("$`;&|<>(){}*?[]~#\\\n")
_ECHO = {"echo", "/bin/echo", "/usr/bin/echo"}
_LOGGER = {"logger", "/usr/bin/logger", "/bin/logger"}


@dataclass
class Plan:
    """The options of one decision, in the shape the wrapper acts on."""

    priority: int | None = None  # ``severity``: both the connect and the refused line
    rfc931: float | None = None  # ident lookup timeout
    spawn: list[str] = field(default_factory=list)
    twist: str | None = None
    keepalive: bool = False
    linger: int | None = None
    setenv: list[tuple[str, str]] = field(default_factory=list)
    umask: int | None = None
    nice: int | None = None
    user: str | None = None
    group: str | None = None
    aclexec: str | None = None
    verdict_option: bool = False  # an allow/deny option decides whatever aclexec says
    errors: list[str] = field(default_factory=list)

    @property
    def allow_priority(self) -> int:
        return ALLOW_PRIORITY if self.priority is None else self.priority

    @property
    def deny_priority(self) -> int:
        return DENY_PRIORITY if self.priority is None else self.priority


def aclexec_warning(plan: Plan) -> str | None:
    """Without ``--allow-commands`` an ``aclexec`` command is not run and its rule applies as
    if it succeeded; say so when the verdict depends on it (no ``allow``/``deny`` after it)."""
    if plan.aclexec is None or plan.verdict_option:
        return None
    return (
        "aclexec: command not run (needs --allow-commands), rule applied as if it "
        f"succeeded: {plan.aclexec}"
    )


def apply_socket_options(sock: _socket.socket | None, plan: Plan) -> None:
    """``keepalive`` and ``linger`` on the client's socket."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        if plan.keepalive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if plan.linger is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, plan.linger))


def _name_value(option: Any) -> tuple[str, str]:
    name = str(getattr(option, "name", "")).lower()
    value = getattr(option, "value", None)
    return name, "" if value is None else str(value)


def plan_options(options: Iterable[Any]) -> Plan:
    """Options (objects with ``name`` and ``value``) -> a :class:`Plan`.

    A value the wrapper cannot use is reported in ``errors`` and otherwise ignored: the
    engine already checked the rule's syntax, so this only catches values it passes on.
    """
    plan = Plan()
    for option in options:
        name, value = _name_value(option)
        try:
            _apply(plan, name, value.strip())
        except (ConfigError, ValueError) as exc:
            plan.errors.append(f"{name} option: {exc}")
    return plan


def _apply(plan: Plan, name: str, value: str) -> None:
    if name == "severity":
        plan.priority = parse_severity(value)
    elif name == "rfc931":
        plan.rfc931 = float(value) if value else RFC931_TIMEOUT
    elif name == "spawn":
        plan.spawn.append(value)
    elif name == "twist":
        plan.twist = value
    elif name == "group":
        plan.group = value
    elif name == "aclexec":
        plan.aclexec = value
    elif name in ("allow", "deny"):
        plan.verdict_option = True
    elif name == "keepalive":
        plan.keepalive = True
    elif name == "linger":
        plan.linger = int(value)
    elif name == "setenv":
        var, _, val = value.partition(" ")
        if not var:
            raise ValueError("missing variable name")
        plan.setenv.append((var, val.lstrip()))
    elif name == "umask":
        plan.umask = int(value, 8)
    elif name == "nice":
        plan.nice = int(value) if value else 10
    elif name == "user":
        plan.user = value
    # banners: the engine reads them; the rest is not an option of hosts_options(5).


def _plain_argv(command: str) -> list[str] | None:
    """``command`` split as sh would, if sh would expand, redirect or chain nothing in it."""
    quote = ""
    for ch in command:
        if quote == "'":
            if ch == "'":
                quote = ""
        elif quote == '"':
            if ch == '"':
                quote = ""
            elif ch in "$`\\":
                return None
        elif ch in "\"'":
            quote = ch
        elif ch in _SHELL_SPECIALS:
            return None
    if quote:
        return None
    return shlex.split(command)


def echo_message(command: str) -> bytes | None:
    """What ``/bin/echo ...`` would print, or ``None`` if ``command`` is not a plain echo."""
    argv = _plain_argv(command)
    if not argv or argv[0] not in _ECHO:
        return None
    newline = True
    args = argv[1:]
    if args and args[0] == "-n":
        newline, args = False, args[1:]
    if args and args[0].startswith("-") and args[0] != "-":
        return None  # -e, -E, --help...: leave them to the real echo
    if argv[0] == "echo" and "\\" in command:
        return None  # sh's built-in echo interprets backslash escapes
    return (" ".join(args) + ("\n" if newline else "")).encode("latin-1", "replace")


@dataclass(frozen=True)
class LoggerCall:
    priority: int
    tag: str
    message: str


def logger_call(command: str) -> LoggerCall | None:
    """The log line ``logger [-i] [-t TAG] [-p PRI] MSG...`` would write, if it is one."""
    argv = _plain_argv(command)
    if not argv or argv[0] not in _LOGGER:
        return None
    tag, priority = "logger", FACILITIES["user"] << 3 | LEVELS["notice"]
    words: list[str] = []
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-t", "--tag"):
            tag = next(args, tag)
        elif arg in ("-p", "--priority"):
            try:
                priority = parse_severity(next(args, ""), default_facility=FACILITIES["user"])
            except ConfigError:
                return None
        elif arg == "-i":
            continue
        elif arg.startswith("-") and not words:
            return None  # an option we do not emulate: leave it to the real logger
        else:
            words.append(arg)
    return LoggerCall(priority, tag, " ".join(words))

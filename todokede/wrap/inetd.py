"""inetd mode: what tcpd does under inetd, xinetd or systemd socket activation.

The connection is already accepted and sits on standard input (or on fd 3 when systemd
passes it with ``LISTEN_FDS``). Decide, log, carry out the options, then either replace
this process with the real daemon (its standard input and output are the connection) or
refuse: log, hold the client ``refuse_delay`` seconds and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import grp
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from todokede.access import Rules, SystemResolver
from todokede.errors import ConfigError
from todokede.wrap.commands import run_aclexec
from todokede.wrap.lookup import CachingResolver, Resolver, ident_user
from todokede.wrap.options import (
    Plan,
    aclexec_warning,
    apply_socket_options,
    echo_message,
    logger_call,
    plan_options,
)
from todokede.wrap.request import banners, decide, make_request, steps, unmap
from todokede.wrap.tcpdlog import Sink, TcpdLog

SD_LISTEN_FDS_START = 3


def activated_fds() -> list[int]:
    """File descriptors systemd passed to this process (``LISTEN_FDS``/``LISTEN_PID``).

    The variables are removed so that a daemon exec'd later does not take them as its own.
    """
    try:
        pid = int(os.environ.get("LISTEN_PID", ""))
        count = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)
    if pid != os.getpid() or count <= 0:
        return []
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))


def activated_sockets() -> list[socket.socket]:
    """Listening sockets handed over by systemd (``Accept=no``), ready for the listener."""
    out = []
    for fd in activated_fds():
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        out.append(sock)
    return out


def run_inetd(
    command: Sequence[str],
    sink: Sink,
    *,
    daemon: str | None = None,
    rules_dir: Path = Path("/etc"),
    allow_commands: bool = False,
    refuse_delay: float = 5.0,
    ident_timeout: float | None = None,
    dns_timeout: float = 5.0,
    command_timeout: float = 30.0,
    resolver: Resolver | None = None,
    fd: int | None = None,
) -> int:
    """Guard one connection and exec ``command`` for it; returns an exit status otherwise."""
    if not command:
        raise ConfigError("--inetd needs the daemon to run: todokede wrap --inetd -- PROGRAM ARGS")
    if fd is None:
        fds = activated_fds()
        fd = fds[0] if fds else 0
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError as exc:
        raise ConfigError(f"--inetd: fd {fd} is not a socket ({exc.strerror})") from exc
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise OSError(0, "not a TCP/IP socket")
        peer = sock.getpeername()
        local = sock.getsockname()
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"--inetd: fd {fd} is not a connected socket ({exc.strerror}); "
            "run from inetd, xinetd or a systemd socket unit with Accept=yes"
        ) from exc
    name = daemon or os.path.basename(command[0])
    log = TcpdLog(sink, name, os.getpid())
    cached = CachingResolver(resolver or SystemResolver(), timeout=dns_timeout)
    rules = Rules.load(rules_dir, resolver=cached, full_paths=True)
    client_addr, client_port = unmap(str(peer[0])), int(peer[1])
    server_addr, server_port = unmap(str(local[0])), int(local[1])
    request = make_request(
        name, (client_addr, client_port), (server_addr, server_port), os.getpid()
    )

    def ident(timeout: float) -> str | None:
        return asyncio.run(
            ident_user((client_addr, client_port), (server_addr, server_port), timeout=timeout)
        )

    if ident_timeout:
        request = replace(request, client_user=ident(ident_timeout) or "unknown")
    # As tcpd: aclexec commands get the connection as stdin/stdout/stderr.
    aclexec = (
        functools.partial(run_aclexec, fd=fd, timeout=command_timeout, log=log.warning)
        if allow_commands
        else None
    )
    decision = decide(rules, cached, request, blocking=True, aclexec=aclexec, ident=ident)
    assert decision is not None
    plan = plan_options(decision.options)
    cached.close()
    for kind, text in steps(decision):
        if kind == "spawn":
            _spawn(log, text, allow_commands, command_timeout)
        elif kind == "info":
            log.info(text)
        elif kind == "error":
            log.error(text)
        else:
            log.warning(text)
    for error in plan.errors:
        log.error(error)
    if not allow_commands and (unsupported := aclexec_warning(plan)) is not None:
        log.warning(unsupported)
    label = decision.client
    with sock:
        banner = banners(decision)
        if banner:
            with contextlib.suppress(OSError):
                sock.sendall(banner)
        if plan.twist is not None or decision.access == "delegated":
            return _twist(log, sock, fd, plan, label, allow_commands)
        if decision.access != "granted":
            log.refused(label, client_addr, plan.deny_priority)
            time.sleep(refuse_delay)
            return 0
        apply_socket_options(sock, plan)
    problem = _process_options(plan)
    if problem is not None:
        log.error(problem)  # as libwrap: a failed option refuses the connection
        return 1
    log.connect(label, client_addr, plan.allow_priority)
    program = command[0] if "/" in command[0] else shutil.which(command[0]) or command[0]
    if fd != 0:
        os.dup2(fd, 0)
    if fd != 1:
        os.dup2(fd, 1)
    try:
        os.execv(program, list(command))  # noqa: S606 - replacing ourselves is the point
    except OSError as exc:
        log.error(f"cannot execute {program}: {exc.strerror}")
        return 1
    return 0  # not reached


def _spawn(log: TcpdLog, command: str, allow: bool, timeout: float) -> None:
    if not allow:
        call = logger_call(command)
        if call is not None:
            log.raw(call.priority, call.tag, call.message)
        else:
            log.warning(f"spawn: command not run (needs --allow-commands): {command}")
        return
    try:
        subprocess.run(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        log.warning(f"spawn: killed after {timeout:g}s: {command}")


def _twist(log: TcpdLog, sock: socket.socket, fd: int, plan: Plan, label: str, allow: bool) -> int:
    command = plan.twist or ""
    log.twist(label, command, plan.deny_priority)
    if allow:
        for target in (0, 1, 2):
            if fd != target:
                os.dup2(fd, target)
        try:
            os.execv("/bin/sh", ["sh", "-c", command])  # noqa: S606 - twist replaces the daemon
        except OSError as exc:
            log.error(f"cannot execute /bin/sh: {exc.strerror}")
            return 1
    message = echo_message(command)
    if message is None:
        log.warning(f"twist: command not run (needs --allow-commands): {command}")
    else:
        with contextlib.suppress(OSError):
            sock.sendall(message)
    return 0


def _process_options(plan: Plan) -> str | None:
    """setenv, umask, nice, group and user: they shape the daemon about to be exec'd."""
    for var, value in plan.setenv:
        os.environ[var] = value
    if plan.umask is not None:
        os.umask(plan.umask)
    if plan.nice is not None:
        with contextlib.suppress(OSError):
            os.nice(plan.nice)
    if plan.group:
        try:
            os.setgid(grp.getgrnam(plan.group).gr_gid)
        except (KeyError, OSError) as exc:
            return f"group option {plan.group!r}: {exc}"
    if plan.user:
        user, _, group = plan.user.partition(".")
        try:
            entry = pwd.getpwnam(user)
            gid = entry.pw_gid
            if group:
                gid = grp.getgrnam(group).gr_gid
            os.setgid(gid)
            os.initgroups(entry.pw_name, gid)
            os.setuid(entry.pw_uid)
        except (KeyError, OSError) as exc:
            return f"user option {plan.user!r}: {exc}"
    return None

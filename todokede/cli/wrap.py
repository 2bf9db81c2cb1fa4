"""``todokede wrap``: the thin shell over :mod:`todokede.wrap`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from todokede.errors import ConfigError
from todokede.wrap.proxy import VERSIONS

if TYPE_CHECKING:
    from todokede.wrap import WrapConfig
    from todokede.wrap.lookup import Resolver
    from todokede.wrap.tcpdlog import Sink


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--listen",
    "listen",
    multiple=True,
    metavar="HOST:PORT",
    help="Address to accept connections on ([::]:143 for IPv6; repeatable).",
)
@click.option("--to", "backend", metavar="HOST:PORT", help="The real service to forward to.")
@click.option(
    "--daemon",
    metavar="NAME",
    help="Daemon name the rules and log lines use (inetd mode: the program's name).",
)
@click.option(
    "--rules-dir",
    # must exist: a mistyped directory would silently grant everything (no files = no rules)
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("/etc"),
    show_default=True,
    help="Directory holding hosts.allow and hosts.deny.",
)
@click.option(
    "--log",
    "log_target",
    default="syslog",
    show_default=True,
    metavar="FILE|syslog",
    help="Log to syslog (facility daemon) or append syslog-style lines to FILE.",
)
@click.option(
    "--syslog-socket",
    default="/dev/log",
    show_default=True,
    metavar="PATH",
    help="The syslog datagram socket used with --log syslog.",
)
@click.option(
    "--hosts-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Resolve names from this hosts(5) file instead of the system resolver.",
)
@click.option(
    "--refuse-delay",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds a refused client is held before the close (tcpd: 5).",
)
@click.option("--connect-timeout", type=float, default=10.0, show_default=True)
@click.option(
    "--shutdown-grace",
    type=float,
    default=10.0,
    show_default=True,
    help="On SIGTERM/SIGINT, seconds live sessions get to finish.",
)
@click.option("--idle-timeout", type=float, help="Close sessions idle this many seconds.")
@click.option("--max-connections", type=int, default=4096, show_default=True)
@click.option("--max-per-source", type=int, default=0, help="Per client address (0: no limit).")
@click.option(
    "--ident-timeout",
    type=float,
    help="Ask every client's identd (RFC 1413) with this timeout (default: only when a rule "
    "needs the user: user@host, %u, rfc931).",
)
@click.option("--dns-timeout", type=float, default=5.0, show_default=True)
@click.option(
    "--allow-commands",
    is_flag=True,
    help="Run spawn, twist and aclexec shell commands (without it only echo/logger are "
    "emulated and aclexec is taken as succeeded).",
)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Worker processes sharing the listening sockets (limits apply per worker).",
)
@click.option(
    "--proxy-protocol",
    type=click.Choice(VERSIONS),
    help="Send the backend a PROXY protocol header (HAProxy's v1 text or v2 binary) naming "
    "the client, so that it logs and limits the client's address, not wrap's.",
)
@click.option(
    "--inetd",
    is_flag=True,
    help="inetd mode: the connection is on stdin (or systemd's fd 3); exec PROGRAM.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def wrap(
    listen: tuple[str, ...],
    backend: str | None,
    daemon: str | None,
    rules_dir: Path,
    log_target: str,
    syslog_socket: str,
    hosts_file: Path | None,
    refuse_delay: float,
    connect_timeout: float,
    shutdown_grace: float,
    idle_timeout: float | None,
    max_connections: int,
    max_per_source: int,
    ident_timeout: float | None,
    dns_timeout: float,
    allow_commands: bool,
    workers: int,
    proxy_protocol: str | None,
    inetd: bool,
    command: tuple[str, ...],
) -> None:
    """Guard a TCP service with hosts.allow/hosts.deny, logging exactly as tcpd.

    Each connection is decided by the rules of `todokede access`; a granted one is
    proxied to --to, a refused one is logged and closed. Rule files are re-read when
    they change. SIGTERM or SIGINT stops accepting and lets sessions finish.

    \b
    Example:
      todokede wrap --listen 0.0.0.0:143 --listen [::]:143 --to 127.0.0.1:1143 \\
          --daemon imapd --rules-dir /etc --log /var/log/todokede-wrap.log
      # Dovecot with haproxy = yes on its listener sees the clients' addresses:
      todokede wrap --listen 0.0.0.0:143 --to 127.0.0.1:10143 --daemon imapd \\
          --proxy-protocol v2
      # inetd.conf / xinetd `server_args`, as tcpd:
      todokede wrap --inetd -- /usr/sbin/imapd
    """
    from todokede.wrap import open_sink

    resolver: Resolver | None = None
    if hosts_file is not None:
        from todokede.access import HostsFileResolver

        resolver = HostsFileResolver(hosts_file)
    if inetd:
        if proxy_protocol:
            raise click.UsageError("--proxy-protocol is for a --to backend, not --inetd")
        from todokede.wrap import run_inetd

        sink = open_sink(log_target, syslog_socket=syslog_socket)
        try:
            status = run_inetd(
                list(command),
                sink,
                daemon=daemon,
                rules_dir=rules_dir,
                allow_commands=allow_commands,
                refuse_delay=refuse_delay,
                ident_timeout=ident_timeout,
                dns_timeout=dns_timeout,
                resolver=resolver,
            )
        finally:
            sink.close()
        sys.exit(status)
    if command:
        raise click.UsageError("a PROGRAM is only given with --inetd")
    if backend is None or daemon is None:
        raise click.UsageError("--to and --daemon are required (or use --inetd)")
    if workers < 1:
        raise click.UsageError("--workers must be at least 1")
    from todokede.wrap import WrapConfig, activated_sockets, parse_address

    sockets = activated_sockets()
    if not listen and not sockets:
        raise click.UsageError("--listen is required unless systemd passes sockets")
    open_sink(log_target, syslog_socket=syslog_socket).close()  # fail early on a bad --log
    config = WrapConfig(
        backend=parse_address(backend, default_host="127.0.0.1"),
        daemon=daemon,
        rules_dir=rules_dir,
        listen=[parse_address(a) for a in listen],
        sockets=sockets,
        refuse_delay=refuse_delay,
        connect_timeout=connect_timeout,
        shutdown_grace=shutdown_grace,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_per_source=max_per_source,
        allow_commands=allow_commands,
        ident_timeout=ident_timeout,
        dns_timeout=dns_timeout,
        proxy_protocol=proxy_protocol or "",
    )
    children: list[int] = []
    if workers > 1:
        # Bind once, then fork: the workers share the listening sockets and each runs its
        # own event loop (and logs under its own pid, as tcpd processes do).
        config.sockets += [_bind(host, port) for host, port in config.listen]
        config.listen = []
        for _ in range(workers - 1):
            pid = os.fork()
            if pid == 0:
                children = []
                break
            children.append(pid)
    is_child = workers > 1 and not children
    sink = open_sink(log_target, syslog_socket=syslog_socket, background=True)
    status = 0
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(config, sink, resolver, children, announce=not is_child))
    except Exception as exc:
        if not is_child:
            raise
        click.echo(f"todokede: error: worker {os.getpid()}: {exc}", err=True)
        status = 2
    finally:
        sink.close()
    if is_child:
        os._exit(status)  # a worker must not run the parent's exit path


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed (several times fewer CPU cycles per connection)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(
    config: WrapConfig,
    sink: Sink,
    resolver: Resolver | None,
    children: list[int],
    *,
    announce: bool,
) -> None:
    from todokede.wrap import TcpdLog, Wrapper

    wrapper = Wrapper(config, TcpdLog(sink, config.daemon, os.getpid()), resolver=resolver)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        bound = await wrapper.start()
    except OSError as exc:
        await wrapper.shutdown(0)
        raise ConfigError(f"cannot listen: {exc.strerror or exc}") from exc
    if announce:
        where = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in bound)
        host, port = config.backend
        workers = f", {len(children) + 1} workers" if children else ""
        click.echo(
            f"todokede wrap: {config.daemon} on {where} -> {host}:{port}"
            f" (rules in {config.rules_dir}{workers})",
            err=True,
        )
    await stop.wait()
    for pid in children:  # the workers stop with us
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    await wrapper.shutdown()
    for pid in children:
        await loop.run_in_executor(None, _reap, pid, config.shutdown_grace + 5)


def _reap(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)

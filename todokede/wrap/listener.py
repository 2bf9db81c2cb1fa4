"""The listener: accept, decide with the rules, log as tcpd, then proxy or refuse.

Each accepted connection is held (reading paused) while it is admitted: limits, the
decision (on the event loop from cached name lookups; in a worker thread only when a
lookup is really needed), the matched rule's options, the log line. A granted connection
is then spliced to the backend with flow control in both directions and half-closes
passed through; a refused one is held ``refuse_delay`` seconds, as tcpd does, and closed.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

from todokede.access import Decision, Request, Rules, SystemResolver
from todokede.wrap.commands import Commands, exited
from todokede.wrap.lookup import CachingResolver, Resolver, ident_user
from todokede.wrap.options import (
    Plan,
    aclexec_warning,
    apply_socket_options,
    echo_message,
    logger_call,
    plan_options,
)
from todokede.wrap.request import banners, client_label, decide, make_request, unmap
from todokede.wrap.tcpdlog import TcpdLog

Address = tuple[str, int]
PENDING_LIMIT = 65536  # bytes kept from a client that speaks before it is admitted


@dataclass
class WrapConfig:
    """Everything ``todokede wrap`` needs; plain values, filled by the CLI or by a caller."""

    backend: Address
    daemon: str
    rules_dir: Path = Path("/etc")
    listen: list[Address] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)  # pre-bound (socket activation)
    refuse_delay: float = 5.0  # tcpd holds a refused client this long before closing
    connect_timeout: float = 10.0
    idle_timeout: float | None = None
    max_connections: int = 4096
    max_per_source: int = 0  # 0: no per-source limit
    allow_commands: bool = False
    ident_timeout: float | None = None  # ask every client's identd (RFC 1413)
    ident_port: int = 113
    dns_timeout: float = 5.0
    command_timeout: float = 30.0
    shutdown_grace: float = 10.0
    backlog: int = 1024


@dataclass
class Stats:
    accepted: int = 0
    granted: int = 0
    refused: int = 0
    twisted: int = 0
    over_limit: int = 0
    backend_failed: int = 0
    active: int = 0


class _Client(asyncio.Protocol):
    def __init__(self, wrapper: Wrapper) -> None:
        self.wrapper = wrapper
        self.transport: asyncio.Transport | None = None
        self.backend: asyncio.Transport | None = None
        self.addr = ""
        self.port = 0
        self.local: Address = ("", 0)
        self.eof = False
        self.backend_eof = False
        self.closed = False
        self.counted = False
        self.task: asyncio.Task[None] | None = None
        self.last = time.monotonic()
        self.pending: list[bytes] = []
        self.pending_size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: no isinstance() here.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.pause_reading()
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if not peer or not local:  # the client left before we could ask who it was
            transport.abort()
            return
        self.addr, self.port = unmap(peer[0]), int(peer[1])
        self.local = (unmap(local[0]), int(local[1]))
        self.wrapper._accepted(self)

    def data_received(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.backend is not None:
            self.backend.write(data)
            return
        # Not admitted yet. Reading is paused, but uvloop may already have read before the
        # pause took effect: keep the bytes for the backend, within reason.
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size > PENDING_LIMIT and self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        if self.backend is not None:
            if self.backend_eof:
                self.close()
            elif self.backend.can_write_eof():
                self.backend.write_eof()
        return True  # keep our side open: the backend may still answer

    def pause_writing(self) -> None:
        if self.backend is not None:
            self.backend.pause_reading()

    def resume_writing(self) -> None:
        if self.backend is not None and not self.backend.is_closing():
            self.backend.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.backend is not None:
            self.backend.close()
        self.wrapper._finished(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self.backend is not None:
            self.backend.close()


class _Backend(asyncio.Protocol):
    def __init__(self, client: _Client, name: str) -> None:
        self.client = client
        self.name = name  # for the log: host:port, or the twist command
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        client = self.client
        client.last = time.monotonic()
        if client.transport is not None:
            client.transport.write(data)

    def eof_received(self) -> bool:
        client = self.client
        client.backend_eof = True
        if client.eof:
            client.close()
        elif client.transport is not None and client.transport.can_write_eof():
            client.transport.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        transport = self.client.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        client = self.client
        if exc is not None and not client.closed:
            client.wrapper.log.warning(
                f"connection to {self.name} lost: {_reason(exc)} (client {client.addr})"
            )
        if client.transport is not None:
            client.transport.close()  # flushes what the backend sent before it went away


class Wrapper:
    """One wrapped service: listening sockets, rules, log, and the live connections."""

    def __init__(
        self,
        config: WrapConfig,
        log: TcpdLog,
        *,
        resolver: Resolver | None = None,
    ) -> None:
        self.config = config
        self.log = log
        self.resolver = CachingResolver(resolver or SystemResolver(), timeout=config.dns_timeout)
        # recheck=0: the files are stat()ed on every decision, as libwrap re-reads them.
        self.rules = Rules.load(
            config.rules_dir, resolver=self.resolver, full_paths=True, recheck=0
        )
        self.stats = Stats()
        self.servers: list[asyncio.Server] = []
        self.clients: set[_Client] = set()
        self.per_source: Counter[str] = Counter()
        self.commands = Commands()
        self._limit_logged = 0.0
        self._held = 0
        self._closing = False
        self._sweeper: asyncio.Task[None] | None = None
        # Decisions that wait on name lookups; its own pool, so they never hold up the
        # loop's default executor.
        self._decide_pool = ThreadPoolExecutor(32, thread_name_prefix="todokede-decide")

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> list[Address]:
        """Bind (or adopt) the listening sockets; returns the addresses actually bound."""
        loop = asyncio.get_running_loop()
        cfg = self.config
        for sock in cfg.sockets:
            self.servers.append(
                await loop.create_server(lambda: _Client(self), sock=sock, backlog=cfg.backlog)
            )
        for host, port in cfg.listen:
            self.servers.append(
                await loop.create_server(
                    lambda: _Client(self),
                    host or None,
                    port,
                    backlog=cfg.backlog,
                    reuse_address=True,
                )
            )
        if cfg.idle_timeout:
            self._sweeper = loop.create_task(self._sweep(cfg.idle_timeout))
        return self.addresses()

    def addresses(self) -> list[Address]:
        out = []
        for server in self.servers:
            for sock in server.sockets:
                name = sock.getsockname()
                out.append((str(name[0]), int(name[1])))
        return out

    async def serve_until(self, stop: asyncio.Event) -> None:
        await stop.wait()
        await self.shutdown()

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting, let live sessions finish for ``grace`` seconds, then cut them."""
        self._closing = True
        for server in self.servers:
            server.close()
        grace = self.config.shutdown_grace if grace is None else grace
        deadline = time.monotonic() + grace
        # Sessions get the grace period; connections still being admitted (or held after a
        # refusal) are not worth waiting for.
        while time.monotonic() < deadline and any(c.backend for c in self.clients):
            await asyncio.sleep(0.05)
        for client in list(self.clients):
            if client.task is not None:
                client.task.cancel()
            if client.transport is not None:
                client.transport.abort()
            if client.backend is not None:
                client.backend.abort()
        for server in self.servers:
            await server.wait_closed()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        # spawn/twist commands: give them the rest of the grace period, then kill them.
        await self.commands.stop(deadline)  # spawn/twist commands: the rest of the grace
        await asyncio.sleep(0)  # let connection_lost callbacks run
        self.resolver.close()
        self._decide_pool.shutdown(wait=False, cancel_futures=True)

    # -- per connection -----------------------------------------------------------------

    def _accepted(self, client: _Client) -> None:
        self.stats.accepted += 1
        cfg = self.config
        over = ""
        if self._closing:
            over = "shutting down"
        elif len(self.clients) >= cfg.max_connections:
            over = f"connection limit ({cfg.max_connections}) reached"
        elif cfg.max_per_source and self.per_source[client.addr] >= cfg.max_per_source:
            over = f"per-source limit ({cfg.max_per_source}) reached"
        if over:
            self.stats.over_limit += 1
            now = time.monotonic()
            if now - self._limit_logged >= 1.0:  # a flood must not become a log flood
                self._limit_logged = now
                self.log.warning(f"{over}: dropped connection from {client.addr}")
            assert client.transport is not None
            client.transport.close()
            return
        client.counted = True
        self.clients.add(client)
        self.per_source[client.addr] += 1
        self.stats.active = len(self.clients)
        client.task = asyncio.get_running_loop().create_task(self._admit_safely(client))

    def _finished(self, client: _Client) -> None:
        if not client.counted:
            return
        client.counted = False
        self.clients.discard(client)
        self.per_source[client.addr] -= 1
        if self.per_source[client.addr] <= 0:
            del self.per_source[client.addr]
        self.stats.active = len(self.clients)

    async def _admit_safely(self, client: _Client) -> None:
        try:
            await self._admit(client)
        except asyncio.CancelledError:
            client.close()
            raise
        except Exception as exc:
            # One connection's failure must never stop the wrapper; fail closed.
            self.log.error(f"cannot serve {client.addr}: {exc!r}")
            client.close()

    async def _decide(self, request: Request) -> tuple[Decision, str]:
        result = decide(self.rules, self.resolver, request, blocking=False)
        if result is None:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self._decide_pool,
                functools.partial(decide, self.rules, self.resolver, request, blocking=True),
            )
            assert result is not None
        return result

    async def _admit(self, client: _Client) -> None:
        cfg = self.config
        transport = client.transport
        assert transport is not None
        request = make_request(cfg.daemon, (client.addr, client.port), client.local, os.getpid())
        user: str | None = None
        if cfg.ident_timeout:
            user = await self._ident(client, cfg.ident_timeout)
            request = replace(request, client_user=user)
        decision, host = await self._decide(request)
        plan = plan_options(decision.options)
        if plan.rfc931 is not None and user is None:
            user = await self._ident(client, plan.rfc931)
            if user is not None:
                request = replace(request, client_user=user)
                decision, host = await self._decide(request)
                plan = plan_options(decision.options)
        for warning in decision.warnings:
            self.log.warning(warning)
        for error in plan.errors:
            self.log.error(error)
        if (unsupported := aclexec_warning(plan)) is not None:
            self.log.warning(unsupported)
        label = client_label(host, user)
        for command in plan.spawn:
            await self._spawn(command)
        banner = banners(decision)
        if banner and not client.closed:
            transport.write(banner)
        if plan.twist is not None or decision.access == "delegated":
            self.stats.twisted += 1
            await self._twist(client, plan, label)
            return
        if decision.access != "granted":
            self.stats.refused += 1
            self.log.refused(label, client.addr, plan.deny_priority)
            # Holding refused clients (as tcpd) must not let a flood of them fill the
            # connection limit: at most a quarter of it is spent on holding.
            if self._held < max(1, cfg.max_connections // 4):
                self._held += 1
                try:
                    await asyncio.sleep(cfg.refuse_delay)
                finally:
                    self._held -= 1
            transport.close()
            return
        self.stats.granted += 1
        apply_socket_options(transport.get_extra_info("socket"), plan)
        self.log.connect(label, client.addr, plan.allow_priority)
        await self._connect_backend(client)

    async def _connect_backend(self, client: _Client) -> None:
        host, port = self.config.backend
        transport = client.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                backend, _ = await loop.create_connection(
                    lambda: _Backend(client, _hostport(host, port)), host, port
                )
        except (OSError, TimeoutError) as exc:
            self.stats.backend_failed += 1
            reason = "timed out" if isinstance(exc, TimeoutError) else _reason(exc)
            self.log.error(f"cannot connect to {_hostport(host, port)}: {reason}")
            transport.close()
            return
        _attach(client, backend)

    async def _ident(self, client: _Client, timeout: float) -> str | None:
        return await ident_user(
            (client.addr, client.port), client.local, timeout=timeout, port=self.config.ident_port
        )

    async def _spawn(self, command: str) -> None:
        if not self.config.allow_commands:
            call = logger_call(command)
            if call is not None:
                self.log.raw(call.priority, call.tag, call.message)
            else:
                self.log.warning(f"spawn: command not run (needs --allow-commands): {command}")
            return
        proc = self.commands.start(command)
        # libwrap waits for the command; a hung one must not hold the connection for ever.
        if not await exited(proc, self.config.command_timeout):
            self.log.warning(f"spawn: still running after {self.config.command_timeout:g}s")

    async def _twist(self, client: _Client, plan: Plan, label: str) -> None:
        transport = client.transport
        assert transport is not None
        command = plan.twist or ""
        self.log.twist(label, command, plan.deny_priority)
        if client.closed:
            return
        if not self.config.allow_commands:
            message = echo_message(command)
            if message is None:
                self.log.warning(f"twist: command not run (needs --allow-commands): {command}")
            else:
                transport.write(message)
            transport.close()
            return
        # The command talks to the client through a socket pair that is proxied like a
        # backend: what the client sent early is not lost, and the client's own socket
        # stays with the event loop (handing it over is not portable across loops).
        ours, theirs = socket.socketpair()
        try:
            self.commands.start(command, theirs.fileno())
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        loop = asyncio.get_running_loop()
        backend, _ = await loop.create_unix_connection(
            lambda: _Backend(client, f"twist command {command!r}"), sock=ours
        )
        _attach(client, backend)

    async def _sweep(self, idle: float) -> None:
        while True:
            await asyncio.sleep(min(idle, 1.0))
            cutoff = time.monotonic() - idle
            for client in list(self.clients):
                if client.backend is not None and client.last < cutoff:
                    client.close()


def _attach(client: _Client, backend: asyncio.Transport) -> None:
    """Splice an admitted client to its backend (a service, or a twist command)."""
    transport = client.transport
    if client.closed or transport is None:
        backend.close()
        return
    client.backend = backend
    if client.pending:
        backend.write(b"".join(client.pending))
        client.pending.clear()
    if client.eof and backend.can_write_eof():
        backend.write_eof()
    transport.resume_reading()


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's own strerror says "Connect call failed"
    return str(exc) or type(exc).__name__

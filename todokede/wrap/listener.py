"""The listener: accept, decide with the rules, log as tcpd, then proxy or refuse.

Each accepted connection is held (reading paused) while it is admitted: limits, the
decision (on the event loop from cached name lookups; in a worker thread only when a
name lookup, an ident query or an ``aclexec`` command is really needed), the matched
rule's options, the log lines. A granted connection is then spliced to the backend (see
splice.py); a refused one is held ``refuse_delay`` seconds, as tcpd does, and closed.
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

from todokede.access import Decision, Request, Rules, SystemResolver
from todokede.wrap.commands import Commands, exited, run_aclexec
from todokede.wrap.lookup import CachingResolver, Resolver, ident_user
from todokede.wrap.options import (
    Plan,
    aclexec_warning,
    apply_socket_options,
    echo_message,
    logger_call,
    plan_options,
)
from todokede.wrap.request import banners, decide, make_request, steps
from todokede.wrap.splice import Address, Backend, Client, attach, hostport, reason
from todokede.wrap.tcpdlog import TcpdLog


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
        self.clients: set[Client] = set()
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
                await loop.create_server(lambda: Client(self), sock=sock, backlog=cfg.backlog)
            )
        for host, port in cfg.listen:
            self.servers.append(
                await loop.create_server(
                    lambda: Client(self),
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

    def _accepted(self, client: Client) -> None:
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

    def _finished(self, client: Client) -> None:
        if not client.counted:
            return
        client.counted = False
        self.clients.discard(client)
        self.per_source[client.addr] -= 1
        if self.per_source[client.addr] <= 0:
            del self.per_source[client.addr]
        self.stats.active = len(self.clients)

    async def _admit_safely(self, client: Client) -> None:
        try:
            await self._admit(client)
        except asyncio.CancelledError:
            client.close()
            raise
        except Exception as exc:
            # One connection's failure must never stop the wrapper; fail closed.
            self.log.error(f"cannot serve {client.addr}: {exc!r}")
            client.close()

    async def _decide(self, client: Client, request: Request) -> Decision:
        cfg = self.config
        # On the loop first, with cached answers only; the callbacks given here only say
        # whether the rules need them.
        decision = decide(
            self.rules,
            self.resolver,
            request,
            blocking=False,
            aclexec=run_aclexec if cfg.allow_commands else None,
            ident=_no_ident,
        )
        if decision is not None:
            return decision
        loop = asyncio.get_running_loop()
        ident = functools.partial(self._ident_from_thread, client, loop)
        fd = -1
        sock = client.transport.get_extra_info("socket") if client.transport else None
        if cfg.allow_commands and sock is not None:
            # aclexec commands get the connection as stdin/stdout/stderr, as under tcpd; a
            # duplicate, so that the number stays ours even if the client goes away.
            fd = os.dup(sock.fileno())
        try:
            aclexec = (
                functools.partial(
                    run_aclexec, fd=fd, timeout=cfg.command_timeout, log=self.log.warning
                )
                if cfg.allow_commands
                else None
            )
            call = functools.partial(
                decide,
                self.rules,
                self.resolver,
                request,
                blocking=True,
                aclexec=aclexec,
                ident=ident,
            )
            result = await loop.run_in_executor(self._decide_pool, call)
        finally:
            if fd >= 0:
                os.close(fd)
        assert result is not None
        return result

    def _ident_from_thread(
        self, client: Client, loop: asyncio.AbstractEventLoop, timeout: float
    ) -> str | None:
        """The engine's ident callback, called in a worker thread: the query runs on the
        event loop, the thread waits for it."""
        future = asyncio.run_coroutine_threadsafe(self._ident(client, timeout), loop)
        try:
            return future.result(timeout + 1.0)
        except Exception:
            future.cancel()
            return None

    async def _admit(self, client: Client) -> None:
        cfg = self.config
        transport = client.transport
        assert transport is not None
        request = make_request(cfg.daemon, (client.addr, client.port), client.local, os.getpid())
        if cfg.ident_timeout:
            user = await self._ident(client, cfg.ident_timeout)
            request = replace(request, client_user=user or "unknown")
        decision = await self._decide(client, request)
        plan = plan_options(decision.options)
        for kind, text in steps(decision):
            if kind == "spawn":
                await self._spawn(text)
            elif kind == "info":
                self.log.info(text)
            elif kind == "error":
                self.log.error(text)
            else:
                self.log.warning(text)
        for error in plan.errors:
            self.log.error(error)
        if not cfg.allow_commands and (unsupported := aclexec_warning(plan)) is not None:
            self.log.warning(unsupported)
        label = decision.client
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
        if plan.keepalive or plan.linger is not None:
            apply_socket_options(transport.get_extra_info("socket"), plan)
        self.log.connect(label, client.addr, plan.allow_priority)
        await self._connect_backend(client)

    async def _connect_backend(self, client: Client) -> None:
        host, port = self.config.backend
        transport = client.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                backend, _ = await loop.create_connection(
                    lambda: Backend(client, hostport(host, port)), host, port
                )
        except (OSError, TimeoutError) as exc:
            self.stats.backend_failed += 1
            why = "timed out" if isinstance(exc, TimeoutError) else reason(exc)
            self.log.error(f"cannot connect to {hostport(host, port)}: {why}")
            transport.close()
            return
        attach(client, backend)

    async def _ident(self, client: Client, timeout: float) -> str | None:
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

    async def _twist(self, client: Client, plan: Plan, label: str) -> None:
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
            lambda: Backend(client, f"twist command {command!r}"), sock=ours
        )
        attach(client, backend)

    async def _sweep(self, idle: float) -> None:
        while True:
            await asyncio.sleep(min(idle, 1.0))
            cutoff = time.monotonic() - idle
            for client in list(self.clients):
                if client.backend is not None and client.last < cutoff:
                    client.close()


def _no_ident(timeout: float) -> str | None:
    return None  # never called: decide() stands in for it on the event loop

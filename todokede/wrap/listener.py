"""The listener: accept, decide with the rules, log as tcpd, then proxy or refuse.

Each accepted connection is held (not read) while it is admitted: limits, the decision
(on the event loop from cached name lookups; in a worker thread only when a name lookup,
an ident query or an ``aclexec`` command is really needed), the matched rule's options,
the log lines. A granted connection is then spliced to the backend (see splice.py); a
refused one is held ``refuse_delay`` seconds, as tcpd does, and closed.

The common case (a decision from cached name lookups, no shell command to wait for) is
carried out right in the accept callback, without a task: at thousands of connections a
second the per-connection overhead of a coroutine, a task and a timeout context is
measurable.
"""

from __future__ import annotations

import _socket
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
from todokede.wrap.accept import Listener, bind
from todokede.wrap.commands import Commands, exited, run_aclexec
from todokede.wrap.connect import Connector
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
from todokede.wrap.splice import Address, Client, Poller
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
    proxy_protocol: str = ""  # "v1" or "v2": a PROXY protocol header to the backend first


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
        # recheck=-1: the wrapper itself checks the files (stat), once per loop iteration
        # (see _admit_now).
        self.rules = Rules.load(
            config.rules_dir, resolver=self.resolver, full_paths=True, recheck=-1
        )
        self._rules_checked = False
        self.stats = Stats()
        self.servers: list[Listener] = []
        self.clients: set[Client] = set()
        self.per_source: Counter[str] = Counter()
        self.commands = Commands()
        self.loop: asyncio.AbstractEventLoop  # the running loop, from start() on
        self.poller: Poller  # the spliced sockets, from start() on
        self.connector: Connector  # from start() on
        self._pid = os.getpid()
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
        self.loop = loop = asyncio.get_running_loop()
        self.poller = Poller(loop)
        self.connector = Connector(
            loop,
            self.poller,
            self.config.backend,
            self.config.connect_timeout,
            self._backend_failed,
            self.config.proxy_protocol,
        )
        self._defer_log(loop)
        self._pid = os.getpid()  # a --workers child starts here after the fork
        cfg = self.config
        sockets = list(cfg.sockets)
        try:
            for host, port in cfg.listen:
                sockets += bind(host, port, cfg.backlog)
        except OSError:
            for sock in sockets[len(cfg.sockets) :]:
                sock.close()
            raise
        self.servers = [Listener(loop, sock, self._accepted) for sock in sockets]
        if cfg.idle_timeout:
            self._sweeper = loop.create_task(self._sweep(cfg.idle_timeout))
        return self.addresses()

    def _defer_log(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """A file log is written once per loop iteration rather than once per line."""
        defer = getattr(self.log.sink, "defer_flush", None)
        if defer is not None:
            defer(loop)

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
            client.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        # spawn/twist commands: give them the rest of the grace period, then kill them.
        await self.commands.stop(deadline)
        await asyncio.sleep(0)  # let cancelled admissions finish
        if getattr(self, "poller", None) is not None:  # start() may not have run
            self.poller.close()
        self._defer_log(None)  # and what the last iteration logged is written now
        self.resolver.close()
        self._decide_pool.shutdown(wait=False, cancel_futures=True)

    # -- per connection -----------------------------------------------------------------

    def _accepted(self, sock: _socket.socket, peer: tuple[str, int], local: Address | None) -> None:
        self.stats.accepted += 1
        cfg = self.config
        addr = unmap(peer[0])
        over = ""
        if self._closing:
            over = "shutting down"
        elif len(self.clients) >= cfg.max_connections:
            over = f"connection limit ({cfg.max_connections}) reached"
        elif cfg.max_per_source and self.per_source[addr] >= cfg.max_per_source:
            over = f"per-source limit ({cfg.max_per_source}) reached"
        if over:
            self.stats.over_limit += 1
            now = time.monotonic()
            if now - self._limit_logged >= 1.0:  # a flood must not become a log flood
                self._limit_logged = now
                self.log.warning(f"{over}: dropped connection from {addr}")
            sock.close()
            return
        if local is None:  # a wildcard listener: which of our addresses was it?
            try:
                name = sock.getsockname()
            except OSError:  # the client left before we could ask
                sock.close()
                return
            local = (unmap(name[0]), int(name[1]))
        client = Client(self, sock, addr, int(peer[1]), local)
        client.counted = True
        self.clients.add(client)
        per_source = self.per_source
        per_source[addr] = per_source.get(addr, 0) + 1  # (Counter's += calls __missing__)
        self.stats.active = len(self.clients)
        try:
            self._admit_now(client)
        except Exception as exc:
            # One connection's failure must never stop the wrapper; fail closed.
            self.log.error(f"cannot serve {addr}: {exc!r}")
            client.abort()

    def _finished(self, client: Client) -> None:
        if client.held:
            client.held = False
            self._held -= 1
        if not client.counted:
            return
        client.counted = False
        self.clients.discard(client)
        self.per_source[client.addr] -= 1
        if self.per_source[client.addr] <= 0:
            del self.per_source[client.addr]
        self.stats.active = len(self.clients)

    def _admit_now(self, client: Client) -> None:
        """The fast path: decided from the cache and carried out here, when nothing has
        to be waited for; otherwise the admission goes on in a task."""
        cfg = self.config
        rules = self.rules
        if not self._rules_checked:
            # The files are checked (stat) once per loop iteration, before the first
            # connection it admits: a change is seen from the next iteration on, and a
            # busy listener does not stat them for each connection of a burst.
            self._rules_checked = True
            self.loop.call_soon(self._rules_stale)
            rules.reload_if_changed()
        # Every connection is decided by the engine, whatever the clients before it: the
        # indexes find its candidate rules in microseconds, even among thousands.
        decision = None if cfg.ident_timeout else self._decide_cached(self._request(client))
        if decision is None or (
            cfg.allow_commands and any(kind == "spawn" for kind, _ in steps(decision))
        ):
            client.task = self.loop.create_task(self._admit_safely(client, decision))
            return
        for kind, text in steps(decision):
            if kind == "spawn":
                self._spawn_emulated(text)
            else:
                self._log_step(kind, text)
        self._conclude(client, decision)

    def _rules_stale(self) -> None:
        self._rules_checked = False

    def _request(self, client: Client) -> Request:
        return make_request(self.config.daemon, (client.addr, client.port), client.local, self._pid)

    def _decide_cached(self, request: Request) -> Decision | None:
        """The decision on the event loop from cached name lookups; None when it needs a
        lookup, an ident query or an ``aclexec`` command (the callbacks given here only
        say whether the rules need them)."""
        return decide(
            self.rules,
            self.resolver,
            request,
            blocking=False,
            aclexec=run_aclexec if self.config.allow_commands else None,
            ident=_no_ident,
        )

    async def _admit_safely(self, client: Client, decision: Decision | None) -> None:
        try:
            await self._admit(client, decision)
        except asyncio.CancelledError:
            client.abort()
            raise
        except Exception as exc:
            # One connection's failure must never stop the wrapper; fail closed.
            self.log.error(f"cannot serve {client.addr}: {exc!r}")
            client.abort()

    async def _admit(self, client: Client, decision: Decision | None) -> None:
        if decision is None:
            request = self._request(client)
            if self.config.ident_timeout:
                user = await self._ident(client, self.config.ident_timeout)
                request = replace(request, client_user=user or "unknown")
                decision = self._decide_cached(request)
            if decision is None:
                decision = await self._decide(client, request)
        for kind, text in steps(decision):
            if kind == "spawn":
                await self._spawn(text)
            else:
                self._log_step(kind, text)
        if not client.closed:
            self._conclude(client, decision)

    def _log_step(self, kind: str, text: str) -> None:
        if kind == "info":
            self.log.info(text)
        elif kind == "error":
            self.log.error(text)
        else:
            self.log.warning(text)

    async def _decide(self, client: Client, request: Request) -> Decision:
        """The decision in a worker thread, where name lookups, ident queries and
        ``aclexec`` commands may block."""
        cfg = self.config
        loop = self.loop
        ident = functools.partial(self._ident_from_thread, client, loop)
        fd = -1
        if cfg.allow_commands:
            # aclexec commands get the connection as stdin/stdout/stderr, as under tcpd; a
            # duplicate, so that the number stays ours even if the client goes away.
            fd = os.dup(client.sock.fileno())
            client.side.shared = True  # a command may keep it open: see Poller.forget
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

    def _conclude(self, client: Client, decision: Decision) -> None:
        """Options, verdict line, then twist, refuse (held) or connect to the backend."""
        cfg = self.config
        plan = plan_options(decision.options)
        for error in plan.errors:
            self.log.error(error)
        if not cfg.allow_commands and (unsupported := aclexec_warning(plan)) is not None:
            self.log.warning(unsupported)
        label = decision.client
        banner = banners(decision) if decision.options else b""  # banners is an option
        if banner:
            client.write(banner)
        if plan.twist is not None or decision.access == "delegated":
            self.stats.twisted += 1
            self._twist(client, plan, label)
            return
        if decision.access != "granted":
            self.stats.refused += 1
            self.log.refused(label, client.addr, plan.deny_priority)
            # Holding refused clients (as tcpd) must not let a flood of them fill the
            # connection limit: at most a quarter of it is spent on holding.
            if self._held < max(1, cfg.max_connections // 4):
                self._held += 1
                client.held = True
                client.timer = self.loop.call_later(cfg.refuse_delay, self._unhold, client)
            else:
                client.close()
            return
        self.stats.granted += 1
        if plan.keepalive or plan.linger is not None:
            apply_socket_options(client.sock, plan)
        self.log.connect(label, client.addr, plan.allow_priority)
        self.connector.connect(client)

    def _unhold(self, client: Client) -> None:
        client.timer = None
        client.close()  # _finished counts it out of _held

    def _backend_failed(self, client: Client, why: str) -> None:
        self.stats.backend_failed += 1
        self.log.error(f"cannot connect to {self.connector.name}: {why}")
        client.close()

    async def _ident(self, client: Client, timeout: float) -> str | None:
        return await ident_user(
            (client.addr, client.port), client.local, timeout=timeout, port=self.config.ident_port
        )

    def _spawn_emulated(self, command: str) -> None:
        """A ``spawn`` without --allow-commands: only the logger idiom is carried out."""
        call = logger_call(command)
        if call is not None:
            self.log.raw(call.priority, call.tag, call.message)
        else:
            self.log.warning(f"spawn: command not run (needs --allow-commands): {command}")

    async def _spawn(self, command: str) -> None:
        if not self.config.allow_commands:
            self._spawn_emulated(command)
            return
        self.log.sink.flush()  # our lines before the command's, as libwrap logs them
        proc = self.commands.start(command)
        # libwrap waits for the command; a hung one must not hold the connection for ever.
        if not await exited(proc, self.config.command_timeout):
            self.log.warning(f"spawn: still running after {self.config.command_timeout:g}s")

    def _twist(self, client: Client, plan: Plan, label: str) -> None:
        command = plan.twist or ""
        self.log.twist(label, command, plan.deny_priority)
        if client.closed:
            return
        if not self.config.allow_commands:
            message = echo_message(command)
            if message is None:
                self.log.warning(f"twist: command not run (needs --allow-commands): {command}")
            else:
                client.write(message)
            client.close()
            return
        # The command talks to the client through a socket pair that is spliced like a
        # backend: what the client sent early is not lost, and the client's own socket
        # stays with the event loop.
        self.log.sink.flush()
        ours, theirs = socket.socketpair()
        try:
            self.commands.start(command, theirs.fileno())
            ours.setblocking(False)
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        client.attach(ours, f"twist command {command!r}")

    async def _sweep(self, idle: float) -> None:
        while True:
            await asyncio.sleep(min(idle, 1.0))
            cutoff = time.monotonic() - idle
            for client in list(self.clients):
                if client.backend is not None and client.last < cutoff:
                    client.close()


def _no_ident(timeout: float) -> str | None:
    return None  # never called: decide() stands in for it on the event loop

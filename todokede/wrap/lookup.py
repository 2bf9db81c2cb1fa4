"""Name lookups with a cache and a time limit, and RFC 931/1413 ident queries.

libwrap looks a client's name up only when a rule needs it, so tcpd logs a bare address
unless some pattern asked for the name. The engine asks its resolver; the wrapper gives it
a :class:`CachingResolver` that remembers answers (good and bad) for a while, bounds every
lookup by a timeout, and records, per decision, which lookups the engine wanted. That lets
the listener decide first on the event loop with cached answers only, and go to a worker
thread only when a lookup is really needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol

_MISS = object()


class Resolver(Protocol):
    def names(self, addr: str) -> list[str]: ...

    def addresses(self, name: str) -> list[str]: ...


@dataclass
class _State:
    blocking: bool = True
    missed: bool = False
    consulted: bool = False  # any lookup at all, answered or not
    asked_names: set[str] = field(default_factory=set)


class CachingResolver:
    """Wraps a resolver: cached, time-limited, and able to answer from the cache alone."""

    def __init__(
        self,
        inner: Resolver,
        *,
        timeout: float = 5.0,
        ttl: float = 300.0,
        negative_ttl: float = 30.0,
        max_entries: int = 10_000,
    ) -> None:
        self.inner = inner
        self.timeout = timeout
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, str], Future[Any]] = {}
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="todokede-dns")

    def _state(self) -> _State:
        state: _State | None = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = _State()
        return state

    def begin(self, *, blocking: bool) -> None:
        """Start recording one decision in this thread."""
        self._local.state = _State(blocking=blocking)

    def missed(self) -> bool:
        """Whether the decision just recorded needed an answer the cache did not have."""
        return self._state().missed

    def consulted(self) -> bool:
        """Whether the decision just recorded asked for any name or address."""
        return self._state().consulted

    def asked_for_name(self, addr: str) -> bool:
        return addr in self._state().asked_names

    def cached(self, kind: str, key: str) -> Any:
        """The cached answer, or ``_MISS``."""
        with self._lock:
            entry = self._cache.get((kind, key.lower()))
        if entry is None or entry[0] < time.monotonic():
            return _MISS
        return entry[1]

    def _lookup(self, kind: str, key: str, call: Callable[[], Any], empty: Any) -> Any:
        state = self._state()
        state.consulted = True
        hit = self.cached(kind, key)
        if hit is not _MISS:
            return hit
        if not state.blocking:
            state.missed = True
            return empty
        cache_key = (kind, key.lower())
        with self._lock:
            # Concurrent misses for one key share one lookup: a burst of connections from
            # one address must not become a burst of queries (or fill the pool).
            future = self._inflight.get(cache_key)
            started = future is None
            if future is None:
                future = self._pool.submit(call)
                self._inflight[cache_key] = future
        if started:
            # Outside the lock: a future that is already done runs the callback right here.
            future.add_done_callback(lambda _f: self._forget(cache_key))
        try:
            answer = future.result(timeout=self.timeout)
        except FutureTimeout:
            answer = empty
        except Exception:
            # A resolver failure is "no answer", as for libwrap; it must not stop the wrapper.
            answer = empty
        ttl = self.ttl if answer else self.negative_ttl
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[cache_key] = (time.monotonic() + ttl, answer)
        return answer

    def _forget(self, cache_key: tuple[str, str]) -> None:
        with self._lock:
            self._inflight.pop(cache_key, None)

    def names(self, addr: str) -> list[str]:
        self._state().asked_names.add(addr)
        return list(self._lookup("names", addr, lambda: list(self.inner.names(addr)), []))

    def addresses(self, name: str) -> list[str]:
        return list(self._lookup("addresses", name, lambda: list(self.inner.addresses(name)), []))

    def lookup(self, name: str, family: int | None = None) -> Any:
        """Forward lookup with the official name (the engine's ``Resolver.lookup``)."""
        inner = getattr(self.inner, "lookup", None)
        if inner is None:
            return None
        return self._lookup(f"lookup{family}", name, lambda: inner(name, family), None)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def ident_user(
    client: tuple[str, int],
    server: tuple[str, int],
    *,
    timeout: float = 10.0,
    port: int = 113,
) -> str | None:
    """Ask the client's RFC 1413 server who owns the connection; ``None`` when unknown.

    The query goes from the address the client connected to (as libwrap does), so a
    multi-homed server is answered for the right connection.
    """
    host, client_port = client[0], client[1]
    local, server_port = server[0], server[1]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, family=family, local_addr=(local, 0)
            )
            try:
                writer.write(f"{client_port} , {server_port}\r\n".encode())
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return None
    return parse_ident_reply(line.decode("latin-1"), client_port, server_port)


def parse_ident_reply(line: str, client_port: int, server_port: int) -> str | None:
    """``6193, 23 : USERID : UNIX : alice`` -> ``alice`` (ports must echo the query)."""
    parts = line.rstrip("\r\n").split(":", 3)
    if len(parts) != 4 or parts[1].strip().upper() != "USERID":
        return None
    ports = parts[0].split(",")
    try:
        if (int(ports[0]), int(ports[1])) != (client_port, server_port):
            return None
    except (ValueError, IndexError):
        return None
    user = parts[3].strip()
    # libwrap takes the user up to the first space; the remote side controls this text and
    # it goes into log lines, so it also ends at anything but printable ASCII.
    for i, ch in enumerate(user):
        if not 33 <= ord(ch) <= 126:
            user = user[:i]
            break
    return user or None

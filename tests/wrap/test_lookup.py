"""Cached, time-limited name lookups and RFC 1413 ident queries."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.access import HostEntry, verify_name
from todokede.wrap.lookup import CachingResolver, ident_user, parse_ident_reply


class TableResolver:
    """A name source from two tables; counts calls and can be made slow."""

    def __init__(self, names: dict[str, list[str]], addrs: dict[str, list[str]], delay: float = 0):
        self._names, self._addrs, self.delay = names, addrs, delay
        self.calls = 0

    def names(self, addr: str) -> list[str]:
        self.calls += 1
        time.sleep(self.delay)
        return self._names.get(addr, [])

    def addresses(self, name: str) -> list[str]:
        self.calls += 1
        time.sleep(self.delay)
        if name == "boom.test":
            raise OSError("resolver exploded")
        return self._addrs.get(name, [])

    def lookup(self, name: str, family: int | None = None) -> HostEntry | None:
        found = self.addresses(name)
        return HostEntry(name, (), tuple(found)) if found else None


HOSTS = TableResolver(
    {"127.0.0.2": ["good.test"], "127.0.0.4": ["spoofed.test"], "127.0.0.5": ["127.0.0.55"],
     "127.0.0.9": ["boom.test"], "::1": ["localhost"]},
    {"good.test": ["127.0.0.2"], "spoofed.test": ["127.0.0.3"], "localhost": ["127.0.0.1", "::1"]},
)  # fmt: skip


@pytest.mark.parametrize(
    ("addr", "name"),
    [
        ("127.0.0.2", "good.test"),
        ("127.0.0.4", None),  # forward lookup does not give the address back
        ("127.0.0.5", None),  # reverse lookup gives something that looks like an address
        ("127.0.0.9", None),  # the forward lookup failed
        ("127.0.0.7", None),  # no name at all
        ("::1", "localhost"),
    ],
)
def test_verified_name(addr: str, name: str | None) -> None:
    # The engine's reverse+forward check through the cache; then again from the cache alone
    # (as the listener does to learn the name tcpd would log).
    inner = TableResolver(HOSTS._names, HOSTS._addrs)
    resolver = CachingResolver(inner)
    resolver.begin(blocking=True)
    first, _ = verify_name(resolver, addr)
    calls = inner.calls
    resolver.begin(blocking=False)
    again, _ = verify_name(resolver, addr)
    assert again == first and not resolver.missed() and inner.calls == calls
    assert (first if first not in ("unknown", "paranoid") else None) == name
    resolver.close()


def test_cache_and_non_blocking_mode() -> None:
    inner = TableResolver({"127.0.0.2": ["good.test"]}, {})
    resolver = CachingResolver(inner)
    resolver.begin(blocking=False)
    assert resolver.names("127.0.0.2") == [] and resolver.missed()
    assert resolver.asked_for_name("127.0.0.2") and inner.calls == 0
    resolver.begin(blocking=True)
    assert resolver.names("127.0.0.2") == ["good.test"] and not resolver.missed()
    resolver.begin(blocking=False)
    assert resolver.names("127.0.0.2") == ["good.test"] and not resolver.missed()
    assert inner.calls == 1
    resolver.close()


def test_state_is_per_thread() -> None:
    resolver = CachingResolver(TableResolver({}, {}))
    resolver.begin(blocking=False)
    resolver.names("127.0.0.8")
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(resolver.asked_for_name("127.0.0.8")))
    thread.start()
    thread.join(5)
    assert seen == [False] and resolver.asked_for_name("127.0.0.8")
    resolver.close()


def test_timeout_gives_no_answer_and_is_remembered() -> None:
    inner = TableResolver({"127.0.0.2": ["good.test"]}, {}, delay=0.5)
    resolver = CachingResolver(inner, timeout=0.05, negative_ttl=60)
    assert resolver.names("127.0.0.2") == []  # the answer would come, but too late
    assert resolver.names("127.0.0.2") == []  # from the negative cache, no second wait
    assert inner.calls == 1
    resolver.close()


def test_failure_is_no_answer() -> None:
    resolver = CachingResolver(HOSTS)
    assert resolver.addresses("boom.test") == []
    resolver.close()


@pytest.mark.parametrize(
    ("line", "user"),
    [
        ("6193, 23 : USERID : UNIX : alice\r\n", "alice"),
        ("6193,23:USERID:UNIX,US-ASCII:bob smith\r\n", "bob"),
        ("6193, 23 : ERROR : NO-USER\r\n", None),
        ("6194, 23 : USERID : UNIX : alice\r\n", None),  # not our connection
        ("garbage", None),
        ("6193, 23 : USERID : UNIX : \r\n", None),
        ("6193, 23 : USERID : UNIX : eve\x1b[2J\r\n", "eve"),  # no escapes into the log
        ("6193, 23 : USERID : UNIX : m\xe9ro\r\n", "m"),
    ],
)
def test_parse_ident_reply(line: str, user: str | None) -> None:
    assert parse_ident_reply(line, 6193, 23) == user


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_ident_reply_is_safe_to_log(text: str) -> None:
    user = parse_ident_reply(f"1, 2 : USERID : UNIX : {text}", 1, 2)
    assert user is None or all(33 <= ord(c) <= 126 for c in user)


async def _identd(reply: str | None) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        query = (await reader.readline()).decode().strip()
        if reply is None:
            await reader.read()  # never answers: waits until the client gives up
        else:
            writer.write(f"{query} : {reply}\r\n".encode())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("reply", "user"), [("USERID : UNIX : alice", "alice"), ("ERROR : X", None)]
)
def test_ident_user_against_an_identd(reply: str, user: str | None) -> None:
    async def run() -> str | None:
        server, port = await _identd(reply)
        async with server:
            return await ident_user(("127.0.0.1", 5555), ("127.0.0.1", 143), port=port, timeout=5)

    assert asyncio.run(run()) == user


def test_ident_timeout_and_refused() -> None:
    async def run() -> tuple[str | None, str | None]:
        server, port = await _identd(None)
        async with server:
            slow = await ident_user(("127.0.0.1", 1), ("127.0.0.1", 2), port=port, timeout=0.2)
            server.close()
            await asyncio.sleep(0.05)  # the silent identd sees our close and ends
        refused = await ident_user(("127.0.0.1", 1), ("127.0.0.1", 2), port=port, timeout=2)
        return slow, refused

    assert asyncio.run(run()) == (None, None)

"""Addresses on the command line, the host label tcpd logs, and the decision cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.wrap.test_lookup import TableResolver
from todokede.access import Decision, Rules
from todokede.errors import ConfigError
from todokede.wrap.lookup import CachingResolver
from todokede.wrap.request import (
    DecisionCache,
    client_label,
    decide,
    make_request,
    parse_address,
    unmap,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:143", ("127.0.0.1", 143)),
        ("[::1]:143", ("::1", 143)),
        ("[::]:0", ("::", 0)),
        (":143", ("", 143)),
        ("143", ("", 143)),
        ("imap.example.jp:993", ("imap.example.jp", 993)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


def test_default_host() -> None:
    assert parse_address("1143", default_host="127.0.0.1") == ("127.0.0.1", 1143)


@pytest.mark.parametrize("text", ["::1:143", "host:", "host:port", "host:70000", "[::1]", ""])
def test_bad_address(text: str) -> None:
    with pytest.raises(ConfigError, match="bad address"):
        parse_address(text)


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(lambda a: f"[{a}]")),
    st.integers(0, 65535),
)
def test_round_trip(host: str, port: int) -> None:
    assert parse_address(f"{host}:{port}") == (host.strip("[]"), port)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_anything_parses_or_is_a_config_error(text: str) -> None:
    try:
        host, port = parse_address(text)
    except ConfigError:
        return
    assert 0 <= port <= 65535 and isinstance(host, str)


@pytest.mark.parametrize(
    ("addr", "shown"),
    [("::ffff:192.0.2.7", "192.0.2.7"), ("::ffff:0:1", "::ffff:0:1"), ("::1", "::1")],
)
def test_unmap(addr: str, shown: str) -> None:
    assert unmap(addr) == shown


def test_client_label() -> None:
    assert client_label("pc3.example", "alice") == "alice@pc3.example"
    assert client_label("192.0.2.7", None) == "192.0.2.7"


# --- the decision cache -------------------------------------------------------------------


def _rules(tmp_path: Path, allow: str, deny: str = "") -> tuple[Rules, CachingResolver]:
    (tmp_path / "hosts.allow").write_text(allow)
    (tmp_path / "hosts.deny").write_text(deny)
    resolver = CachingResolver(
        TableResolver({"127.0.0.2": ["two.test"]}, {"two.test": ["127.0.0.2"]})
    )
    return Rules.load(tmp_path, resolver=resolver, full_paths=True, recheck=-1), resolver


def _decide(rules: Rules, resolver: CachingResolver, addr: str) -> Decision:
    request = make_request("in.echod", (addr, 40000), ("127.0.0.1", 143), 1)
    decision = decide(rules, resolver, request, blocking=True)
    assert decision is not None
    return decision


def test_cache_keeps_plain_decisions_until_the_rules_change(tmp_path: Path) -> None:
    rules, resolver = _rules(tmp_path, "in.echod: 127.0.0.1\n", "ALL: ALL\n")
    cache = DecisionCache()
    key = ("127.0.0.1", ("127.0.0.1", 143))
    decision = _decide(rules, resolver, "127.0.0.1")
    cache.put(rules.tables, key, decision, resolver)
    assert cache.get(rules.tables, key) is decision
    assert cache.get(rules.tables, ("127.0.0.3", ("127.0.0.1", 143))) is None
    (tmp_path / "hosts.allow").write_text("")
    later = time.time() + 5  # a new mtime even on coarse-grained file systems
    os.utime(tmp_path / "hosts.allow", (later, later))
    assert rules.reload_if_changed()
    assert cache.get(rules.tables, key) is None  # new tables: the cache starts over
    assert _decide(rules, resolver, "127.0.0.1").access == "denied"


@pytest.mark.parametrize(
    ("allow", "addr"),
    [
        ("in.echod: .test\n", "127.0.0.2"),  # a name was looked up
        ("in.echod: 127.0.0.1 : severity auth.info\n", "127.0.0.1"),  # options
        ("in.echod: 127.0.0.1 : spawn /usr/bin/logger %r\n", "127.0.0.1"),  # %r: the port
        ("in.echod: 127.0.0.1 : banners /nonexistent\n", "127.0.0.1"),  # a file read
    ],
)
def test_cache_skips_decisions_that_depend_on_more(tmp_path: Path, allow: str, addr: str) -> None:
    rules, resolver = _rules(tmp_path, allow)
    cache = DecisionCache()
    key = (addr, ("127.0.0.1", 143))
    cache.put(rules.tables, key, _decide(rules, resolver, addr), resolver)
    assert cache.get(rules.tables, key) is None


def test_cache_is_bounded(tmp_path: Path) -> None:
    rules, resolver = _rules(tmp_path, "", "ALL: ALL\n")
    cache = DecisionCache(size=3)
    for i in range(10):
        key = (f"127.0.0.{i}", ("127.0.0.1", 143))
        cache.put(rules.tables, key, _decide(rules, resolver, key[0]), resolver)
        assert cache.get(rules.tables, key) is not None
    assert len(cache._entries) <= 3

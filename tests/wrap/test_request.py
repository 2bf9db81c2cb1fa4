"""Addresses on the command line, the host label tcpd logs, and decisions on the loop."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.wrap.test_lookup import TableResolver
from todokede.access import Decision, Rules
from todokede.errors import ConfigError
from todokede.wrap.lookup import CachingResolver
from todokede.wrap.request import (
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


# --- decisions on the event loop ----------------------------------------------------------


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


@pytest.mark.parametrize(
    ("allow", "addr", "on_loop"),
    [
        ("in.echod: 127.0.0.0/8 EXCEPT 127.0.0.5\n", "127.0.0.5", True),
        ("in.echod: 127. : severity auth.info\n", "127.9.9.9", True),
        ("in.echod: 127.0.0.1 : spawn /usr/bin/logger %r\n", "127.0.0.1", True),
        ("in.echod: .test\n", "127.0.0.2", False),  # a name not looked up yet
        ("in.echod: .test\n", "127.0.0.3", False),
        ("in.echod: KNOWN\n", "10.0.0.1", False),
    ],
)
def test_loop_decision_is_the_engines(tmp_path: Path, allow: str, addr: str, on_loop: bool) -> None:
    """Without blocking, the decision is the engine's own, made anew for each connection,
    or None when it needs a lookup; once the lookup is cached, it is the engine's too."""
    rules, resolver = _rules(tmp_path, allow, "ALL: ALL\n")
    request = make_request("in.echod", (addr, 40000), ("127.0.0.1", 143), 1)
    first = decide(rules, resolver, request, blocking=False)
    assert (first is not None) == on_loop
    expected = _decide(rules, resolver, addr)
    again = decide(rules, resolver, request, blocking=False)
    assert again == expected and again is not first

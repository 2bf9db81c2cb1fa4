"""Addresses on the command line, and the host label tcpd logs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.errors import ConfigError
from todokede.wrap.request import client_label, parse_address, unmap


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

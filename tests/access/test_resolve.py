"""Name resolution through a hosts(5) file, and libwrap's double lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from todokede.access import HostEntry, HostsFileResolver, SystemResolver, verify_name
from todokede.errors import RuleError

HOSTS = Path(__file__).parent / "etc-hosts"


@pytest.fixture
def resolver() -> HostsFileResolver:
    return HostsFileResolver(HOSTS)


def test_reverse(resolver: HostsFileResolver) -> None:
    assert resolver.names("10.1.2.3") == ["good.example.com", "good"]
    assert resolver.names("::ffff:10.1.2.3") == ["good.example.com", "good"]
    assert resolver.names("10.99.0.1") == []


def test_forward(resolver: HostsFileResolver) -> None:
    assert resolver.lookup("GOOD") == HostEntry("good.example.com", ("good",), ("10.1.2.3",))
    assert resolver.addresses("multi.example.com") == ["10.1.2.20", "10.1.2.21"]
    assert resolver.addresses("localhost") == ["::1", "127.0.0.1"]  # RFC 6724 order
    assert resolver.addresses("1.2.3") == ["1.2.0.3"]  # inet_aton forms, as glibc
    assert resolver.lookup("nosuch.example.com") is None


@pytest.mark.parametrize(
    ("addr", "name", "warnings"),
    [
        ("10.1.2.3", "good.example.com", []),
        ("10.9.9.9", "unknown", []),
        (
            "10.7.7.2",
            "paranoid",
            ["host name/name mismatch: spoofed.example.com != first.example.com"],
        ),
        (
            "10.8.8.8",
            "paranoid",
            ["host name/name mismatch: reverse lookup results in non-FQDN 10.8.8.9"],
        ),
        ("::1", "localhost", []),
        ("2001:db8::5", "v6host.example.com", []),
    ],
)
def test_verify_name(
    resolver: HostsFileResolver, addr: str, name: str, warnings: list[str]
) -> None:
    assert verify_name(resolver, addr) == (name, warnings)


def test_missing_hosts_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read hosts file"):
        HostsFileResolver(tmp_path / "nope")


def test_system_resolver_on_loopback() -> None:
    resolver = SystemResolver()
    entry = resolver.lookup("localhost")
    if entry is None:
        pytest.skip("this system does not resolve localhost")
    # (only names /etc/hosts answers: tests send no query to a DNS server)
    assert entry.addresses and all(a in ("127.0.0.1", "::1") for a in entry.addresses)
    assert resolver.addresses("127.0.0.1") == ["127.0.0.1"]  # numeric: no lookup at all

"""``wrap --proxy-protocol``: the backend learns the client's address from a PROXY protocol
header (HAProxy's v1 text, v2 binary), read by a small server that parses it as the
specification says, and by a real Dovecot with ``haproxy = yes``, whose log then names the
client, not the wrapper."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.realservers import dovecot
from tests.wrap.harness import Running, backend, connect, read_until, rules, wait_until
from todokede.wrap.listener import WrapConfig
from todokede.wrap.proxy import SIGNATURE, header

pytestmark = pytest.mark.usefixtures("event_loop_kind")

Seen = tuple[str, str, str, int, int]  # (version, source, destination, ports)


def _exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError(f"the header ends after {len(data)} bytes")
        data += chunk
    return data


def parse(conn: socket.socket) -> Seen:
    """Read one PROXY protocol header off ``conn``, as HAProxy's specification reads it."""
    head = _exactly(conn, 16)
    if head[:12] == SIGNATURE:
        command, family, length = head[12], head[13], struct.unpack("!H", head[14:16])[0]
        body = _exactly(conn, length)
        assert command == 0x21, "version 2, PROXY"
        size = {0x11: 4, 0x21: 16}[family]  # TCP over IPv4, TCP over IPv6
        src, dst = (str(ipaddress.ip_address(body[i : i + size])) for i in (0, size))
        sport, dport = struct.unpack("!HH", body[2 * size : 2 * size + 4])
        return "v2", src, dst, sport, dport
    line = head
    while not line.endswith(b"\r\n"):
        assert len(line) < 107, "a v1 header is at most 107 bytes"
        line += _exactly(conn, 1)
    proxy, protocol, src, dst, sport, dport = line.decode("ascii").split()
    assert proxy == "PROXY" and protocol in ("TCP4", "TCP6")
    for a in (src, dst):
        assert ipaddress.ip_address(a).version == (4 if protocol == "TCP4" else 6)
    return "v1", src, dst, int(sport), int(dport)


@contextlib.contextmanager
def proxied_echo() -> Iterator[tuple[int, list[Seen]]]:
    """A backend that parses the header, then echoes; yields its port and what it parsed."""
    seen: list[Seen] = []

    def handle(conn: socket.socket) -> None:
        conn.settimeout(10)
        seen.append(parse(conn))
        while data := conn.recv(4096):
            conn.sendall(data)

    with backend(handle) as port:
        yield port, seen


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("version", "client", "local", "want"),
    [
        ("v1", ("192.0.2.5", 40000), ("192.0.2.1", 143),
         b"PROXY TCP4 192.0.2.5 192.0.2.1 40000 143\r\n"),
        ("v1", ("2001:db8::5", 40000), ("2001:db8::1", 143),
         b"PROXY TCP6 2001:db8::5 2001:db8::1 40000 143\r\n"),
        ("v1", ("::ffff:192.0.2.5", 1), ("::ffff:192.0.2.1", 2),
         b"PROXY TCP4 192.0.2.5 192.0.2.1 1 2\r\n"),
        ("v1", ("192.0.2.5", 1), ("2001:db8::1", 2),
         b"PROXY TCP6 ::ffff:c000:205 2001:db8::1 1 2\r\n"),
        ("v2", ("192.0.2.5", 40000), ("192.0.2.1", 143),
         SIGNATURE + b"\x21\x11\x00\x0c\xc0\x00\x02\x05\xc0\x00\x02\x01\x9c\x40\x00\x8f"),
        ("v2", ("2001:db8::5", 1), ("::1", 2),
         SIGNATURE + b"\x21\x21\x00\x24" + ipaddress.ip_address("2001:db8::5").packed
         + ipaddress.ip_address("::1").packed + b"\x00\x01\x00\x02"),
    ],
)  # fmt: skip
def test_header(version: str, client: tuple[str, int], local: tuple[str, int], want: bytes) -> None:
    assert header(version, client, local) == want


_ADDRESSES = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).filter(lambda a: not a.ipv4_mapped).map(str)
)


@given(
    st.sampled_from(["v1", "v2"]),
    _ADDRESSES,
    _ADDRESSES,
    st.integers(0, 65535),
    st.integers(0, 65535),
)
def test_any_header_reads_back(version: str, src: str, dst: str, sport: int, dport: int) -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(header(version, (src, sport), (dst, dport)) + b"rest")
        got = parse(b)
        assert b.recv(4) == b"rest"
    mixed = ipaddress.ip_address(src).version != ipaddress.ip_address(dst).version

    def seen(addr: str) -> str:
        ip = ipaddress.ip_address(addr)
        return str(ipaddress.IPv6Address(f"::ffff:{ip}")) if mixed and ip.version == 4 else addr

    assert got == (version, seen(src), seen(dst), sport, dport)


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("source", ["127.0.0.3", "::1"])
def test_the_backend_reads_the_client(tmp_path: Path, version: str, source: str) -> None:
    if source == "::1" and not _has_ipv6_loopback():
        pytest.skip("no IPv6 loopback address here")
    listen = "::1" if ":" in source else "127.0.0.1"
    rd = rules(tmp_path / "rules", "", "")
    with proxied_echo() as (port, seen):

        def make(_unused: int) -> WrapConfig:
            return WrapConfig(
                backend=("127.0.0.1", port),
                daemon="imapd",
                rules_dir=rd,
                listen=[(listen, 0)],
                proxy_protocol=version,
            )

        with Running(make, backend=False) as run:
            with connect(run.port, source, host=listen) as s:
                s.sendall(b"hello\r\n")
                assert read_until(s, b"\r\n") == b"hello\r\n"
                sport = s.getsockname()[1]
            wait_until(lambda: len(seen) == 1)
            assert seen == [(version, source, listen, sport, run.port)]


@pytest.mark.peer
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_dovecot_logs_the_client_not_the_wrapper(tmp_path: Path, version: str) -> None:
    rd = rules(tmp_path / "rules", "", "")
    with dovecot(tmp_path, haproxy=True) as imap:
        assert imap.log is not None

        def make(_unused: int) -> WrapConfig:
            return WrapConfig(
                backend=(imap.host, imap.port),
                daemon="imapd",
                rules_dir=rd,
                listen=[("127.0.0.1", 0)],
                proxy_protocol=version,
            )

        with Running(make, backend=False) as run, connect(run.port, "127.0.0.4") as s:
            assert b"Dovecot ready." in read_until(s, b"\r\n")
            s.sendall(f"a1 LOGIN {imap.user} wrong\r\n".encode())
            assert b"a1 NO" in read_until(s, b"\r\n")
            s.sendall(f"a2 LOGIN {imap.user} {imap.password}\r\n".encode())
            assert b"a2 OK" in read_until(s, b"\r\n")
            s.sendall(b"a3 LOGOUT\r\n")
            read_until(s, b"a3 OK")
        log = imap.log
        wait_until(lambda: "Login: user=<tester>" in log.read_text(errors="replace"))
        logins = [x for x in log.read_text().splitlines() if "Login: user=<tester>" in x]
        assert len(logins) == 1 and "rip=127.0.0.4," in logins[0], logins

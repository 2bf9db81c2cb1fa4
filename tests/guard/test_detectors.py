"""Which lines count as failures, ignoreip, and the journal's export format."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import need
from todokede.guard.config import DEFAULT_IGNORE
from todokede.guard.detectors import Detector
from todokede.guard.networks import Ignore, normalize
from todokede.logs.export import ExportParser, export
from todokede.logs.journal import entry

DOVECOT = (
    b"Dec  7 21:50:01 imap-login: Info: Disconnected: Connection closed "
    b"(auth failed, 2 attempts in 4 secs): user=<tester>, method=PLAIN, rip=192.0.2.5, "
    b"lip=127.0.0.1, session=<abc>"
)


@pytest.mark.parametrize(
    ("filters", "line", "hit"),
    [
        (("dovecot",), DOVECOT, ("192.0.2.5", 2, "imap")),
        (("dovecot",), b"Dec  7 21:50:01 imap-login: Info: Login: user=<t>, rip=192.0.2.5", None),
        (("tcpd",), b"Sep  1 10:00:00 h imapd[1]: refused connect from x.example (192.0.2.7)",
         ("192.0.2.7", 1, "imapd")),
        (("tcpd",), b"Sep  1 10:00:00 h imapd[1]: connect from x.example (192.0.2.7)", None),
        (("sshd",), b"Sep  1 10:00:00 h sshd[9]: Failed password for invalid user bob from "
         b"2001:db8::7 port 4242 ssh2", ("2001:db8::7", 1, "sshd")),
        (("sshd",), b"Sep  1 10:00:00 h sshd[9]: Invalid user bob from 192.0.2.8 port 22",
         ("192.0.2.8", 0, "sshd")),
        (("sshd",), b"Sep  1 10:00:00 h sshd[9]: Accepted password for bob from 192.0.2.8 port 2",
         None),
        (("imapd",), b"Sep  1 10:00:00 h imapd[3]: Login failed user=taro auth=taro "
         b"host=pc.example [192.0.2.9]", ("192.0.2.9", 1, "imapd")),
        (("exploit",), b"Sep  1 10:00:00 h imapd[3]: Login user=" + b"A" * 80 +
         b" host=x [192.0.2.10]", ("192.0.2.10", 1, "imapd")),
        (("tcpd", "dovecot"), DOVECOT, ("192.0.2.5", 2, "imap")),
        (("sshd",), b"not syslog at all", None),
    ],
)  # fmt: skip
def test_builtin_detectors(filters: tuple[str, ...], line: bytes, hit: object) -> None:
    d = Detector(filters)
    assert d.line(line) == hit
    if d.candidates is not None:  # the whole-block form agrees, amid other lines
        block = b"Sep  1 10:00:00 h other[2]: nothing\n" + line + b"\nSep  1 10:00:01 h x: y\n"
        assert d.block(block) == ([] if hit is None else [(hit, line)])


def test_a_block_of_many_failures() -> None:
    lines = [
        b"Sep  1 10:00:00 h sshd[9]: Failed password for root from 192.0.2.%d port 22 ssh2" % i
        for i in range(1, 200)
    ]
    found = Detector(("sshd", "dovecot")).block(b"\n".join(lines) + b"\n")
    assert found == [((f"192.0.2.{i}", 1, "sshd"), lines[i - 1]) for i in range(1, 200)]


def test_a_fail2ban_filter() -> None:
    need("/etc/fail2ban/filter.d/sshd.conf")
    d = Detector(("/etc/fail2ban/filter.d/sshd.conf",))
    line = b"Sep  1 10:00:00 h sshd[9]: Failed password for root from 192.0.2.11 port 22 ssh2"
    assert d.line(line) == ("192.0.2.11", 1, "sshd")
    assert d.line(b"Sep  1 10:00:00 h sshd[9]: Accepted password for root from 192.0.2.11") is None


@pytest.mark.parametrize(
    ("text", "normal"),
    [("192.0.2.1", "192.0.2.1"), ("[2001:DB8::1]", "2001:db8::1"), ("::ffff:192.0.2.1",
     "192.0.2.1"), ("fe80::1%eth0", "fe80::1"), ("host.example", None), ("", None),
     ("192.0.2.256", None)],
)  # fmt: skip
def test_normalize(text: str, normal: str | None) -> None:
    assert normalize(text) == normal


@pytest.mark.parametrize(
    ("nets", "addr", "ignored"),
    [
        (DEFAULT_IGNORE, "127.0.0.5", True),
        (DEFAULT_IGNORE, "::1", True),
        (DEFAULT_IGNORE, "10.1.2.3", True),
        (DEFAULT_IGNORE, "192.0.2.1", False),
        (("127.0.0.1",), "127.0.0.5", False),  # a test that bans 127.0.0.x names its own
        (("127.0.0.1",), "127.0.0.1", True),
        (("192.0.2.0/24",), "192.0.2.77", True),
        (("2001:db8::/32",), "2001:db8::5", True),
        (("2001:db8::/32",), "192.0.2.1", False),
        ((), "not-an-address", True),
    ],
)
def test_ignoreip(nets: tuple[str, ...], addr: str, ignored: bool) -> None:
    assert (addr in Ignore(nets)) is ignored


def test_journal_entries_are_frames_the_detectors_read() -> None:
    # the scanner's journal reader gives guard its frames: the same fields, the same hits
    data = export(
        [
            {
                b"__REALTIME_TIMESTAMP": b"1796680000000000",
                b"_HOSTNAME": b"h",
                b"SYSLOG_IDENTIFIER": b"sshd",
                b"_PID": b"9",
                b"MESSAGE": b"Invalid user bob from 192.0.2.8 port 22",
            },
            {b"__REALTIME_TIMESTAMP": b"1", b"SYSLOG_IDENTIFIER": b"x", b"MESSAGE": b"a\nb\x00"},
        ]
    )
    parser = ExportParser()
    frames = [e.frame() for f in parser.feed(data) + parser.end() if (e := entry(f))]
    assert [f[1:] for f in frames] == [
        (b"h", b"sshd", b"9", b"Invalid user bob from 192.0.2.8 port 22"),
        (b"", b"x", b"", b"a\nb\x00"),
    ]
    assert Detector(("sshd",)).frame(frames[0]) == ("192.0.2.8", 0, "sshd")
    assert Detector(("sshd", "dovecot")).frame(frames[1]) is None


@given(st.binary(max_size=300))
def test_detectors_survive_garbage(data: bytes) -> None:
    d = Detector(("tcpd", "dovecot", "imapd", "sshd", "exploit"))
    hit = d.line(b"Sep  1 10:00:00 h sshd[1]: " + data)
    assert hit is None or isinstance(hit[0], str)
    d.line(data)


@pytest.mark.parametrize(
    ("nets", "logged", "banable"),
    [
        (("127.0.0.1",), "192.0.2.1", "192.0.2.1"),
        (("127.0.0.1",), "127.0.0.1", None),
        (("127.0.0.1",), "::ffff:127.0.0.1", None),  # mapped: the IPv4 address counts
        (("127.0.0.1",), "127.0.0.2", "127.0.0.2"),
        (DEFAULT_IGNORE, "[2001:DB8::1]", "2001:db8::1"),
        (DEFAULT_IGNORE, "fc00::5", None),
        (DEFAULT_IGNORE, "172.31.255.255", None),
        (DEFAULT_IGNORE, "172.32.0.1", "172.32.0.1"),
        (("192.0.2.7/32", "2001:db8::7/128"), "2001:db8::7", None),
        ((), "host.example", None),
    ],
)
def test_banable(nets: tuple[str, ...], logged: str, banable: str | None) -> None:
    """An address as logged: its canonical form unless it is none or ignored (asked twice:
    the second answer comes from the memo)."""
    ignore = Ignore(nets)
    assert ignore.banable(logged) == banable
    assert ignore.banable(logged) == banable
    normal = normalize(logged)
    assert banable == (None if normal is None or normal in ignore else normal)

"""The detectors' prefilter is exact: a block read through the markers
(:meth:`Detector.block`) gives the same hits as every line framed and parsed
(:meth:`Detector.plain`), on fail2ban's sample logs and on fuzzed mixes of real lines."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.guard.test_agreement import MAIL
from tests.logs.test_auth import FAILED
from todokede.guard.detectors import BUILTIN, Detector
from todokede.logs.fail2ban import Failure

SAMPLES = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
ALL = tuple(BUILTIN)
OTHER = [
    b"Sep  1 10:00:00 gw sshd[1]: Accepted password for taro from 192.0.2.1 port 22 ssh2",
    b"Sep  1 10:00:00 gw sshd[1]: Connection closed by 192.0.2.1 port 22 [preauth]",
    b"Sep  1 10:00:00 gw sshd[1]: message repeated 2 times: [ Server listening ]",
    b"Sep  1 10:00:00 gw sshd[1]: Failed publickey for git from 192.0.2.1 port 5 ssh2: RSA x",
    b"Sep  1 10:00:00 gw CRON[2]: pam_unix(cron:session): session opened for user root",
    b"Sep  1 10:00:00 mx dovecot: imap-login: Login: user=<taro>, method=PLAIN, rip=192.0.2.1",
    b"Sep  1 10:00:00 mx dovecot: imap-login: Disconnected: Too long command line (rip=1.2.3.4)",
    b"Sep  1 10:00:00 mx imapd[3]: Login user=" + b"A" * 300 + b" host=x [192.0.2.9]",
    b"Sep  1 10:00:00 mx imapd[3]: refused connect from 192.0.2.7 (192.0.2.7)",
    b"Sep  1 10:00:00 mx in.ftpd[3]: connect from 192.0.2.7 (192.0.2.7)",
    b"Sep  1 10:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]",
    b"Sep  1 10:00:00 mx kernel: [ 1.0] Failed to load module",
]
REAL = [line.encode() for line, _want in FAILED] + MAIL.splitlines() + OTHER
_BSD = re.compile(rb"^Sep  1 10:00:(\d\d) (\S+) ([^\s\[:]+)(?:\[(\d+)\])?: ")


def _rfc5424(line: bytes) -> bytes:
    """The same line as an RFC 5424 one (the message no longer follows ``prog: ``)."""
    return _BSD.sub(
        lambda m: b"<38>1 2024-09-01T10:00:%sZ %s %s %s - - " % (m[1], m[2], m[3], m[4] or b"-"),
        line,
    )


def _rfc3339(line: bytes) -> bytes:
    return line.replace(b"Sep  1 10:00:", b"2024-09-01T10:00:", 1).replace(b"Z ", b"+00:00 ", 1)


def _same(names: tuple[str, ...], data: bytes) -> int:
    d = Detector(names)
    assert d.candidates is not None
    got = d.block(data)
    assert got == d.plain(data)
    return len(got)


@pytest.mark.parametrize("name", ["sshd", "dovecot", "uwimap-auth", "postfix", "sendmail-auth"])
def test_fail2ban_sample_logs(name: str) -> None:
    if not (SAMPLES / name).exists():
        pytest.skip(f"fail2ban's sample logs are not installed ({SAMPLES})")
    data = re.sub(rb"(?m)^@[0-9a-f]{24} ", b"", (SAMPLES / name).read_bytes())
    assert _same(ALL, data) > 0, f"no failure in {name}"
    for one in ALL:
        _same((one,), data)


def test_the_real_lines_each_way() -> None:
    data = b"\n".join(REAL + [_rfc5424(x) for x in REAL] + [_rfc3339(x) for x in REAL])
    assert _same(ALL, data) > len(FAILED)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(REAL),
            st.sampled_from([bytes, _rfc5424, _rfc3339]),
            st.integers(0, 200),  # where to cut or splice
            st.sampled_from([b"", b"\r", b"\x00\xff", b"\n", b" from 192.0.2.77 port 1"]),
        ),
        max_size=30,
    ),
    st.sets(st.sampled_from(ALL), min_size=1),
)
@settings(max_examples=300, deadline=None)
def test_fuzzed_mixes(
    lines: list[tuple[bytes, Callable[[bytes], bytes], int, bytes]], names: set[str]
) -> None:
    parts = []
    for line, form, at, junk in lines:
        text = form(line)
        parts.append(text[:at] + junk + text[at:] if at < len(text) else text + junk)
    _same(tuple(sorted(names)), b"\n".join(parts))


SSHD_CONF = Path("/etc/fail2ban/filter.d/sshd.conf")


def _same_fresh(names: tuple[str, ...], data: bytes) -> int:
    """:func:`_same` for fail2ban filters, which keep state: each way with its own."""
    d = Detector(names)
    assert d.candidates is not None
    got = d.block(data, "log")
    assert got == Detector(names).plain(data, "log")
    return len(got)


@pytest.mark.parametrize(
    "names", [(str(SSHD_CONF),), ("sshd", str(SSHD_CONF)), ("tcpd", str(SSHD_CONF))]
)
def test_fail2ban_filter_needles(names: tuple[str, ...]) -> None:
    """A fail2ban filter is fed only the lines with one of its needles (and RFC 5424 lines,
    whose text it reads is made from the fields): it finds what it finds in every line."""
    if not SSHD_CONF.exists() or not (SAMPLES / "sshd").exists():
        pytest.skip(f"fail2ban is not installed ({SSHD_CONF})")
    data = re.sub(rb"(?m)^@[0-9a-f]{24} ", b"", (SAMPLES / "sshd").read_bytes())
    assert _same_fresh(names, data) > 50
    mixed = b"\n".join(REAL + [_rfc5424(x) for x in REAL] + [_rfc3339(x) for x in REAL])
    assert _same_fresh(names, mixed) > len(FAILED)


@given(st.lists(st.tuples(st.sampled_from(REAL), st.sampled_from([bytes, _rfc5424])), max_size=20))
@settings(max_examples=50, deadline=None)
def test_fail2ban_filter_needles_fuzzed(
    lines: list[tuple[bytes, Callable[[bytes], bytes]]],
) -> None:
    if not SSHD_CONF.exists():
        pytest.skip(f"fail2ban is not installed ({SSHD_CONF})")
    _same_fresh((str(SSHD_CONF),), b"\n".join(form(x) for x, form in lines))


_FAILED_PARTS = st.tuples(
    st.sampled_from([b"Sep  1 10:00:00", b"Feb 30 10:00:00", b"Sep  0 10:00:00",
                     b"Xyz  1 10:00:00", b"Sep  1 25:00:00", b"<38>Sep  1 10:00:00"]),
    st.sampled_from([b"gw", b"gw:", b"[gw]", b"g\tw", b"\xff"]),
    st.sampled_from([b"sshd[1]", b"sshd-session[22]", b"in.sshd[3]", b"sshd", b"sshdx[1]",
                     b"sshd[x]"]),
    st.sampled_from([b"password", b"publickey", b"none", b"keyboard-interactive/pam", b""]),
    st.sampled_from([b"root", b"invalid user admin", b"illegal user ", b"a from 192.0.2.9 port 1",
                     b"\xe3\x81\x82", b"x\ry", b"x: y"]),
    st.sampled_from([b"192.0.2.1", b"::ffff:192.0.2.2", b"::ffff:dead:beef", b"host.example",
                     b"2001:db8::1", b"[192.0.2.3]"]),
    st.sampled_from([b" port 22 ssh2", b" port 22", b" port 22 ssh2: RSA SHA256:x", b"",
                     b" port 22 ssh2\r", b" port x ssh2", b" port 22 ssh2: x\ry", b" port 22 ssh",
                     b" port 22 ssh2: x\r"]),
)  # fmt: skip


@given(st.lists(_FAILED_PARTS, max_size=20), st.sampled_from([("sshd",), ("sshd", "tcpd")]))
@settings(max_examples=300, deadline=None)
def test_sshd_failed_lines_read_whole(
    parts: list[tuple[bytes, ...]], names: tuple[str, ...]
) -> None:
    """sshd's ``Failed`` lines read where they are found are read as the parser reads them,
    odd stamps, hosts, programs, users, addresses and endings included."""
    lines = [
        b"%s %s %s: Failed %s for %s from %s%s" % (stamp, host, prog, how, user, addr, end)
        for stamp, host, prog, how, user, addr, end in parts
    ]
    _same(names, b"\n".join(lines))


def test_sshd_failed_lines_skip_the_framer(monkeypatch: pytest.MonkeyPatch) -> None:
    d = Detector(("sshd",))

    def framed(line: bytes) -> None:
        raise AssertionError(f"framed: {line!r}")

    lines = [
        b"Sep  1 10:00:00 gw sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2",
        b"Sep  1 10:00:01 gw sshd[1]: Failed none for invalid user a from ::ffff:192.0.2.2 port 2",
        b"Sep  1 10:00:02 gw sshd[1]: Failed publickey for git from 192.0.2.3 port 5 ssh2: RSA x",
    ]
    monkeypatch.setattr(d.framer, "frame", framed)
    assert d.block(b"\n".join(lines) + b"\n") == [
        (("192.0.2.1", 1, "sshd"), lines[0]),
        (("192.0.2.2", 0, "sshd"), lines[1]),
    ]


def test_a_fail2ban_filter_reads_only_lines_with_its_needles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not SSHD_CONF.exists():
        pytest.skip(f"fail2ban is not installed ({SSHD_CONF})")
    d = Detector((str(SSHD_CONF),))
    flt = d.filters[0]
    fed: list[str] = []
    feed = flt.feed

    def spy(s: str, text: str, when: tuple[float, datetime] | None) -> list[Failure]:
        fed.append(text)
        return feed(s, text, when)

    monkeypatch.setattr(flt, "feed", spy)
    other = b"Sep  1 10:00:00 gw CRON[2]: pam_unix(cron:session): session closed for user root"
    failed = b"Sep  1 10:00:01 gw sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2"
    assert d.block(b"\n".join([other] * 50 + [failed] + [other] * 50)) == [
        (("192.0.2.1", 1, "sshd"), failed)
    ]
    assert fed == ["gw sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2"]

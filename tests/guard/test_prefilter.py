"""The detectors' prefilter is exact: a block read through the markers
(:meth:`Detector.block`) gives the same hits as every line framed and parsed
(:meth:`Detector.plain`), on fail2ban's sample logs and on fuzzed mixes of real lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.guard.test_agreement import MAIL
from tests.logs.test_auth import FAILED
from todokede.guard.detectors import BUILTIN, Detector

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
def test_fuzzed_mixes(lines: list[tuple[bytes, object, int, bytes]], names: set[str]) -> None:
    parts = []
    for line, form, at, junk in lines:
        text = form(line)  # type: ignore[operator]
        parts.append(text[:at] + junk + text[at:] if at < len(text) else text + junk)
    _same(tuple(sorted(names)), b"\n".join(parts))

"""Failed logins become access probes: tries counted once, the site's own hosts left out,
the same from the C scanner, the Python fast path and the general path."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.detect.test_fast import native, run
from todokede.detect import DetectConfig, Scanner
from todokede.logs.syslog import Framer, YearRule

AUTH_LOG = b"\n".join(
    [
        b"Sep  1 10:00:00 gw sshd[11]: Invalid user admin from 203.0.113.5 port 40001",
        b"Sep  1 10:00:02 gw sshd[11]: Failed password for invalid user admin from"
        b" 203.0.113.5 port 40001 ssh2",
        b"Sep  1 10:00:04 gw sshd[11]: Failed password for invalid user admin from"
        b" 203.0.113.5 port 40001 ssh2",
        b"Sep  1 10:00:05 gw sshd[11]: Connection closed by invalid user admin"
        b" 203.0.113.5 port 40001 [preauth]",
        b"Sep  1 10:01:00 gw sshd[12]: pam_unix(sshd:auth): authentication failure;"
        b" logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7  user=root",
        b"Sep  1 10:01:01 gw sshd[12]: Failed password for root from 198.51.100.7 port 40002 ssh2",
        b"Sep  1 10:01:02 gw sshd[12]: message repeated 2 times: [ Failed password for"
        b" root from 198.51.100.7 port 40002 ssh2]",
        b"Sep  1 10:02:00 gw sshd[13]: Connection closed by invalid user oracle"
        b" 192.0.2.44 port 40003 [preauth]",
        b"Sep  1 10:03:00 gw sshd[14]: Failed password for taro from 10.1.2.3 port 40004 ssh2",
        b"Sep  1 10:04:00 mx postfix/smtpd[15]: warning: unknown[203.0.113.5]: SASL LOGIN"
        b" authentication failed: UGFzc3dvcmQ6",
        b"Sep  1 10:04:01 mx postfix/smtpd[15]: Q1: client=unknown[203.0.113.5]",
    ]
)


def _scan(data: bytes, config: DetectConfig | None = None) -> list[tuple[object, ...]]:
    sc = Scanner(config or DetectConfig(), year=2024)
    sc._framers["auth.log"] = Framer(YearRule.oldest(2024, 1, 1))
    sc.feed("auth.log", data)
    return [
        (f.service, f.sources, f.count, f.details["tries"], f.details.get("users"))
        for f in sc.result().findings
        if f.outcome == "failed"
    ]


def test_tries_counted_once_and_the_site_left_out() -> None:
    assert _scan(AUTH_LOG) == [
        ("sshd", ["203.0.113.5"], 2, 2, ["admin"]),
        ("sshd", ["198.51.100.7"], 3, 3, ["root"]),
        # no try logged (password logins refused): the lines that name it
        ("sshd", ["192.0.2.44"], 1, 0, ["oracle"]),
        ("postfix/smtpd", ["203.0.113.5"], 1, 1, None),
    ]
    # 10.1.2.3 is inside the default networks; naming the site moves the line
    inside = _scan(AUTH_LOG, DetectConfig(local_nets=("203.0.113.0/24", "198.51.100.0/24")))
    assert [s for _svc, s, *_ in inside] == [["192.0.2.44"], ["10.1.2.3"]]


@pytest.mark.parametrize(("minimum", "want"), [(1, 4), (2, 2), (3, 1), (4, 0)])
def test_login_min(minimum: int, want: int) -> None:
    assert len(_scan(AUTH_LOG, DetectConfig(login_min=minimum))) == want


@native
def test_every_path_reads_them_alike() -> None:
    assert run(AUTH_LOG, "native") == run(AUTH_LOG, "python") == run(AUTH_LOG, "general")


BODIES = [
    b"sshd[1]: Failed password for root from 192.0.2.9 port 22 ssh2",
    b"sshd-session[2]: Invalid user x from 192.0.2.9 port 22",
    b"postfix/smtpd[3]: warning: unknown[192.0.2.9]: SASL PLAIN authentication failed: ",
    b"postfix/smtpd[3]: Q1: client=unknown[192.0.2.9]",
    b"postfix/smtp[4]: Q1: to=<a@far.example>, relay=x[192.0.2.1]:25, status=deferred "
    b"(SASL authentication failed; server x said 535)",
    b"postfix/qmgr[5]: Q1: from=<s@out.example>, size=10, nrcpt=1",
    b"postfix/qmgr[5]: Q1: removed",
    b"dovecot: imap-login: Disconnected (auth failed, 3 attempts): user=<u>, rip=192.0.2.9",
]


@native
@settings(
    max_examples=int(os.environ.get("FUZZ", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [b"Sep  1 10:00:00 mx ", b"Sep 01 10:00:01 mx ", b"2024-09-01T10:00:02 mx "]
            ),
            st.sampled_from(BODIES),
            st.sampled_from([b"", b"\r", b"\xff"]),
        ),
        max_size=30,
    )
)
def test_fuzzed_login_lines_agree(rows: list[tuple[bytes, bytes, bytes]]) -> None:
    data = b"\n".join(a + b + c for a, b, c in rows)
    assert run(data, "native") == run(data, "python") == run(data, "general")


def _postfix_bomb(clients: list[bytes]) -> bytes:
    lines = []
    for i, client in enumerate(clients):
        q = b"Q%d" % i
        t = b"Sep  1 10:%02d:00" % (i % 60)
        lines += [
            t + b" mx postfix/smtpd[1]: " + q + b": client=" + client,
            t + b" mx postfix/qmgr[2]: " + q + b": from=<happy@today.example>, size=900, nrcpt=1",
            t + b" mx postfix/local[3]: " + q + b": to=<sachiko@mx.example>, relay=local, "
            b"status=sent (delivered to mailbox)",
            t + b" mx postfix/qmgr[2]: " + q + b": removed",
        ]
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize(
    ("clients", "sources"),
    [
        (
            [b"dialup-151.example.net[203.0.113.151]"] * 6,
            ["dialup-151.example.net", "203.0.113.151"],
        ),
        ([b"unknown[203.0.113.9]"] * 6, ["203.0.113.9"]),
        (
            [b"a.example[192.0.2.1]"] * 3 + [b"b.example[IPv6:2001:db8::2]"] * 3,
            ["a.example", "b.example", "192.0.2.1", "2001:db8::2"],
        ),
    ],
)
def test_a_mail_bomb_names_its_clients(clients: list[bytes], sources: list[str]) -> None:
    for native_c in (True, False):
        sc = Scanner(DetectConfig(bomb_min=5), year=2024, native=native_c)
        sc._framers["maillog"] = Framer(YearRule.oldest(2024, 1, 1))
        sc.feed("maillog", _postfix_bomb(clients))
        bombs = [f for f in sc.result().findings if f.kind == "mail-bomb"]
        assert [(b.sources, b.count, b.details["sender"]) for b in bombs] == [
            (sources, 6, "happy@today.example")
        ]

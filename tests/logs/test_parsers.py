# ruff: noqa: E501 - real log lines are long
"""tcpd, sendmail 8.x and IMAP/POP lines -> events."""

from __future__ import annotations

from datetime import date

import pytest

from todokede.logs import Framer, YearRule, parse_line
from todokede.logs.events import Event

FRAMER = Framer(YearRule.newest(date(1997, 12, 31)))


def parse(line: str | bytes) -> Event | None:
    raw = line.encode() if isinstance(line, str) else line
    return parse_line(raw, FRAMER)


@pytest.mark.parametrize(
    ("line", "want"),
    [
        (
            "Sep  1 10:00:00 mail imapd[1]: connect from pc1.lab.example (172.16.1.1)",
            ("granted", "imapd", "pc1.lab.example", "172.16.1.1", ""),
        ),
        (
            "Sep  1 10:00:00 mail imapd[1]: refused connect from 192.0.2.7 (192.0.2.7)",
            ("refused", "imapd", "", "192.0.2.7", ""),
        ),
        (
            "Sep  1 10:00:00 mail imapd[1]: refused connect from bad.example",
            ("refused", "imapd", "bad.example", "", ""),
        ),
        (
            "Sep  1 10:00:00 mail in.telnetd[9]: connect from alice@pc3.example (172.16.1.3)",
            ("granted", "in.telnetd", "pc3.example", "172.16.1.3", "alice"),
        ),
        (
            "Sep  1 10:00:00 mail in.fingerd[9]: refused connect from unknown (203.0.113.9)",
            ("refused", "in.fingerd", "", "203.0.113.9", ""),
        ),
        (
            "Sep  1 10:00:00 mail sshd[9]: refused connect from x.example (2001:db8::1)",
            ("refused", "sshd", "x.example", "2001:db8::1", ""),
        ),
    ],
)
def test_tcpd(line: str, want: tuple[str, ...]) -> None:
    ev = parse(line)
    assert ev is not None and ev.kind == "connect"
    assert (ev.status, ev.service, ev.host, ev.addr, ev.user) == want


SENDMAIL = [
    (
        "Sep  8 22:00:22 mail sendmail[1]: WAA04493: from=<offer35@us.example>, size=3009, class=0, "
        "pri=67209, nrcpts=19, msgid=<1@us.example>, proto=SMTP, relay=dial-17.us.example [198.51.100.117]",
        {
            "kind": "from",
            "qid": "WAA04493",
            "sender": "offer35@us.example",
            "size": 3009,
            "host": "dial-17.us.example",
            "addr": "198.51.100.117",
        },
    ),
    (
        "Sep  8 22:00:40 mail sendmail[1]: WAA04493: to=<a@x.example>,<b@x.example>, delay=00:00:18, "
        "xdelay=00:00:01, mailer=esmtp, relay=mx.x.example. [203.0.113.1], stat=Sent (ok)",
        {"kind": "to", "rcpts": ("a@x.example", "b@x.example"), "via": "esmtp", "status": "sent"},
    ),
    (
        "Sep  8 22:00:40 mail sendmail[1]: WAA04493: to=<c@y.example>, delay=00:00:18, xdelay=00:00:01, "
        "mailer=esmtp, stat=Host unknown (Name server: mx.y.example: host not found)",
        {"kind": "to", "rcpts": ("c@y.example",), "status": "bounced"},
    ),
    (
        "Sep  8 22:00:40 mail sendmail[1]: WAA04493: to=root, ctladdr=postmaster (0/0), delay=00:00:01, "
        "xdelay=00:00:00, mailer=local, stat=Sent",
        {"kind": "to", "rcpts": ("root",), "via": "local", "status": "sent"},
    ),
    (
        "Sep  8 22:00:40 mail sendmail[1]: WAA04493: to=<d@z.example>, delay=04:00:00, mailer=esmtp, "
        "relay=mx.z.example., stat=Deferred: Connection timed out with mx.z.example.",
        {"kind": "to", "status": "deferred"},
    ),
    (
        "Sep  8 22:00:47 mail sendmail[1]: WAA04493: WAA04507: return to sender: Host unknown",
        {"kind": "notice", "qid": "WAA04493", "via": "WAA04507"},
    ),
    (
        "Sep  8 22:00:47 mail sendmail[1]: WAA04493: WAA04508: postmaster notify: Host unknown",
        {"kind": "notice", "via": "WAA04508"},
    ),
    (
        "Sep  9 10:05:12 mail sendmail[1]: ruleset=check_rcpt, arg1=<s@aol.example>, "
        "relay=dial-42.us.example [198.51.100.142], reject=550 5.7.1 <s@aol.example>... Relaying denied",
        {
            "kind": "reject",
            "status": "relay-denied",
            "host": "dial-42.us.example",
            "addr": "198.51.100.142",
            "rcpts": ("s@aol.example",),
        },
    ),
]


@pytest.mark.parametrize(("line", "want"), SENDMAIL)
def test_sendmail(line: str, want: dict[str, object]) -> None:
    ev = parse(line)
    assert ev is not None
    for key, value in want.items():
        assert getattr(ev, key) == value, key


@pytest.mark.parametrize(
    ("line", "kind", "addr"),
    [
        (
            "Sep  1 10:00:01 mail imapd[1]: Login user=taro host=pc12.example [172.16.1.12]",
            "login",
            "172.16.1.12",
        ),
        (
            "Sep  1 10:00:01 mail imapd[1]: Login failed user="
            + "A" * 80
            + " auth=x host=evil.example [192.0.2.66]",
            "exploit",
            "192.0.2.66",
        ),
        (
            b"Sep  1 10:00:01 mail imapd[1]: Login failure user=\x90\x90\x90\x90\x90\xeb\x1f host=e [192.0.2.9]",
            "exploit",
            "192.0.2.9",
        ),
        (
            "Nov 28 00:40:00 mx dovecot: imap-login: Login: user=<tester>, method=PLAIN, rip=127.0.0.1, "
            "lip=127.0.0.1, mpid=5, session=<x>",
            "login",
            "127.0.0.1",
        ),
        (
            "Nov 28 00:40:00 mx dovecot: imap-login: Disconnected: Input buffer full (no auth attempts "
            "in 0 secs): user=<>, rip=192.0.2.44, lip=127.0.0.1, session=<y>",
            "exploit",
            "192.0.2.44",
        ),
    ],
)
def test_imap(line: str | bytes, kind: str, addr: str) -> None:
    ev = parse(line)
    assert ev is not None
    assert (ev.kind, ev.addr) == (kind, addr)


def test_japanese_and_broken_bytes_never_stop() -> None:
    ja = "ディスク".encode("iso2022_jp")
    for raw in (
        b"Sep  5 12:00:00 mail kernel: " + ja,
        b"Sep  5 12:00:00 mail su: \xff\xfe\x00",
        "Sep  5 12:00:00 mail imapd[3]: Login user=太郎 host=h [10.0.0.1]".encode("euc_jp"),
    ):
        assert FRAMER.frame(raw) is not None
        parse(raw)

# ruff: noqa: E501 - real log lines are long
from __future__ import annotations

import calendar
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todokede.detect.state import State
from todokede.logs.syslog import Framer, YearRule


def ts(*args: int) -> int:
    return calendar.timegm((*args, 0, 0, 0)[:6])


FRAMES = [
    (
        b"Sep  1 10:00:00 mail imapd[123]: connect from a (1.2.3.4)",
        (ts(1997, 9, 1, 10, 0, 0), b"mail", b"imapd", b"123", b"connect from a (1.2.3.4)"),
    ),
    (
        b"2026-11-28T00:39:47.123456+09:00 mx postfix/smtpd[15329]: connect from x[1.2.3.4]",
        (
            ts(2026, 11, 28, 0, 39, 47),
            b"mx",
            b"postfix/smtpd",
            b"15329",
            b"connect from x[1.2.3.4]",
        ),
    ),
    (
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example su - ID47 - \xef\xbb\xbf'su root' failed",
        (ts(2003, 10, 11, 22, 14, 15), b"mymachine.example", b"su", b"", b"'su root' failed"),
    ),
    (
        b'<165>1 2003-10-11T22:14:15Z h app 77 ID [ex@32473 iut="3" x="a]b"][y@1 k="v"] hello',
        (ts(2003, 10, 11, 22, 14, 15), b"h", b"app", b"77", b"hello"),
    ),
    (
        b"<13>Sep  2 03:04:05 gw tcpd: refused connect from b",
        (ts(1997, 9, 2, 3, 4, 5), b"gw", b"tcpd", b"", b"refused connect from b"),
    ),
    (
        b"Sep  2 10:15:04 mail last message repeated 2 times",
        (ts(1997, 9, 2, 10, 15, 4), b"mail", b"", b"", b"last message repeated 2 times"),
    ),
]


@pytest.mark.parametrize(("line", "want"), FRAMES)
def test_frame(line: bytes, want: tuple[object, ...]) -> None:
    framer = Framer(YearRule.oldest(1997, 8, 1))
    assert framer.frame(line) == want


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"garbage",
        b"Sep 99 10:00:00 h p: m",
        b"Foo  1 10:00:00 h p: m",
        b"2026-13-01T00:00:00 h p: m",
        b"<999999>1 - - - - - -",
        b"Sep  1 25:00:00 h p: m",
        b"Feb 29 10:00:00 h p: m",
    ],
)
def test_not_syslog(line: bytes) -> None:
    assert Framer(YearRule.oldest(1997, 1, 1)).frame(line) is None


def test_year_rollover_newest_anchor() -> None:
    # a file last written on 2 January: December lines are from the year before
    rule = YearRule.newest(date(1998, 1, 2))
    assert rule.year_for(12, 31) == 1997
    assert rule.year_for(1, 2) == 1998
    assert rule.year_for(1, 3) == 1998  # a day of slack for clocks
    assert rule.year_for(6, 1) == 1997


def test_year_rollover_oldest_anchor() -> None:
    # --year 1997 names the year of the first line (December): January is 1998
    rule = YearRule.oldest(1997, 12, 30)
    assert rule.year_for(12, 31) == 1997
    assert rule.year_for(1, 1) == 1998


lines = st.lists(st.binary(max_size=120).filter(lambda b: b"\n" not in b), max_size=30)


@settings(max_examples=150, deadline=None)
@given(lines)
def test_any_bytes_every_bad_line_counted(raw: list[bytes]) -> None:
    framer = Framer(YearRule.oldest(1997, 1, 1))
    state = State()
    block = b"".join(r + b"\n" for r in raw)
    n = state.feed(block, framer, "fuzz", 1)
    assert n == len(raw)
    bad = sum(1 for r in raw if r.rstrip(b"\r") and framer.frame(r.rstrip(b"\r")) is None)
    assert state.unparsed == bad


syslogish = st.builds(
    lambda prog, msg: b"Sep  1 10:00:00 host " + prog + b"[1]: " + msg,
    st.sampled_from(
        [
            b"postfix/smtpd",
            b"postfix/qmgr",
            b"postfix/smtp",
            b"postfix/local",
            b"sendmail",
            b"imapd",
            b"dovecot",
            b"imap-login",
            b"ipop3d",
            b"in.telnetd",
        ]
    ),
    st.binary(max_size=200).filter(lambda b: b"\n" not in b and b"\r" not in b),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(syslogish, max_size=20))
def test_parsers_survive_any_message(raw: list[bytes]) -> None:
    from todokede.detect.config import DetectConfig
    from todokede.detect.findings import build

    for fast in (True, False):
        state = State(fast=fast)
        state.feed(b"\n".join(raw) + b"\n", Framer(YearRule.oldest(1997, 1, 1)), "fuzz", 1)
        assert state.unparsed == 0
        for f in build(state, DetectConfig()):
            assert f.to_dict()["kind"]


@pytest.mark.parametrize("fast", [True, False])
def test_bad_timestamps_on_common_lines_are_counted(fast: bool) -> None:
    good = b"Sep  1 10:00:00 gw imapd[1]: connect from a.example (192.0.2.1)\n"
    bad = [
        b"Sep 31 10:00:00 gw imapd[1]: connect from a.example (192.0.2.1)\n",
        b"Sep  1 10:61:00 gw imapd[1]: connect from a.example (192.0.2.1)\n",
        b"Sep 31 10:00:00 mx postfix/qmgr[2]: ABC: from=<a@b>, size=1, nrcpt=1 (queue active)\n",
    ]
    for block in (good + b"".join(bad), good * 10 + b"".join(bad) + good * 10):
        state = State(fast=fast)
        state.feed(block, Framer(YearRule.oldest(1997, 1, 1)), "t", 1)
        assert state.unparsed == 3

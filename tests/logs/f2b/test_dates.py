"""Date detection against fail2ban's own detector, run by the system's Python.

Both read the same lines, in order, through one detector per datepattern (the detector
keeps state from line to line), under one fixed clock and time zone; for each line they
must cut out the same text and compute the same Unix time.
"""

from __future__ import annotations

import datetime

import pytest

from tests.logs.f2b.oracle import fail2ban
from todokede.logs.f2b.dates import DateDetector

NOW = 1124013600  # fail2ban's test clock: 2005-08-14 10:00 UTC

LINES = [
    "Jan 23 21:59:59 host sshd[1]: x",
    "Sun Jan 23 21:59:59 2005 host",
    "2005-01-23 21:59:59 exim login authenticator failed",
    "2005-01-23T21:59:59.123+02:00 host prog: x",
    "2005-01-23 21:59:59,123 WARN x",
    "23/01/2005 21:59:59 x",
    "23-Jan-2005 21:59:59 x",
    '192.0.2.1 - - [23/Jan/2005:21:59:59 +0100] "GET / HTTP/1.1" 401',
    "[Sun Jan 23 21:59:59.123456 2005] [auth_basic:error] [pid 1] x",
    '{"t": "2005-01-23T21:59:59Z", "msg": "x"}',
    "01/23/2005:21:59:59 x",
    "1106513999 x",
    "[1106513999] nsd[1]: x",
    "type=USER_AUTH msg=audit(1106513999.123:99): pid=1",
    "1106513999123 long epoch",
    "@4000000041f4125f00000000 tai64n",
    "21:59:59 time only",
    "<01/23/05@21:59:59> x",
    "050123 21:59:59 mysqld",
    "Jan 23, 2005 9:59:59 PM x",
    "Jan-23-05 21:59:59 x",
    "20050123T215959 x",
    "CET Sun Jan 23 21:59:59 2005 x",
    "+0100 Jan 23 21:59:59 x",
    "no date at all",
    "<34>1 2005-01-23T21:59:59.003Z host app 1 ID47 - msg",
    "t=2005-01-23T21:59:59+0100 lvl=eror msg=x",
    "L 01/23/2005 - 21:59:59: x",
    "Aug 14 11:59:59 host x",
    "Dec 31 23:59:59 host x",
    "2005:01:23-21:59:59 x",
    "Jan 32 21:59:59 invalid day",
    "XYZW Sun Jan 23 21:59:59 2005 unknown zone",
]
PATTERNS = [
    None,
    "{^LN-BEG}",
    "EPOCH",
    "{^LN-BEG}Epoch",
    "LEPOCH",
    "{^LN-BEG}TAI64N",
    "{NONE}",
    "^<\\d+>\\d+\\s+{DATE}",
    "^[^\\[]*\\[({DATE})",
    "%d/%b[^/]*/%Y:%H:%M:%S %z",
    "^t=%Y-%m-%dT%H:%M:%S%z",
    "^L %d/%m/%Y - %H:%M:%S",
    "^%Y:%m:%d-%H:%M:%S",
    "**%H:%M:%S**",
    "{UNB}%Y-%m-%d",
    "^(?:%Y-)?%m-%d[ T]%H:%M:%S(?:\\.%f)?",
    "%b %d, %ExY %I:%M:%S %p",
    "{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\\s*%z)?",
]

ORACLE = """
import json, sys
from fail2ban.server.mytime import MyTime
from fail2ban.server.datedetector import DateDetector
MyTime.setTime(%d)
out = []
for pattern in json.loads(sys.argv[1]):
    dd = DateDetector()
    if pattern is not None:
        dd.appendTemplate(pattern)
    rows = []
    for line in json.loads(sys.argv[2]):
        m, t = dd.matchTime(line)
        if m is None:
            rows.append(None)
            continue
        try:
            date = dd.getTime(line, (m, t))
        except Exception as exc:
            date = [type(exc).__name__]
        rows.append([m.start(1), m.end(1), date[0] if date else None])
    out.append(rows)
print(json.dumps(out))
"""


def ours(pattern: str | None) -> list[list[object] | None]:
    dd = DateDetector()
    if pattern is not None:
        dd.append(pattern)
    now = datetime.datetime.fromtimestamp(NOW)
    rows: list[list[object] | None] = []
    for line in LINES:
        m, t = dd.match(line)
        if m is None or t is None:
            rows.append(None)
            continue
        try:
            date = dd.date(m, t, now)
        except Exception as exc:  # as the oracle reports it: fail2ban drops the line
            rows.append([m.start(1), m.end(1), type(exc).__name__])
            continue
        rows.append([m.start(1), m.end(1), date[0] if date else None])
    return rows


@pytest.mark.peer
def test_dates_as_fail2ban_finds_them(fail2ban_clock: None) -> None:
    theirs = fail2ban(ORACLE % NOW, PATTERNS, LINES)
    found = 0
    for pattern, want in zip(PATTERNS, theirs, strict=True):
        got = ours(pattern)
        for line, a, b in zip(LINES, got, want, strict=True):
            assert a == b, f"datepattern {pattern!r}, line {line!r}: {a} != fail2ban's {b}"
            found += a is not None
    assert found > len(LINES)  # the comparison is about dates found, not only misses

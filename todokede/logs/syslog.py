"""Syslog framing: one line of bytes -> (time, host, program, pid, message).

Three framings are read: BSD syslog (``Sep  1 10:00:00 host prog[pid]: msg``, no year),
RFC 3339 (Debian's rsyslog: ``2026-11-28T00:39:47.123456+00:00 host prog[pid]: msg``) and
RFC 5424 (``<34>1 2003-10-11T22:14:15.003Z host app procid msgid [sd] msg``), with or without
a leading ``<PRI>``. Times are the log's own wall clock, as seconds since the epoch counted as
if it were UTC; an RFC 3339 offset is dropped, not applied, so that BSD and RFC 3339 lines from
one site compare as written.

A BSD timestamp has no year. A :class:`YearRule` supplies it without looking at neighbouring
lines, so that byte ranges of one file can be read in parallel: either the newest date in the
log is known (a file's modification time: a date after it belongs to the year before, which
handles December to January) or the oldest is (``--year`` names the year of the first line:
a date before it belongs to the year after).
"""

from __future__ import annotations

import calendar
import struct
from dataclasses import dataclass
from datetime import date
from typing import Literal

MONTHS = {
    m.encode(): i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}

# (seconds, host, program, pid, message); seconds are wall-clock epoch seconds.
Frame = tuple[int, bytes, bytes, bytes, bytes]


@dataclass(frozen=True)
class YearRule:
    """Where the year of a BSD timestamp comes from (see the module docstring)."""

    year: int
    month: int
    day: int
    anchor: Literal["newest", "oldest"]

    def year_for(self, month: int, day: int) -> int:
        here, ref = month * 32 + day, self.month * 32 + self.day
        if self.anchor == "newest":
            # one day of slack for clocks and time zones around the file's mtime
            return self.year if here <= ref + 1 else self.year - 1
        return self.year if here >= ref else self.year + 1

    @classmethod
    def newest(cls, when: date) -> YearRule:
        return cls(when.year, when.month, when.day, "newest")

    @classmethod
    def oldest(cls, year: int, month: int, day: int) -> YearRule:
        return cls(year, month, day, "oldest")


def bsd_month_day(line: bytes) -> tuple[int, int] | None:
    """Month and day of a BSD-timestamped line (used to anchor ``--year``)."""
    if line[:1] == b"<":
        end = line.find(b">")
        if 0 < end < 5:
            line = line[end + 1 :]
    month = MONTHS.get(line[:3])
    if month is None or len(line) < 15 or line[3:4] != b" ":
        return None
    try:
        return month, int(line[4:6])
    except ValueError:
        return None


class Framer:
    """Frames lines; caches timestamp conversions (a busy log repeats each second often)."""

    def __init__(self, rule: YearRule) -> None:
        self.rule = rule
        self.bsd_cache: dict[bytes, int] = {}
        self._days: dict[bytes, int] = {}
        self._iso: dict[bytes, int] = {}
        self._table: bytes | None = None

    @property
    def days(self) -> bytes:
        """Midnight of every (month, day) as :meth:`bsd_time` counts it, for the C scanner:
        12 x 32 native int64 (month from 0, day as written), the smallest int64 where there
        is no such day."""
        if self._table is None:
            none = -(2**63)
            values = []
            for month in range(1, 13):
                for day in range(32):
                    year = self.rule.year_for(month, day)
                    valid = 1 <= day <= calendar.monthrange(year, month)[1]
                    values.append(calendar.timegm((year, month, day, 0, 0, 0)) if valid else none)
            self._table = struct.pack("=384q", *values)
        return self._table

    def frame(self, line: bytes) -> Frame | None:
        """Split a line; None when it is not syslog as we know it (counted as unparsed)."""
        if len(line) < 16:
            return None
        first = line[0]
        if 65 <= first <= 90 and line[15] == 32:  # 'A'..'Z': "Sep  1 10:00:00 "
            ts = self.bsd_cache.get(line[:15])
            if ts is None:
                ts = self.bsd_time(line[:15])
                if ts is None:
                    return None
            return _tag(ts, line[16:])
        if 48 <= first <= 57:  # a digit: RFC 3339
            space = line.find(b" ")
            ts = self._iso_time(line[:space]) if space > 0 else None
            if ts is None:
                return None
            return _tag(ts, line[space + 1 :])
        if first == 60:  # '<': PRI
            end = line.find(b">", 1, 6)
            if end < 0 or not line[1:end].isdigit():
                return None
            rest = line[end + 1 :]
            if rest[:2] == b"1 ":
                return self._rfc5424(rest[2:])
            return self.frame(rest)
        return None

    def bsd_time(self, ts: bytes) -> int | None:
        """Seconds of a 15-byte BSD timestamp (None if it is not one); cached."""
        day_key = ts[:6]
        base = self._days.get(day_key)
        try:
            if base is None:
                month = MONTHS[ts[:3]]
                day = int(ts[4:6])
                year = self.rule.year_for(month, day)
                if not 1 <= day <= calendar.monthrange(year, month)[1]:
                    return None
                base = calendar.timegm((year, month, day, 0, 0, 0))
                self._days[day_key] = base
            if ts[9:10] != b":" or ts[12:13] != b":":
                return None
            hour, minute, sec = int(ts[7:9]), int(ts[10:12]), int(ts[13:15])
        except (KeyError, ValueError, OverflowError):
            return None
        if hour > 23 or minute > 59 or sec > 60:
            return None
        value = base + hour * 3600 + minute * 60 + sec
        if len(self.bsd_cache) > 20_000:  # a busy log moves on; keep the cache small
            self.bsd_cache.clear()
        self.bsd_cache[ts] = value
        return value

    def _iso_time(self, ts: bytes) -> int | None:
        key = ts[:19]
        value = self._iso.get(key)
        if value is not None:
            return value
        if (
            len(key) < 19
            or key[4:5] != b"-"
            or key[10:11] not in (b"T", b" ")
            or key[13:14] != b":"
        ):
            return None
        try:
            value = calendar.timegm(
                (
                    int(key[0:4]),
                    int(key[5:7]),
                    int(key[8:10]),
                    int(key[11:13]),
                    int(key[14:16]),
                    int(key[17:19]),
                )
            )
            date(int(key[0:4]), int(key[5:7]), int(key[8:10]))  # validates the day
        except (ValueError, OverflowError):
            return None
        if len(self._iso) < 200_000:
            self._iso[key] = value
        return value

    def _rfc5424(self, rest: bytes) -> Frame | None:
        parts = rest.split(b" ", 5)
        if len(parts) < 5:
            return None
        ts = self._iso_time(parts[0])
        if ts is None:
            return None
        host, app, procid = parts[1], parts[2], parts[3]
        tail = parts[5] if len(parts) > 5 else b""
        msg = _skip_structured_data(tail)
        if msg is None:
            return None
        if msg[:3] == b"\xef\xbb\xbf":
            msg = msg[3:]
        return (
            ts,
            b"" if host == b"-" else host,
            b"" if app == b"-" else app,
            b"" if procid == b"-" else procid,
            msg,
        )


def _tag(ts: int, rest: bytes) -> Frame:
    host, _, after = rest.partition(b" ")
    if host.endswith(b":") and b"[" not in host[:1]:
        # no host name: Dovecot's own log_path and other programs' log files
        tag, msg = host[:-1], after
        bracket = tag.find(b"[")
        if bracket >= 0 and tag.endswith(b"]"):
            return ts, b"", tag[:bracket], tag[bracket + 1 : -1], msg
        return ts, b"", tag, b"", msg
    host, rest = host, after
    colon = rest.find(b": ")
    if colon < 0:
        if rest.endswith(b":"):
            colon = len(rest) - 1
        else:  # "last message repeated 3 times" and other untagged lines
            return ts, host, b"", b"", rest
    tag = rest[:colon]
    msg = rest[colon + 2 :]
    if b" " in tag:
        return ts, host, b"", b"", rest
    bracket = tag.find(b"[")
    if bracket >= 0 and tag.endswith(b"]"):
        return ts, host, tag[:bracket], tag[bracket + 1 : -1], msg
    return ts, host, tag, b"", msg


def _skip_structured_data(tail: bytes) -> bytes | None:
    """RFC 5424 STRUCTURED-DATA is '-' or one or more [id k="v" ...] elements."""
    if tail[:1] == b"-":
        return tail[2:]
    i, n = 0, len(tail)
    if tail[:1] != b"[":
        return None
    while i < n and tail[i : i + 1] == b"[":
        i += 1
        quoted = False
        while i < n:
            c = tail[i : i + 1]
            if c == b"\\" and quoted:
                i += 2
                continue
            if c == b'"':
                quoted = not quoted
            elif c == b"]" and not quoted:
                break
            i += 1
        if i >= n:
            return None
        i += 1
    return tail[i + 1 :] if tail[i : i + 1] == b" " else tail[i:]
